from __future__ import annotations

import pytest

from registryv2 import Reference, ValidationError, parse_repository_tag
from registryv2.reference import normalize_archive_tag

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
