from __future__ import annotations

from pathlib import Path

import pytest

from registryv2 import Reference, ValidationError, parse_repository_tag
from registryv2.mirrors import endpoint_for, load_mirrors
from registryv2.reference import normalize_archive_tag, registry_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", None, "nginx", "latest", None),
        ("nginx:alpine", None, "nginx", "alpine", None),
        ("library/nginx:1.25", None, "library/nginx", "1.25", None),
        ("localhost:5000/app", "localhost:5000", "app", "latest", None),
        ("localhost/app:v1", "localhost", "app", "v1", None),
        ("ghcr.io/org/team/app:1", "ghcr.io", "org/team/app", "1", None),
        ("127.0.0.1:15000/a/b:c", "127.0.0.1:15000", "a/b", "c", None),
        (f"app@{DIGEST}", None, "app", None, DIGEST),
        (f"reg.io:443/app:v1@{DIGEST}", "reg.io:443", "app", "v1", DIGEST),
        ("http://localhost:15000/app:v2", "localhost:15000", "app", "v2", None),
        ("http://registry/app:v2", "registry", "app", "v2", None),
        ("a__b/c-d.e:T_1.x-y", None, "a__b/c-d.e", "T_1.x-y", None),
    ],
)
def test_parse(
    text: str, registry: str | None, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        (" app", "spaces"),
        ("App:v1", "lowercase"),
        ("app:", "bad tag"),
        ("app:-x", "bad tag"),
        ("app@sha256:short", "not a sha256 digest"),
        ("a//b", "lowercase components"),
        ("app:" + "x" * 200, "bad tag"),
    ],
)
def test_parse_rejects_with_a_reason(text: str, complaint: str) -> None:
    with pytest.raises(ValidationError) as err:
        Reference.parse(text)
    assert complaint in str(err.value)
    assert repr(text) in str(err.value)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("docker.io/library/nginx:alpine", ("nginx", "alpine")),
        ("docker.io/bench/app:v1", ("bench/app", "v1")),
        ("ghcr.io/org/app:1", ("org/app", "1")),
        ("nginx", ("nginx", "latest")),
        ("library/nginx:1", ("nginx", "1")),
        ("ghcr.io/library/x:1", ("library/x", "1")),
        ("localhost:5000/library/app:v1", ("library/app", "v1")),
        ("docker.io/library/a/b:1", ("library/a/b", "1")),
    ],
)
def test_normalize_archive_tag(tag: str, expected: tuple[str, str]) -> None:
    assert normalize_archive_tag(tag) == expected


def test_parse_repository_tag_keeps_the_host_like_the_async_client() -> None:
    assert parse_repository_tag("localhost:5000/myapp:latest") == ("localhost:5000/myapp", "latest")
    assert parse_repository_tag("myapp") == ("myapp", "latest")
    assert parse_repository_tag(f"myapp@{DIGEST}") == ("myapp", DIGEST)


def test_str_round_trips() -> None:
    for text in ["localhost:5000/a/b:c", f"x@{DIGEST}", "ghcr.io/o/p:1"]:
        assert str(Reference.parse(text)) == text


# Docker's own normalization (github.com/distribution/reference): a name without a registry is
# on Docker Hub, single names are under library/, index.docker.io is docker.io.
HUB = "registry-1.docker.io"
LIB = "docker.io/library"
DOCKER_EXAMPLES = [
    # text, as docker writes it in full, as docker shows it, where it is reached
    ("ubuntu", f"{LIB}/ubuntu:latest", "ubuntu:latest", HUB),
    ("ubuntu:14.04", f"{LIB}/ubuntu:14.04", "ubuntu:14.04", HUB),
    ("library/debian", f"{LIB}/debian:latest", "debian:latest", HUB),
    ("docker/docker", "docker.io/docker/docker:latest", "docker/docker:latest", HUB),
    ("docker.io/debian", f"{LIB}/debian:latest", "debian:latest", HUB),
    ("index.docker.io/debian", f"{LIB}/debian:latest", "debian:latest", HUB),
    (
        "index.docker.io/docker/docker",
        "docker.io/docker/docker:latest",
        "docker/docker:latest",
        HUB,
    ),
    ("127.0.0.1:5000/debian", "127.0.0.1:5000/debian:latest", None, "127.0.0.1:5000"),
    ("localhost/foo", "localhost/foo:latest", None, "localhost"),
    ("example.com/busybox:notlatest", "example.com/busybox:notlatest", None, "example.com"),
    (f"busybox@{DIGEST}", f"{LIB}/busybox@{DIGEST}", f"busybox@{DIGEST}", HUB),
    (
        "https://127.0.0.1:15511/x/debian:1",
        "127.0.0.1:15511/x/debian:1",
        None,
        "https://127.0.0.1:15511",
    ),
    ("http://registry/x:1", "registry/x:1", None, "http://registry"),
]


@pytest.mark.parametrize(("text", "full", "familiar", "endpoint"), DOCKER_EXAMPLES)
def test_references_as_docker_reads_them(
    text: str, full: str, familiar: str | None, endpoint: str
) -> None:
    ref = registry_reference(text)
    assert (str(ref), ref.familiar, ref.endpoint) == (full, familiar or full, endpoint)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("Docker/docker", "must be lowercase"),
        ("127.0.0.1:15511", "that is a registry"),
        ("registry.example.com", "that is a registry"),
        ("localhost:5000", "that is a registry"),
        ("https://ghcr.io", "that is a registry"),
        ("https://", "a scheme needs a registry and a repository"),
    ],
)
def test_references_docker_refuses(text: str, complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        registry_reference(text)


def test_mirrors_from_the_variable_and_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "mirrors"
    conf.write_text("# air-gapped site\nindex.docker.io = http://10.0.0.5:5000\nquay.io=q.local\n")
    mirrors = load_mirrors(
        {"REGISTRYV2_MIRRORS": "quay.io=https://quay.mirror,ghcr.io=g:5000"}, conf
    )
    assert mirrors == {
        "docker.io": "http://10.0.0.5:5000",  # every Docker Hub name is docker.io
        "quay.io": "https://quay.mirror",  # the variable wins over the file
        "ghcr.io": "g:5000",
    }
    assert endpoint_for(registry_reference("busybox:1"), mirrors) == "http://10.0.0.5:5000"
    assert endpoint_for(registry_reference("ghcr.io/o/app:1"), mirrors) == "g:5000"
    assert endpoint_for(registry_reference("example.com/a:1"), mirrors) == "example.com"
    assert load_mirrors({}, tmp_path / "none") == {}
    for junk in ["docker.io", "=x", "docker.io=ftp://x", "a=b c"]:
        with pytest.raises(ValidationError):
            load_mirrors({"REGISTRYV2_MIRRORS": junk}, tmp_path / "none")
