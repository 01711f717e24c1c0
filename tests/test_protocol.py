"""HTTP corner cases a real registry will not produce on demand, with ``responses``."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from registryv2 import (
    BlobInfo,
    DigestMismatchError,
    NotFoundError,
    RegistryClient,
    RegistryError,
    RetryPolicy,
    TransferEvent,
    UnsupportedError,
)
from registryv2.image import Blob
from registryv2.manifest import sha256_digest
from registryv2.upload import BlobUpload

from .archives import SampleImage, layer_tar, write_legacy
from .proxies import FAST

BASE = "http://registry.test"


def client(**kw: object) -> RegistryClient:
    kw.setdefault("retry", FAST)
    return RegistryClient(BASE, insecure=True, **kw)  # type: ignore[arg-type]


def one_layer_archive(tmp_path: Path, size: int) -> tuple[Path, SampleImage]:
    image = SampleImage(layers=[layer_tar({"f": b"x" * size})], tags=["app:v1"])
    return write_legacy(tmp_path / "a.tar", [image]), image


@responses.activate
def test_chunk_size_rises_to_the_registry_minimum(tmp_path: Path) -> None:
    tar, image = one_layer_archive(tmp_path, 3 * 1024 * 1024)
    layer = image.stored_layers()[0]
    responses.head(re.compile(rf"{BASE}/v2/app/blobs/.*"), status=404)
    responses.post(
        f"{BASE}/v2/app/blobs/uploads/",
        status=202,
        headers={
            "Location": "/v2/app/blobs/uploads/u1?_state=s0",
            "OCI-Chunk-Min-Length": str(1024 * 1024),
        },
    )
    ranges: list[str] = []

    def patch(request):  # type: ignore[no-untyped-def]
        # A streamed body reaches the mock unsent: send it, as a real connection would.
        body = b"".join(request.body)
        start, end = map(int, request.headers["Content-Range"].split("-"))
        assert len(body) == end - start + 1 == int(request.headers["Content-Length"])
        assert body == layer[start : end + 1]
        ranges.append(request.headers["Content-Range"])
        return 202, {"Location": f"/v2/app/blobs/uploads/u1?_state=s{len(ranges)}"}, b""

    responses.add_callback(
        "PATCH", re.compile(rf"{BASE}/v2/app/blobs/uploads/u1.*"), callback=patch
    )
    puts: list[str] = []

    def put(request):  # type: ignore[no-untyped-def]
        puts.append(request.url)
        digest = parse_qs(urlsplit(request.url).query)["digest"][0]
        return 201, {"Docker-Content-Digest": digest}, b""

    responses.add_callback("PUT", re.compile(rf"{BASE}/v2/app/blobs/uploads/u1.*"), callback=put)
    responses.put(f"{BASE}/v2/app/manifests/v1", status=201)
    with client(chunk_size=256 * 1024) as c:
        c.push(tar, "app", "v1")
    # Ranges of 1 MiB, not of our 256 KiB; inclusive ends; the last one short.
    n = len(layer)
    expected = [f"{s}-{min(s + 1024 * 1024, n) - 1}" for s in range(0, n, 1024 * 1024)]
    assert ranges == expected
    # The closing PUT keeps the upload's own state and adds the layer's digest.
    layer_put = [u for u in puts if sha256_digest(layer)[7:] in u]
    assert len(layer_put) == 1
    query = parse_qs(urlsplit(layer_put[0]).query)
    assert query["_state"] == [f"s{len(expected)}"]
    assert query["digest"] == [sha256_digest(layer)]


def failing_upload(status: int) -> tuple[responses.BaseResponse, responses.BaseResponse]:
    """An upload whose PATCHes all fail with ``status``; the DELETE and manifest PUT mocks."""
    responses.head(re.compile(rf"{BASE}/v2/app/blobs/.*"), status=404)
    responses.post(
        f"{BASE}/v2/app/blobs/uploads/",
        status=202,
        headers={"Location": f"{BASE}/v2/app/blobs/uploads/u1"},
    )
    responses.patch(
        f"{BASE}/v2/app/blobs/uploads/u1",
        status=status,
        json={"errors": [{"code": "UNKNOWN", "message": "disk full"}]},
    )
    responses.get(f"{BASE}/v2/app/blobs/uploads/u1", status=204, headers={"Range": "0-0"})
    responses.put(re.compile(rf"{BASE}/v2/app/blobs/uploads/u1.*"), status=201)
    cancelled = responses.delete(f"{BASE}/v2/app/blobs/uploads/u1", status=204)
    manifest = responses.put(f"{BASE}/v2/app/manifests/v1", status=201)
    return cancelled, manifest


@responses.activate
def test_a_failed_blob_stops_the_push_before_the_manifest(tmp_path: Path) -> None:
    tar, _ = one_layer_archive(tmp_path, 4 * 1024 * 1024)
    cancelled, manifest = failing_upload(400)
    with client(chunk_size=1024 * 1024) as c, pytest.raises(RegistryError) as err:
        c.push(tar, "app", "v1")
    assert err.value.status == 400 and not err.value.transient
    assert "disk full (UNKNOWN)" in str(err.value)
    assert manifest.call_count == 0
    # A refused upload cannot be resumed: it is cancelled at once, never tried again.
    assert cancelled.call_count == 1
    assert len([c for c in responses.calls if c.request.method == "PATCH"]) == 1


@pytest.mark.parametrize("resume", [True, False])
@responses.activate
def test_a_blob_failing_for_good_after_retries_is_kept_to_resume_or_cancelled(
    tmp_path: Path, resume: bool
) -> None:
    tar, _ = one_layer_archive(tmp_path, 4 * 1024 * 1024)
    cancelled, manifest = failing_upload(500)
    retry = RetryPolicy(attempts=3, initial_delay=0.001)
    c = client(chunk_size=1024 * 1024, retry=retry, resume=resume)
    with c, pytest.raises(RegistryError) as err:
        c.push(tar, "app", "v1")
    assert err.value.status == 500 and err.value.transient
    assert str(err.value).endswith("(gave up after 3 attempts)")
    assert manifest.call_count == 0
    # Each failed PATCH is followed by a question, never by a blind repeat. (The config is
    # small: one PUT of its own.)
    methods = [
        c.request.method
        for c in responses.calls
        if "uploads/u1" in (c.request.url or "") and c.request.method != "PUT"
    ]
    assert methods == ["PATCH", "GET", "PATCH", "GET", "PATCH"] + ([] if resume else ["DELETE"])
    assert cancelled.call_count == (0 if resume else 1)


@responses.activate
def test_registry_error_bodies_become_typed_errors() -> None:
    responses.head(re.compile(rf"{BASE}/v2/.*"), status=404)
    responses.post(
        re.compile(rf"{BASE}/v2/.*"),
        status=404,
        json={
            "errors": [
                {
                    "code": "NAME_UNKNOWN",
                    "message": "repository name not known to registry",
                    "detail": {"name": "nope"},
                }
            ]
        },
    )
    blob = Blob(BlobInfo("sha256:" + "0" * 64, 1, "x"), lambda: io.BytesIO(b"x"))
    with client() as c, pytest.raises(NotFoundError) as err:
        BlobUpload(c.transport, "nope", blob, chunk_size=1).run()
    assert err.value.codes == ["NAME_UNKNOWN"]
    assert err.value.status == 404
    reason = "repository name not known to registry (NAME_UNKNOWN)"
    assert f"{reason} [HTTP 404 from registry.test]" in str(err.value)


@responses.activate
def test_an_error_without_a_json_body_names_the_status() -> None:
    responses.get(f"{BASE}/v2/", status=502, body="<html>bad gateway</html>")
    with client() as c, pytest.raises(RegistryError) as err:
        c.ping()
    assert err.value.status == 502
    assert err.value.codes == []
    assert "HTTP 502" in str(err.value)


@responses.activate
def test_ping_answers_the_challenge_and_wants_a_registry() -> None:
    challenge = {"WWW-Authenticate": 'Bearer realm="https://auth.test/token",service="r"'}
    responses.get(f"{BASE}/v2/", status=401, headers=challenge)
    responses.get("https://auth.test/token", json={"token": "anonymous"})
    responses.get(f"{BASE}/v2/", headers={"Docker-Distribution-Api-Version": "registry/2.0"})
    responses.get(f"{BASE}/v2/", status=200)  # a web server, not a registry
    with client() as c:
        assert c.ping() is True
        assert responses.calls[2].request.headers["Authorization"] == "Bearer anonymous"
        with pytest.raises(RegistryError, match="is not a registry"):
            c.ping()


@responses.activate
def test_a_manifest_digest_the_registry_disagrees_with_is_an_error() -> None:
    responses.put(
        f"{BASE}/v2/app/manifests/v1",
        status=201,
        headers={"Docker-Content-Digest": "sha256:" + "f" * 64},
    )
    with client() as c, pytest.raises(RegistryError, match="stored it as sha256:ffff"):
        c.put_manifest("app", "v1", b"{}", "application/vnd.oci.image.manifest.v1+json")


def _pages(
    pages: list[tuple[list[str], dict[str, str]]], key: str, path: str
) -> list[dict[str, list[str]]]:
    """Serve ``pages`` in order at ``path`` (any query); returns the requests seen."""
    seen: list[dict[str, list[str]]] = []

    def serve(request):  # type: ignore[no-untyped-def]
        seen.append(dict(parse_qs(urlsplit(request.url).query)))
        items, headers = pages[len(seen) - 1]
        return 200, headers, json.dumps({key: items})

    responses.add_callback("GET", re.compile(rf"{BASE}{path}.*"), callback=serve)
    return seen


@pytest.mark.parametrize(
    "link",
    [
        '</v2/_catalog?last=b&n=2>; rel="next"',
        f'<{BASE}/v2/_catalog?last=b&n=2>; rel="next"',
        "</v2/_catalog?last=b&n=2>; rel=next",
        '</v2/_catalog?first=1>; rel="prev", </v2/_catalog?last=b&n=2>; rel="next"',
    ],
    ids=["relative", "absolute", "unquoted-rel", "prev-and-next"],
)
@responses.activate
def test_catalog_follows_link_header_variants(link: str) -> None:
    seen = _pages([(["a", "b"], {"Link": link}), (["c"], {})], "repositories", "/v2/_catalog")
    with client() as c:
        assert c.list_repositories() == ["a", "b", "c"]
    assert seen[1] == {"last": ["b"], "n": ["2"]}


@responses.activate
def test_paging_without_link_headers_continues_after_the_last_item() -> None:
    seen = _pages([(["a", "b"], {}), (["c", "d"], {}), (["e"], {})], "tags", "/v2/app/tags/list")
    with client() as c:
        assert c.list_tags("app", page_size=2) == ["a", "b", "c", "d", "e"]
    assert [s.get("last") for s in seen] == [None, ["b"], ["d"]]


@responses.activate
def test_a_looping_link_header_is_an_error() -> None:
    loop = {"Link": '</v2/_catalog?last=a>; rel="next"'}
    _pages([(["a"], loop), (["a"], loop), (["a"], loop)], "repositories", "/v2/_catalog")
    with client() as c, pytest.raises(RegistryError, match="loops"):
        c.list_repositories()


@responses.activate
def test_null_tags_is_an_empty_list() -> None:
    responses.get(f"{BASE}/v2/app/tags/list", json={"name": "app", "tags": None})
    with client() as c:
        assert c.list_tags("app") == []


@responses.activate
def test_delete_refused_with_405_says_how_to_enable_it() -> None:
    digest = "sha256:" + "1" * 64
    responses.delete(
        f"{BASE}/v2/app/manifests/{digest}",
        status=405,
        json={"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]},
    )
    with client() as c, pytest.raises(UnsupportedError) as err:
        c.delete_image_by_digest("app", digest)
    assert err.value.status == 405 and err.value.codes == ["UNSUPPORTED"]
    assert "does not allow deletes" in str(err.value)
    assert "REGISTRY_STORAGE_DELETE_ENABLED" in str(err.value)


@responses.activate
def test_delete_image_resolves_the_tag_with_every_manifest_type_accepted() -> None:
    digest = "sha256:" + "2" * 64
    head = responses.head(f"{BASE}/v2/app/manifests/v1", headers={"Docker-Content-Digest": digest})
    responses.delete(f"{BASE}/v2/app/manifests/{digest}", status=202)
    with client() as c:
        assert c.delete_image("app", "v1") is True
    accept = head.calls[0].request.headers["Accept"]
    for kind in [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]:
        assert kind in accept


@responses.activate
def test_a_manifest_fetched_by_digest_must_hash_to_it() -> None:
    digest = "sha256:" + "3" * 64
    responses.get(
        f"{BASE}/v2/app/manifests/{digest}",
        body=b'{"schemaVersion":2,"config":'
        b'{"mediaType":"x","size":1,"digest":"sha256:00"},"layers":[]}',
        content_type="application/vnd.oci.image.manifest.v1+json",
    )
    with client() as c, pytest.raises(RegistryError, match="bytes with digest"):
        c.get_manifest("app", digest)


LAYER = b"0123456789" * 1000
LAYER_INFO = BlobInfo(sha256_digest(LAYER), len(LAYER), "application/octet-stream")
LAYER_URL = f"{BASE}/v2/app/blobs/{LAYER_INFO.digest}"


def cut_at_4000_then_from(offset: int) -> None:
    """The first answer promises the whole layer and stops after 4000 bytes; the second
    answers the Range request with the layer from ``offset``."""
    responses.get(LAYER_URL, body=LAYER[:4000], headers={"Content-Length": str(len(LAYER))})
    responses.get(
        LAYER_URL,
        status=206,
        body=LAYER[offset:],
        headers={"Content-Range": f"bytes {offset}-{len(LAYER) - 1}/{len(LAYER)}"},
    )


@responses.activate
def test_a_resumed_download_must_start_where_it_was_asked() -> None:
    cut_at_4000_then_from(3000)
    with client() as c, c.blob_reader("app", LAYER_INFO) as reader:
        assert reader.read(4000) == LAYER[:4000]
        with pytest.raises(RegistryError, match="asked for bytes from 4000, the registry sent"):
            reader.read()
    assert responses.calls[1].request.headers["Range"] == "bytes=4000-"


@responses.activate
def test_a_resumed_download_continues_with_the_right_range() -> None:
    cut_at_4000_then_from(4000)
    with client() as c, c.blob_reader("app", LAYER_INFO) as reader:
        assert reader.read() + reader.read() == LAYER
        assert reader.read() == b""


@responses.activate
def test_a_blob_of_another_size_than_its_descriptor_is_refused_at_once() -> None:
    responses.get(LAYER_URL, body=LAYER + b"more", headers={"Content-Length": "10004"})
    mismatch = pytest.raises(DigestMismatchError, match="sends 10004 bytes, the manifest says")
    with client() as c, c.blob_reader("app", LAYER_INFO) as reader, mismatch:
        reader.read(10)


@responses.activate
def test_a_layer_of_known_digest_sends_its_last_segment_with_the_commit(tmp_path: Path) -> None:
    tar, image = one_layer_archive(tmp_path, 12 * 1024 * 1024)
    layer = image.stored_layers()[0]
    chunk = 5 * 1024 * 1024  # the default; a chunk_size given would mean one PATCH per chunk
    responses.head(re.compile(rf"{BASE}/v2/app/blobs/.*"), status=404)
    responses.post(
        f"{BASE}/v2/app/blobs/uploads/",
        status=202,
        headers={"Location": "/v2/app/blobs/uploads/u1?_state=s0"},
    )
    patches: list[str] = []
    held = [0]

    def patch(request):  # type: ignore[no-untyped-def]
        # Streamed: chunked, without a length or a range, so that it may end at any byte.
        assert request.headers["Transfer-Encoding"] == "chunked"
        assert "Content-Range" not in request.headers
        body = b"".join(request.body)
        assert body == layer[held[0] : held[0] + len(body)]
        held[0] += len(body)
        patches.append(f"0-{held[0] - 1}")
        return 202, {"Location": f"/v2/app/blobs/uploads/u1?_state=s{len(patches)}"}, b""

    responses.add_callback(
        "PATCH", re.compile(rf"{BASE}/v2/app/blobs/uploads/u1.*"), callback=patch
    )
    commits: dict[str, bytes] = {}

    def put(request):  # type: ignore[no-untyped-def]
        digest = parse_qs(urlsplit(request.url).query)["digest"][0]
        body = request.body
        commits[digest] = b"".join(body) if not isinstance(body, bytes | None) else body or b""
        return 201, {"Docker-Content-Digest": digest}, b""

    responses.add_callback("PUT", re.compile(rf"{BASE}/v2/app/blobs/uploads/u1.*"), callback=put)
    responses.put(f"{BASE}/v2/app/manifests/v1", status=201)
    with client() as c:
        c.push(tar, "app", "v1")
    # One chunk first (the mock answers at once, so the next segment is as large as may be:
    # more than the rest), then the rest with the commit, under the digest the archive gives.
    assert patches == [f"0-{chunk - 1}"]
    assert commits[sha256_digest(layer)] == layer[chunk:]


@responses.activate
def test_a_registry_refusing_streamed_patches_gets_a_chunk_per_request(tmp_path: Path) -> None:
    """A streamed PATCH has no length (it may end at any byte); a registry, or a proxy before
    it, that asks for one (411) gets the rest one chunk per PATCH, each with its length and
    range, without a retry counted."""
    tar, image = one_layer_archive(tmp_path, 12 * 1024 * 1024)
    layer = image.stored_layers()[0]
    responses.head(re.compile(rf"{BASE}/v2/app/blobs/.*"), status=404)
    responses.post(
        f"{BASE}/v2/app/blobs/uploads/",
        status=202,
        headers={"Location": "/v2/app/blobs/uploads/u1?_state=s0"},
    )
    ranges: list[str] = []

    def patch(request):  # type: ignore[no-untyped-def]
        body = b"".join(request.body) if not isinstance(request.body, bytes) else request.body
        if "Content-Range" not in request.headers:
            return 411, {}, b""
        start, end = map(int, request.headers["Content-Range"].split("-"))
        assert body == layer[start : end + 1] and len(body) == int(
            request.headers["Content-Length"]
        )
        ranges.append(request.headers["Content-Range"])
        return 202, {"Location": f"/v2/app/blobs/uploads/u1?_state=s{len(ranges)}"}, b""

    responses.add_callback(
        "PATCH", re.compile(rf"{BASE}/v2/app/blobs/uploads/u1.*"), callback=patch
    )
    responses.get(
        re.compile(rf"{BASE}/v2/app/blobs/uploads/u1.*"), status=204, headers={"Range": "0-0"}
    )

    def put(request):  # type: ignore[no-untyped-def]
        digest = parse_qs(urlsplit(request.url).query)["digest"][0]
        return 201, {"Docker-Content-Digest": digest}, b""

    responses.add_callback("PUT", re.compile(rf"{BASE}/v2/app/blobs/uploads/u1.*"), callback=put)
    responses.put(f"{BASE}/v2/app/manifests/v1", status=201)
    events: list[TransferEvent] = []
    with client(progress=events.append) as c:
        c.push(tar, "app", "v1")
    chunk = 5 * 1024 * 1024
    n = len(layer)
    assert ranges == [f"{s}-{min(s + chunk, n) - 1}" for s in range(0, n, chunk)]
    assert not [e for e in events if e.kind == "retry"]
