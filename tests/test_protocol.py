"""HTTP corner cases a real registry will not produce on demand, with ``responses``."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from registryv2 import NotFoundError, RegistryClient, RegistryError
from registryv2.manifest import sha256_digest

from .archives import SampleImage, layer_tar, write_legacy

BASE = "http://registry.test"


def client(**kw: object) -> RegistryClient:
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


@responses.activate
def test_a_failed_blob_stops_the_push_before_the_manifest(tmp_path: Path) -> None:
    tar, _ = one_layer_archive(tmp_path, 4 * 1024 * 1024)
    responses.head(re.compile(rf"{BASE}/v2/app/blobs/.*"), status=404)
    responses.post(
        f"{BASE}/v2/app/blobs/uploads/",
        status=202,
        headers={"Location": f"{BASE}/v2/app/blobs/uploads/u1"},
    )
    responses.patch(
        f"{BASE}/v2/app/blobs/uploads/u1",
        status=500,
        json={"errors": [{"code": "UNKNOWN", "message": "disk full"}]},
    )
    responses.put(re.compile(rf"{BASE}/v2/app/blobs/uploads/u1.*"), status=201)
    cancelled = responses.delete(f"{BASE}/v2/app/blobs/uploads/u1", status=204)
    manifest = responses.put(f"{BASE}/v2/app/manifests/v1", status=201)
    with client(chunk_size=1024 * 1024) as c, pytest.raises(RegistryError) as err:
        c.push(tar, "app", "v1")
    assert err.value.status == 500
    assert "disk full (UNKNOWN)" in str(err.value)
    assert manifest.call_count == 0
    assert cancelled.call_count == 1


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
    with client() as c, pytest.raises(NotFoundError) as err:
        c.engine._start_upload("nope", "sha256:" + "0" * 64, None)
    assert err.value.codes == ["NAME_UNKNOWN"]
    assert err.value.status == 404
    assert "repository name not known to registry (NAME_UNKNOWN) [HTTP 404]" in str(err.value)


@responses.activate
def test_an_error_without_a_json_body_names_the_status() -> None:
    responses.get(f"{BASE}/v2/", status=502, body="<html>bad gateway</html>")
    with client() as c, pytest.raises(RegistryError) as err:
        c.ping()
    assert err.value.status == 502
    assert err.value.codes == []
    assert "HTTP 502" in str(err.value)


@responses.activate
def test_ping_accepts_401() -> None:
    responses.get(
        f"{BASE}/v2/",
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="https://auth.test/token"'},
    )
    with client() as c:
        assert c.ping() is True


@responses.activate
def test_a_manifest_digest_the_registry_disagrees_with_is_an_error() -> None:
    responses.put(
        f"{BASE}/v2/app/manifests/v1",
        status=201,
        headers={"Docker-Content-Digest": "sha256:" + "f" * 64},
    )
    with client() as c, pytest.raises(RegistryError, match="stored it as sha256:ffff"):
        c.put_manifest("app", "v1", b"{}", "application/vnd.oci.image.manifest.v1+json")
