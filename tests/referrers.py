"""Referrers made as their tools make them, with plain HTTP, and a registry front that adds the
referrers API.

* :func:`cosign_signature`: a signature as cosign's specification lays it out: an OCI image
  manifest whose one layer is the simple-signing payload
  (``application/vnd.dev.cosign.simplesigning.v1+json``) carrying the
  ``dev.cosignproject.cosign/signature`` annotation, under the tag ``sha256-<hex>.sig``.
* :func:`oci_referrer`: an SBOM or an attestation as oras and the OCI 1.1 spec lay it out: an
  image manifest with ``artifactType``, OCI's empty config and a ``subject``, pushed by digest
  and listed in the subject's fallback index (``sha256-<hex>``), as a client does for a
  registry without the referrers API.
* :class:`ReferrersFront`: a loopback server in front of the CNCF registry that answers the
  referrers API (paged, filtered or not, ``OCI-Subject`` on a PUT with a subject), or one of the
  answers that mean "no API" (404, 400, 406, a 200 that is not an index).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from .servers import Closing, free_port

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SPDX = "application/spdx+json"
IN_TOTO = "application/vnd.in-toto+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(url: str, repo: str, data: bytes) -> dict[str, Any]:
    """Upload one blob (POST, then a monolithic PUT); its descriptor."""
    digest = sha256(data)
    started = requests.post(f"{url}/v2/{repo}/blobs/uploads/", timeout=30)
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    if location.startswith("/"):
        location = url + location
    joiner = "&" if "?" in location else "?"
    done = requests.put(
        f"{location}{joiner}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=30,
    )
    assert done.status_code == 201, done.text
    return {"digest": digest, "size": len(data)}


def put_manifest(url: str, repo: str, reference: str, raw: bytes, media_type: str) -> None:
    done = requests.put(
        f"{url}/v2/{repo}/manifests/{reference}",
        data=raw,
        headers={"Content-Type": media_type},
        timeout=30,
    )
    assert done.status_code == 201, done.text


def get_manifest(url: str, repo: str, reference: str) -> bytes | None:
    got = requests.get(
        f"{url}/v2/{repo}/manifests/{reference}",
        headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"},
        timeout=30,
    )
    if got.status_code == 404:
        return None
    assert got.status_code == 200, got.text
    return got.content


def descriptor_of(url: str, repo: str, reference: str) -> dict[str, Any]:
    raw = get_manifest(url, repo, reference)
    assert raw is not None
    return {"mediaType": json.loads(raw)["mediaType"], "digest": sha256(raw), "size": len(raw)}


def fallback_tag(digest: str) -> str:
    return digest.replace(":", "-")


def cosign_signature(url: str, repo: str, subject: str, identity: str) -> bytes:
    """A cosign signature of ``subject`` under ``sha256-<hex>.sig``; its manifest bytes."""
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": subject},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()
    layer = put_blob(url, repo, payload)
    config = json.dumps(
        {
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
            "config": {},
        }
    ).encode()
    config_desc = put_blob(url, repo, config)
    signature = base64.b64encode(hashlib.sha512(payload).digest()).decode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **config_desc},
            "layers": [
                {
                    "mediaType": SIMPLE_SIGNING,
                    **layer,
                    "annotations": {"dev.cosignproject.cosign/signature": signature},
                }
            ],
        }
    ).encode()
    put_manifest(url, repo, fallback_tag(subject) + ".sig", manifest, OCI_MANIFEST)
    return manifest


def oci_referrer(
    url: str,
    repo: str,
    subject: dict[str, Any],
    artifact_type: str,
    content: bytes,
    annotations: dict[str, str] | None = None,
    fallback: bool = True,
) -> bytes:
    """An OCI 1.1 artifact referring to ``subject``, pushed by digest and (``fallback``) listed
    in the subject's fallback index, keeping what it lists; its manifest bytes."""
    empty = put_blob(url, repo, b"{}")
    layer = put_blob(url, repo, content)
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, **empty},
        "layers": [
            {
                "mediaType": artifact_type,
                **layer,
                "annotations": {"org.opencontainers.image.title": "content.json"},
            }
        ],
        "subject": subject,
        "annotations": annotations or {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
    manifest = json.dumps(doc).encode()
    put_manifest(url, repo, sha256(manifest), manifest, OCI_MANIFEST)
    if fallback:
        add_to_fallback_index(url, repo, subject["digest"], manifest)
    return manifest


def add_to_fallback_index(url: str, repo: str, subject: str, manifest: bytes) -> None:
    doc = json.loads(manifest)
    entry = {
        "mediaType": doc["mediaType"],
        "digest": sha256(manifest),
        "size": len(manifest),
        "artifactType": doc.get("artifactType"),
        "annotations": doc.get("annotations", {}),
    }
    raw = get_manifest(url, repo, fallback_tag(subject))
    index: dict[str, Any] = json.loads(raw) if raw else {"schemaVersion": 2, "manifests": []}
    index["mediaType"] = OCI_INDEX
    index["manifests"].append(entry)
    put_manifest(url, repo, fallback_tag(subject), json.dumps(index).encode(), OCI_INDEX)


_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class ReferrersFront(Closing):
    """A loopback HTTP front for a registry that adds the referrers API.

    Every request is passed on; a manifest PUT whose body has a ``subject`` is recorded and
    answered with ``OCI-Subject``. ``GET /v2/<repo>/referrers/<digest>`` is answered here:
    ``page_size`` entries a page with ``Link`` to the next; ``artifactType`` filtered (and
    ``OCI-Filters-Applied`` said) when ``filters`` is on. ``no_api`` makes it answer as a
    registry without the API does instead: 404, 400, 406, or ``"not-an-index"`` (a 200).
    ``extra`` referrers (descriptors) are listed for ``extra_subject``, on top of the recorded.
    """

    def __init__(self, upstream: str, page_size: int = 2) -> None:
        self.upstream = upstream
        self.page_size = page_size
        self.filters = True
        self.no_api: int | str | None = None
        self.extra: list[dict[str, Any]] = []
        self.extra_subject = ""
        self.loop_pages = False
        self.recorded: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.referrer_requests: list[str] = []
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                front.handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        segments = parts.path.split("/referrers/")
        if request.command == "GET" and len(segments) == 2 and parts.path.startswith("/v2/"):
            self.referrer_requests.append(request.path)
            self._referrers(request, segments[0][len("/v2/") :], segments[1], parts.query)
            return
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        connection = http.client.HTTPConnection(self.upstream, timeout=60)
        connection.request(request.command, request.path, body=body or None, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        added: dict[str, str] = {}
        if request.command == "PUT" and "/manifests/" in parts.path and answer.status == 201:
            added = self._record(parts.path, body)
        request.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in _HOP and key.lower() != "content-length":
                request.send_header(key, value)
        for key, value in added.items():
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)
        connection.close()

    def _record(self, path: str, body: bytes) -> dict[str, str]:
        try:
            doc = json.loads(body)
        except ValueError:
            return {}
        subject = doc.get("subject") if isinstance(doc, dict) else None
        if not isinstance(subject, dict):
            return {}
        repo = path[len("/v2/") :].split("/manifests/")[0]
        entry: dict[str, Any] = {
            "mediaType": doc.get("mediaType", OCI_MANIFEST),
            "digest": sha256(body),
            "size": len(body),
        }
        config = doc.get("config") or {}
        entry["artifactType"] = doc.get("artifactType") or config.get("mediaType")
        if doc.get("annotations"):
            entry["annotations"] = doc["annotations"]
        listed = self.recorded.setdefault((repo, subject["digest"]), [])
        if all(e["digest"] != entry["digest"] for e in listed):
            listed.append(entry)
        return {"OCI-Subject": subject["digest"]}

    def _referrers(
        self, request: BaseHTTPRequestHandler, repo: str, digest: str, query: str
    ) -> None:
        if isinstance(self.no_api, int):
            self._send(
                request, self.no_api, b'{"errors":[{"code":"UNSUPPORTED"}]}', "application/json"
            )
            return
        if self.no_api == "not-an-index":
            self._send(request, 200, b"<html>welcome</html>", "text/html")
            return
        params = parse_qs(query)
        entries = list(self.recorded.get((repo, digest), []))
        if digest == self.extra_subject:
            entries += self.extra
        wanted = params.get("artifactType", [None])[0]
        headers = {}
        if wanted and self.filters:
            entries = [e for e in entries if e.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        start = int(params.get("page", ["0"])[0])
        page = entries[start : start + self.page_size]
        if self.loop_pages or start + self.page_size < len(entries):
            following = 0 if self.loop_pages else start + self.page_size
            next_query = f"page={following}"
            if wanted:
                next_query += f"&artifactType={wanted}"
            headers["Link"] = f'</v2/{repo}/referrers/{digest}?{next_query}>; rel="next"'
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": page}).encode()
        self._send(request, 200, body, OCI_INDEX, headers)

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(body)


def walk_digests(tree: list[dict[str, Any]]) -> Iterator[str]:
    """Every digest of a ``referrers --json`` tree, depth first."""
    for node in tree:
        yield node["digest"]
        yield from walk_digests(node["referrers"])
