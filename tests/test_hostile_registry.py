"""A hostile registry: every bad answer is one clear, typed error in bounded time and memory,
nothing is written outside the output, and no credential reaches another host."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from registryv2 import (
    AuthenticationError,
    RegistryClient,
    RegistryError,
    get_image_info,
    get_manifest,
    list_tags,
    pull_docker_tar,
    push_docker_tar,
)

from .archives import SampleImage, sha256, simple_image, write_legacy
from .hostile import Answer, HostileRegistry, Request
from .proxies import FAST

USER, PASSWORD = "alice", "s3cret-pw"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE = simple_image()


def manifest_doc(image: SampleImage = IMAGE) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(image.oci_manifest())
    return doc


def serve_image(
    doc: dict[str, Any] | bytes, config: bytes = IMAGE.config()
) -> Callable[[Request, HostileRegistry], Answer]:
    """A registry serving one image at x:v1 (its manifest as given), whatever else is asked."""
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    blobs = {sha256(config): config, **{sha256(x): x for x in IMAGE.stored_layers()}}

    def answer(request: Request, _: HostileRegistry) -> Answer:
        if request.path == "/v2/":
            return Answer(200)
        if "/manifests/" in request.path:
            return Answer(200, {"Content-Type": OCI_MANIFEST}, raw)
        for digest, data in blobs.items():
            if request.path.endswith(digest):
                return Answer(200, {}, data)
        return Answer(404)

    return answer


def pull_into(tmp_path: Path) -> Callable[[str], Any]:
    def pull(url: str) -> Any:
        return pull_docker_tar(tmp_path / "out.tar", url, "x", "v1", retry=FAST)

    return pull


def assert_one_clean_error(error: BaseException, *needles: str) -> None:
    message = str(error)
    assert "\n" not in message and "Traceback" not in message
    for needle in needles:
        assert needle in message, message


BAD_MANIFESTS: list[tuple[str, Any, str]] = [
    ("schema-version-text", {**manifest_doc(), "schemaVersion": "x"}, "schemaVersion 'x'"),
    ("schema-version-1", {**manifest_doc(), "schemaVersion": 1}, "schemaVersion 1"),
    ("layers-not-a-list", {**manifest_doc(), "layers": 5}, "layers is not a list"),
    ("config-not-an-object", {**manifest_doc(), "config": "x"}, "not a JSON object"),
    (
        "size-of-a-petabyte",
        {**manifest_doc(), "layers": [{**manifest_doc()["layers"][0], "size": 10**15}]},
        "impossible size",
    ),
    (
        "negative-size",
        {**manifest_doc(), "layers": [{**manifest_doc()["layers"][0], "size": -1}]},
        "impossible size",
    ),
    (
        "digest-with-a-path",
        {
            **manifest_doc(),
            "layers": [{**manifest_doc()["layers"][0], "digest": "sha256:../../../tmp/x"}],
        },
        "'sha256:../../../tmp/x' is not a digest",
    ),
    ("deep-json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("not-json", b"\xff\xfe garbage", "not valid JSON"),
    ("a-list", b"[1, 2, 3]", "not a JSON object"),
]


@pytest.mark.parametrize(
    ("name", "doc", "complaint"), BAD_MANIFESTS, ids=[c[0] for c in BAD_MANIFESTS]
)
def test_a_malformed_manifest_is_one_clear_registry_error(
    tmp_path: Path, name: str, doc: Any, complaint: str
) -> None:
    with HostileRegistry(serve_image(doc)) as hostile:
        started = time.monotonic()
        for call in [
            lambda url: get_manifest(url, "x", "v1", retry=FAST),
            lambda url: get_image_info(url, "x", "v1", retry=FAST),
            pull_into(tmp_path),
        ]:
            with pytest.raises(RegistryError) as err:
                call(hostile.url)
            assert_one_clean_error(err.value, complaint)
        assert time.monotonic() - started < 5
        # Nothing derived from the manifest's digests was asked for.
        assert not [r for r in hostile.requests if "tmp/x" in r.path or ".." in r.path]
    assert list(tmp_path.iterdir()) == []


BAD_CONFIGS = [
    ("labels-a-number", {"config": {"Labels": 5}}, "Labels is int"),
    ("env-of-numbers", {"config": {"Env": [1, 2]}}, "Env holds something other than strings"),
    ("rootfs-a-string", {"rootfs": "x"}, "rootfs is str"),
    ("architecture-a-list", {"architecture": ["amd64"]}, "architecture is list"),
]


@pytest.mark.parametrize(
    ("name", "change", "complaint"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS]
)
def test_a_malformed_config_is_one_clear_registry_error(
    tmp_path: Path, name: str, change: dict[str, Any], complaint: str
) -> None:
    config = json.dumps({**json.loads(IMAGE.config()), **change}).encode()
    doc = manifest_doc()
    doc["config"] = {**doc["config"], "digest": sha256(config), "size": len(config)}
    with HostileRegistry(serve_image(doc, config)) as hostile:
        for call in [lambda url: get_image_info(url, "x", "v1", retry=FAST), pull_into(tmp_path)]:
            with pytest.raises(RegistryError) as err:
                call(hostile.url)
            assert_one_clean_error(err.value, complaint)
    assert list(tmp_path.iterdir()) == []


def test_a_manifest_shorter_than_its_content_length_is_retried_then_a_clear_error() -> None:
    raw = json.dumps(manifest_doc()).encode()

    def answer(request: Request, _: HostileRegistry) -> Answer:
        return Answer(200, {"Content-Type": OCI_MANIFEST}, raw, length=len(raw) + 100)

    with HostileRegistry(answer) as hostile, pytest.raises(RegistryError) as err:
        get_manifest(hostile.url, "x", "v1", retry=FAST)
    assert err.value.transient
    assert_one_clean_error(err.value, "the answer broke off", "gave up after 5 attempts")


def test_a_huge_manifest_is_refused_before_it_is_read() -> None:
    def slowly() -> Iterator[bytes]:
        for _ in range(100):
            time.sleep(1)
            yield b" " * 1_000_000

    def answer(request: Request, _: HostileRegistry) -> Answer:
        # Claims 100 MB and would take 100 s to send them: never waited for.
        return Answer(
            200, {"Content-Type": OCI_MANIFEST}, b"{", length=100_000_000, pieces=slowly()
        )

    started = time.monotonic()
    with HostileRegistry(answer) as hostile, pytest.raises(RegistryError) as err:
        get_manifest(hostile.url, "x", "v1", retry=FAST)
    assert_one_clean_error(err.value, "larger than the 4194304 bytes allowed (100000000 bytes)")
    assert time.monotonic() - started < 3


def test_a_redirect_loop_is_one_clear_error() -> None:
    def answer(request: Request, _: HostileRegistry) -> Answer:
        return Answer(302, {"Location": request.path})

    with HostileRegistry(answer) as hostile, pytest.raises(RegistryError) as err:
        get_manifest(hostile.url, "x", "v1", retry=FAST)
    assert_one_clean_error(err.value, "redirected more than 10 times")
    assert len(hostile.requests) == 11  # the first, then ten redirects: not retried


def test_a_redirect_to_another_scheme_is_refused() -> None:
    def answer(request: Request, _: HostileRegistry) -> Answer:
        return Answer(307, {"Location": "ftp://127.0.0.1/x"})

    with HostileRegistry(answer) as hostile, pytest.raises(RegistryError) as err:
        get_manifest(hostile.url, "x", "v1", retry=FAST)
    assert_one_clean_error(err.value, "sent us to a URL we cannot follow")


def test_an_upload_location_of_another_scheme_is_refused(tmp_path: Path) -> None:
    def answer(request: Request, _: HostileRegistry) -> Answer:
        if request.method == "POST":
            return Answer(202, {"Location": "ftp://127.0.0.1/upload"})
        return Answer(404 if request.method == "HEAD" else 200)

    tar = write_legacy(tmp_path / "app.tar", [IMAGE])
    with HostileRegistry(answer) as hostile, pytest.raises(RegistryError) as err:
        push_docker_tar(tar, hostile.url, "x", "v1", retry=FAST)
    assert_one_clean_error(err.value, "location that is not http(s): 'ftp://127.0.0.1/upload'")
    assert not hostile.seen("PUT")


@pytest.mark.parametrize("location", ["http://[::1", "http://[::1/v2/x/blobs/uploads/u"])
def test_an_upload_location_that_does_not_parse_is_one_line_naming_the_host(
    tmp_path: Path, location: str
) -> None:
    def answer(request: Request, _: HostileRegistry) -> Answer:
        if request.method == "POST":
            return Answer(202, {"Location": location})
        return Answer(404 if request.method == "HEAD" else 200)

    tar = write_legacy(tmp_path / "app.tar", [IMAGE])
    with HostileRegistry(answer) as hostile:
        with pytest.raises(RegistryError) as err:
            push_docker_tar(tar, hostile.url, "x", "v1", retry=FAST)
        assert_one_clean_error(
            err.value, f"{hostile.host} sent a location that is not a URL: {location!r}"
        )
        assert not hostile.seen("PUT") and not hostile.seen("PATCH")
        done = subprocess.run(
            [sys.executable, "-m", "registryv2", "push", str(tar), f"{hostile.host}/x:v1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"{hostile.host} sent a location that is not a URL" in done.stderr
    assert "internal error" not in done.stderr


def test_a_redirect_that_does_not_parse_is_one_line_naming_the_host() -> None:
    def answer(request: Request, _: HostileRegistry) -> Answer:
        return Answer(307, {"Location": "http://[::1"})

    with HostileRegistry(answer) as hostile, pytest.raises(RegistryError) as err:
        get_manifest(hostile.url, "x", "v1", retry=FAST)
    assert_one_clean_error(err.value, f"{hostile.host} sent us to a URL we cannot follow")


def test_a_listing_whose_pages_never_end_stops() -> None:
    def answer(request: Request, _: HostileRegistry) -> Answer:
        page = int(request.path.rsplit("=", 1)[1]) if "page=" in request.path else 0
        tags = [f"t{page}-{i}" for i in range(1000)]
        link = f'</v2/x/tags/list?page={page + 1}>; rel="next"'
        return Answer(200, {"Link": link}, json.dumps({"tags": tags}).encode())

    started = time.monotonic()
    with HostileRegistry(answer) as hostile, pytest.raises(RegistryError) as err:
        list_tags(hostile.url, "x", retry=FAST)
    assert_one_clean_error(err.value, "more than 1000000 entries")
    assert time.monotonic() - started < 30
    assert len(hostile.requests) <= 1001


def test_ten_million_tags_in_one_page_are_refused_by_size() -> None:
    def answer(request: Request, _: HostileRegistry) -> Answer:
        chunk = b'"' + b"t" * 8 + b'",'
        pieces = (chunk * 100_000 for _ in range(100))  # 10 million tags, 110 MB
        return Answer(200, {}, b'{"tags":[', length=110_000_009, pieces=pieces)

    with HostileRegistry(answer) as hostile, pytest.raises(RegistryError) as err:
        list_tags(hostile.url, "x", retry=FAST)
    assert_one_clean_error(err.value, "larger than the 33554432 bytes allowed")


def requires_basic(inner: Callable[[Request, HostileRegistry], Answer]) -> Callable[..., Answer]:
    """A registry that wants Basic credentials for everything."""

    def answer(request: Request, hostile: HostileRegistry) -> Answer:
        if request.headers.get("Authorization") != BASIC:
            return Answer(401, {"WWW-Authenticate": 'Basic realm="hostile"'})
        return inner(request, hostile)

    return answer


def recorder() -> HostileRegistry:
    """Another host, which asks for credentials as a phishing host would."""
    return HostileRegistry(lambda r, h: Answer(401, {"WWW-Authenticate": 'Basic realm="other"'}))


def test_credentials_never_follow_an_upload_location_to_another_host(tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [IMAGE])
    with recorder() as other:

        def answer(request: Request, _: HostileRegistry) -> Answer:
            if request.method == "HEAD":
                return Answer(404)
            if request.method == "POST":
                return Answer(202, {"Location": f"{other.url}/v2/x/blobs/uploads/u1"})
            return Answer(200)

        with HostileRegistry(requires_basic(answer)) as hostile:
            c = RegistryClient(hostile.url, username=USER, password=PASSWORD, retry=FAST)
            with c, pytest.raises(AuthenticationError) as err:
                c.push(tar, "x", "v1")
        assert [r.headers.get("Authorization") for r in hostile.seen("POST")] == [BASIC] * len(
            hostile.seen("POST")
        )
        assert other.requests, "the uploads should have gone to the other host"
        assert not [r for r in other.requests if "Authorization" in r.headers]
        assert_one_clean_error(err.value, other.host, "not sent there")
        assert PASSWORD not in str(err.value)


def test_credentials_never_follow_a_redirect_to_another_host() -> None:
    raw = json.dumps(manifest_doc()).encode()
    with HostileRegistry(lambda r, h: Answer(200, {"Content-Type": OCI_MANIFEST}, raw)) as other:

        def answer(request: Request, _: HostileRegistry) -> Answer:
            return Answer(307, {"Location": f"{other.url}{request.path}"})

        with HostileRegistry(requires_basic(answer)) as hostile:
            doc = get_manifest(hostile.url, "x", "v1", username=USER, password=PASSWORD)
        assert doc == {**json.loads(raw), "digest": sha256(raw)}
        assert other.requests and not [r for r in other.requests if "Authorization" in r.headers]


@pytest.mark.parametrize(
    ("realm", "complaint"),
    [
        ("http://[::1", "malformed token server"),
        ("http://127.0.0.1:99999/token", "malformed token server"),
        ("ftp://127.0.0.1/token", "must not go to"),
        ("/token", "must not go to"),
    ],
)
def test_a_bad_token_realm_is_an_authentication_error(realm: str, complaint: str) -> None:
    def answer(request: Request, _: HostileRegistry) -> Answer:
        return Answer(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="x"'})

    with HostileRegistry(answer) as hostile, pytest.raises(AuthenticationError) as err:
        list_tags(hostile.url, "x", retry=FAST)
    assert_one_clean_error(err.value, complaint)


@pytest.mark.parametrize(
    "token_answer",
    [b"null", b"{}", b'{"token": null}', b'{"token": 5}', b"<html>", b'{"token": ""}'],
)
def test_a_token_answer_without_a_token_says_what_came_back(token_answer: bytes) -> None:
    with HostileRegistry(lambda r, h: Answer(200, {}, token_answer)) as auth:

        def answer(request: Request, _: HostileRegistry) -> Answer:
            challenge = f'Bearer realm="{auth.url}/token",service="x"'
            return Answer(401, {"WWW-Authenticate": challenge})

        with HostileRegistry(answer) as hostile, pytest.raises(AuthenticationError) as err:
            list_tags(hostile.url, "x", retry=FAST)
    assert_one_clean_error(err.value, "answered without a token", repr(token_answer.decode()))


@responses.activate
def test_a_token_realm_over_http_is_refused_for_an_https_registry() -> None:
    responses.get(
        "https://registry.test/v2/x/tags/list",
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="http://auth.test/token"'},
    )
    token = responses.get("http://auth.test/token", json={"token": "t"})
    with pytest.raises(AuthenticationError) as err:
        list_tags("https://registry.test", "x", username=USER, password=PASSWORD, retry=FAST)
    assert_one_clean_error(err.value, "must not go to", "http://auth.test/token")
    assert token.call_count == 0


def test_the_cli_turns_each_bad_answer_into_one_line(tmp_path: Path) -> None:
    with HostileRegistry(serve_image({**manifest_doc(), "layers": 5})) as hostile:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "registryv2",
                "pull",
                f"{hostile.host}/x:v1",
                "-o",
                str(tmp_path / "out.tar"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "layers is not a list" in done.stderr
    assert list(tmp_path.iterdir()) == []
