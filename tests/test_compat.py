"""Differential tests: the same scenarios through registry-api-v2-client 1.2.0 (its coroutines
under asyncio.run) and through registryv2, on the same archives and the same real registry.

Return values are compared field by field and exceptions by type (registryv2's may be a
subclass of that library's). Every difference tolerated here is one of that library's bugs,
named in TOLERATED with its reason, and listed in docs/migration.md.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import registry_api_v2_client as theirs

import registryv2 as ours

from .archives import rewrite_members, sha256, simple_image, write_docker25, write_legacy
from .hostile import Answer, HostileRegistry
from .servers import RegistryServer, free_port, skopeo

pytestmark = pytest.mark.integration

# That library's bugs, by the name the tests below use to skip over them.
TOLERATED = {
    "config-size": "its pushed manifest gives the config the layers' total size: other clients "
    "refuse the image (skopeo: 'Size mismatch'); registryv2's digest differs as it is right",
    "one-layout": "it reads blobs only from blobs/sha256/: docker < 25 archives cannot be pushed",
    "path-digests": "it takes digests from file names: a docker < 25 archive gets the image ID "
    "'sha256:<hex>.json' and layers 'sha256:layer.tar'",
    "media-types": "it ignores the archive's layer media types and says rootfs.diff.tar",
    "docker-v2-only": "it asks only for Docker v2 manifests: an OCI manifest is a 404 there",
    "one-layout-utilities": "it reads only manifest.json: a bare OCI archive is 'invalid' there",
    "checks-nothing": "its validate_docker_tar checks file names only, not that a config is JSON",
    "port-as-tag": "it splits at the last ':', so 'host:5000/app' has the tag '5000/app'",
    "digest-as-tag": "it splits 'app@sha256:...' at the digest's ':'",
}


@dataclass(frozen=True)
class Outcome:
    """A return value, or the exception raised."""

    value: Any = None
    error: BaseException | None = None


def run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
    try:
        result = function(*args, **kwargs)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return Outcome(value=result)
    except Exception as e:
        return Outcome(error=e)


OURS_FOR = {
    "RegistryError": ours.RegistryError,
    "ValidationError": ours.ValidationError,
    "TarReadError": ours.TarReadError,
    "FileNotFoundError": FileNotFoundError,
}


def both(name: str, *args: Any, **kwargs: Any) -> tuple[Outcome, Outcome]:
    """Call ``name`` from each library with the same arguments."""
    return run(getattr(theirs, name), *args, **kwargs), run(getattr(ours, name), *args, **kwargs)


def dumped(value: Any) -> Any:
    """Their pydantic models and our dataclasses, as plain data, for comparing."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, list):
        return [dumped(v) for v in value]
    return value


def assert_same(
    outcomes: tuple[Outcome, Outcome], *, skip: Callable[[str], bool] = lambda key: False
) -> None:
    """Same value (every field of theirs but the tolerated ones), or same kind of exception."""
    mine, yours = outcomes[1], outcomes[0]
    if yours.error is not None:
        assert mine.error is not None, f"they raised {yours.error!r}, we returned {mine.value!r}"
        wanted = OURS_FOR[type(yours.error).__name__]
        assert isinstance(mine.error, wanted), (yours.error, mine.error)
        return
    assert mine.error is None, f"they returned {yours.value!r}, we raised {mine.error!r}"
    compare(dumped(yours.value), dumped(mine.value), "", skip)


def compare(theirs_value: Any, ours_value: Any, where: str, skip: Callable[[str], bool]) -> None:
    if skip(where):
        return
    if isinstance(theirs_value, dict):
        assert isinstance(ours_value, dict), where
        for key in theirs_value:  # their fields; registryv2 may have more
            compare(theirs_value[key], ours_value.get(key), f"{where}.{key}", skip)
    elif isinstance(theirs_value, list):
        assert isinstance(ours_value, list) and len(ours_value) == len(theirs_value), where
        for n, (a, b) in enumerate(zip(theirs_value, ours_value, strict=True)):
            compare(a, b, f"{where}[{n}]", skip)
    else:
        assert theirs_value == ours_value, f"{where}: {theirs_value!r} != {ours_value!r}"


# -- a registry of this module's own (default catalog pages, as that library reads one) -------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    registry = RegistryServer(tmp_path_factory.mktemp("compat-registry"))
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("compat-archives")
    image = simple_image(tag="compat/app:v1", labels={"a": "b"})
    untagged = simple_image(seed="untagged")
    untagged.tags.clear()
    broken = write_legacy(tmp / "for-broken.tar", [image])
    return {
        "docker25": write_docker25(tmp / "d25.tar", [image]),
        "legacy": write_legacy(tmp / "legacy.tar", [image]),
        "untagged": write_legacy(tmp / "untagged.tar", [untagged]),
        "oci-only": write_docker25(tmp / "oci.tar", [image], manifest_json=False),
        "broken-config": rewrite_members(
            broken, tmp / "broken.tar", lambda n, d: b"{not json" if d == image.config() else d
        ),
        "junk": _write(tmp / "junk.tar", b"this is not a tar archive\n" * 50),
        "missing": tmp / "missing.tar",
        "no-manifest": _without(broken, tmp / "no-manifest.tar", "manifest.json"),
        "no-config": _without(broken, tmp / "no-config.tar", sha256(image.config())[7:] + ".json"),
        "directory": _mkdir(tmp / "a-directory"),
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _without(src: Path, dst: Path, name: str) -> Path:
    """The tar ``src`` less its member ``name``."""
    with tarfile.open(src) as old, tarfile.open(dst, "w") as new:
        for member in old.getmembers():
            if member.name != name:
                new.addfile(member, old.extractfile(member) if member.isreg() else None)
    return dst


# -- connectivity ---------------------------------------------------------------------------


def test_connectivity_to_a_registry(server: RegistryServer) -> None:
    theirs_says, ours_says = (
        run(theirs.check_registry_connectivity, server.url),
        run(ours.check_registry_connectivity, server.url),
    )
    assert theirs_says.value is True and ours_says.value is True


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200),  # a web server, not a registry: no Docker-Distribution-Api-Version
        Answer(401, {"WWW-Authenticate": 'Basic realm="r"'}),  # credentials nobody has
        Answer(500),
    ],
    ids=["200-without-the-version-header", "401", "500"],
)
def test_connectivity_refusals(answer: Answer) -> None:
    with HostileRegistry(lambda request, _: answer) as server:
        outcomes = both("check_registry_connectivity", server.url)
    assert outcomes[0].error is not None
    assert_same(outcomes)
    if answer.status == 401:
        assert "log in" in str(outcomes[1].error)


def test_connectivity_to_a_closed_port() -> None:
    outcomes = both("check_registry_connectivity", f"http://127.0.0.1:{free_port()}")
    assert_same(outcomes)


# -- push -------------------------------------------------------------------------------------


def test_push_with_explicit_tags(
    server: RegistryServer, archives: dict[str, Path], tmp_path: Path
) -> None:
    tar = str(archives["docker25"])
    theirs_digest = run(theirs.push_docker_tar, tar, server.url, "them/explicit", "v1").value
    ours_digest = ours.push_docker_tar(tar, server.url, "us/explicit", "v1")
    assert theirs_digest.startswith("sha256:") and ours_digest.startswith("sha256:")
    assert ours.list_tags(server.url, "them/explicit") == ours.list_tags(server.url, "us/explicit")
    # TOLERATED["config-size"]: what they pushed, another client refuses; ours it takes.
    with pytest.raises(AssertionError, match="Size mismatch"):
        skopeo(
            "copy",
            "--src-tls-verify=false",
            f"docker://{server.host}/them/explicit:v1",
            f"dir:{tmp_path / 'theirs'}",
        )
    out = json.loads(
        skopeo("inspect", "--tls-verify=false", f"docker://{server.host}/us/explicit:v1")
    )
    assert out["Digest"] == ours_digest
    assert theirs_digest != ours_digest


def test_push_of_a_missing_archive(server: RegistryServer, archives: dict[str, Path]) -> None:
    outcomes = both("push_docker_tar", str(archives["missing"]), server.url, "x/missing", "v1")
    assert isinstance(outcomes[0].error, FileNotFoundError)
    assert_same(outcomes)


def test_push_of_a_docker_24_archive(server: RegistryServer, archives: dict[str, Path]) -> None:
    tar = str(archives["legacy"])
    theirs_says = run(theirs.push_docker_tar, tar, server.url, "them/legacy", "v1")
    # TOLERATED["one-layout"]: they cannot; registryv2 pushes it.
    assert isinstance(theirs_says.error, theirs.RegistryError)
    assert ours.push_docker_tar(tar, server.url, "us/legacy", "v1").startswith("sha256:")


def test_push_with_original_tags(server: RegistryServer, archives: dict[str, Path]) -> None:
    tar = str(archives["docker25"])
    assert run(theirs.push_docker_tar_with_original_tags, tar, server.url).error is None
    before = ours.list_tags(server.url, "compat/app")
    assert before == ["v1"]
    assert ours.push_docker_tar_with_original_tags(tar, server.url).startswith("sha256:")
    # Both put it where the archive's tag says: compat/app:v1.
    assert ours.list_tags(server.url, "compat/app") == ["v1"]


def test_push_with_all_original_tags(server: RegistryServer, tmp_path: Path) -> None:
    image = simple_image(tag="compat/all:a", seed="all")
    image.tags.append("compat/all:b")
    tar = str(write_docker25(tmp_path / "all.tar", [image]))
    theirs_digests = run(theirs.push_docker_tar_with_all_original_tags, tar, server.url).value
    ours_digests = ours.push_docker_tar_with_all_original_tags(tar, server.url)
    assert len(theirs_digests) == len(ours_digests) == 2
    assert len(set(ours_digests)) == 1
    assert sorted(ours.list_tags(server.url, "compat/all")) == ["a", "b"]


# -- listing, manifests, image info, deletes -------------------------------------------------


def test_listing(server: RegistryServer, archives: dict[str, Path]) -> None:
    ours.push_docker_tar(archives["legacy"], server.url, "list/me", "v1")
    assert_same(both("list_repositories", server.url))
    assert_same(both("list_tags", server.url, "list/me"))
    assert_same(both("list_tags", server.url, "list/none"))  # an error on both sides


@pytest.mark.parametrize("by_keyword", [False, True], ids=["positional", "tag="])
def test_manifest_and_image_info(
    server: RegistryServer, archives: dict[str, Path], by_keyword: bool
) -> None:
    # A Docker v2 manifest, which that library can ask for.
    ours.push_docker_tar(archives["legacy"], server.url, "info/v2", "v1")
    for name in ("get_manifest", "get_image_info"):
        if by_keyword:
            outcomes = both(name, server.url, "info/v2", tag="v1")
        else:
            outcomes = both(name, server.url, "info/v2", "v1")
        assert outcomes[0].error is None
        assert_same(outcomes)
    assert_same(both("get_manifest", server.url, "info/v2", "nope"))  # missing: both raise


def test_an_oci_manifest(server: RegistryServer, archives: dict[str, Path]) -> None:
    ours.push_docker_tar(archives["docker25"], server.url, "info/oci", "v1")
    theirs_says, ours_says = both("get_manifest", server.url, "info/oci", "v1")
    # TOLERATED["docker-v2-only"]
    assert isinstance(theirs_says.error, theirs.RegistryError)
    assert ours_says.value["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_delete(server: RegistryServer, archives: dict[str, Path], by: str) -> None:
    for who in ("them", "us"):
        ours.push_docker_tar(archives["legacy"], server.url, f"{who}/delete-{by}", "v1")
    digest = ours.get_manifest(server.url, f"us/delete-{by}", "v1")["digest"]
    if by == "tag":
        assert run(theirs.delete_image, server.url, f"them/delete-{by}", "v1").value is True
        assert ours.delete_image(server.url, f"us/delete-{by}", "v1") is True
    else:
        done = run(theirs.delete_image_by_digest, server.url, f"them/delete-{by}", digest)
        assert done.value is True
        assert ours.delete_image_by_digest(server.url, f"us/delete-{by}", digest) is True
    gone = (
        run(theirs.get_manifest, server.url, f"them/delete-{by}", "v1"),
        run(ours.get_manifest, server.url, f"us/delete-{by}", "v1"),
    )
    assert gone[0].error is not None
    assert_same(gone)


# -- archive utilities ------------------------------------------------------------------------

UTILITIES = [
    "validate_docker_tar",
    "get_tar_manifest",
    "inspect_docker_tar",
    "extract_original_tags",
    "get_primary_tag",
]

# Where that library's bugs make it answer otherwise on these archives.
SKIPS: dict[tuple[str, str], str] = {
    ("legacy", "inspect_docker_tar"): "path-digests",
    ("docker25", "inspect_docker_tar"): "media-types",
    ("untagged", "inspect_docker_tar"): "path-digests",
    ("oci-only", "validate_docker_tar"): "one-layout-utilities",
    ("oci-only", "get_tar_manifest"): "one-layout-utilities",
    ("oci-only", "inspect_docker_tar"): "one-layout-utilities",
    ("broken-config", "validate_docker_tar"): "checks-nothing",
}
SKIPPED_FIELDS = {
    "path-digests": (
        ".id",
        ".layers[0].digest",
        ".layers[1].digest",
        ".layers[0].media_type",
        ".layers[1].media_type",
    ),
    "media-types": (".layers[0].media_type", ".layers[1].media_type"),
}


@pytest.mark.parametrize(
    "kind", ["docker25", "legacy", "untagged", "oci-only", "broken-config", "junk", "missing"]
)
@pytest.mark.parametrize("name", UTILITIES)
def test_archive_utilities(archives: dict[str, Path], kind: str, name: str) -> None:
    path = archives[kind]
    outcomes = both(name, path)
    bug = SKIPS.get((kind, name))
    if bug in SKIPPED_FIELDS:
        fields = SKIPPED_FIELDS[bug]
        assert_same(outcomes, skip=lambda where: where in fields)
    elif bug is not None:
        # A whole answer of theirs is wrong here: ours is checked on its own.
        assert TOLERATED[bug]
        assert outcomes[1].error is None or kind == "broken-config"
    else:
        assert_same(outcomes)


def test_the_utilities_answer_the_same_where_it_matters(archives: dict[str, Path]) -> None:
    # The comparisons above would pass if both sides raised everywhere: they do not.
    assert ours.validate_docker_tar(archives["docker25"]) is True
    assert ours.extract_original_tags(archives["broken-config"]) == ["compat/app:v1"]
    assert ours.get_primary_tag(archives["legacy"]) == ("compat/app", "v1")
    assert ours.inspect_docker_tar(archives["oci-only"]).repo_tags == ["compat/app:v1"]
    assert ours.validate_docker_tar(archives["broken-config"]) is False


EDGE_STRINGS = [
    "nginx",
    "nginx:alpine",
    "my-app:latest",
    "app:",
    "localhost:5000/nginx:alpine",
    "registry.io:443/user/app:v1.0",
    "registry.io/user/repo:v2.0",
    "a/b/c:d",
    "UPPER:Tag",
    "",
    ":",
    "app::x",
]
THEIR_BUGS = {
    "localhost:5000/myapp": ("localhost:5000/myapp", "latest"),  # port-as-tag
    "app@sha256:" + "a" * 64: ("app", "sha256:" + "a" * 64),  # digest-as-tag
}


@pytest.mark.parametrize("text", EDGE_STRINGS)
def test_parse_repository_tag(text: str) -> None:
    assert_same(both("parse_repository_tag", text))


@pytest.mark.parametrize(("text", "expected"), THEIR_BUGS.items())
def test_parse_repository_tag_where_they_are_wrong(text: str, expected: tuple[str, str]) -> None:
    assert theirs.parse_repository_tag(text) != expected
    assert ours.parse_repository_tag(text) == expected


# -- models and exceptions --------------------------------------------------------------------


def test_models_take_their_arguments() -> None:
    config = ours.RegistryConfig(url="http://localhost:15000/", timeout=60)
    assert config.base_url == "http://localhost:15000" and config.timeout == 60
    blob = ours.BlobInfo(digest="sha256:abc1234567890", size=1024)
    assert blob.media_type == "application/octet-stream" and blob.digest_short == "abc123456789"
    layer = ours.BlobInfo("sha256:l", 2048, "application/vnd.docker.image.rootfs.diff.tar.gzip")
    manifest = ours.ManifestInfo(
        2, "application/vnd.docker.distribution.manifest.v2+json", blob, (layer,)
    )
    assert manifest.total_size == 3072 and manifest.digest == ""
    their_info = theirs.ImageInspect(
        id="sha256:x",
        created="2024-01-01T00:00:00Z",
        architecture="amd64",
        os="linux",
        config=theirs.ImageConfig(architecture="amd64", os="linux", created="2024-01-01T00:00:00Z"),
    )
    mine = ours.ImageInspect(
        id="sha256:x",
        created=their_info.created,
        architecture="amd64",
        os="linux",
        config=ours.ImageConfig(architecture="amd64", os="linux", created=their_info.created),
    )
    assert_same((Outcome(their_info), Outcome(mine)))


def test_exceptions_nest_as_there() -> None:
    for name in ("TarReadError", "ValidationError"):
        assert issubclass(getattr(theirs, name), theirs.RegistryError)
        assert issubclass(getattr(ours, name), ours.RegistryError)
    assert issubclass(ours.ValidationError, ValueError)
    for error in (ours.DigestMismatchError, ours.NotFoundError, ours.ArchiveWriteError):
        assert issubclass(error, ours.RegistryError)


def test_the_tolerated_differences_are_the_documented_ones() -> None:
    migration = (Path(__file__).parent.parent / "docs" / "migration.md").read_text()
    for reason in TOLERATED:
        assert f"`{reason}`" in migration, f"docs/migration.md does not explain {reason}"


# -- their messages -----------------------------------------------------------------------------
# Code migrated from that library (and its own test suite) matches on its messages: for the same
# failure, ours begin with its words, then say which file or reference and what is wrong.

ARCHIVE_WORDS = [
    ("validate_docker_tar", "missing", "Tar file does not exist"),
    ("get_tar_manifest", "missing", "Tar file does not exist"),
    ("inspect_docker_tar", "missing", "Tar file does not exist"),
    ("get_tar_manifest", "junk", "Invalid Docker tar file"),
    ("inspect_docker_tar", "junk", "Invalid Docker tar file"),
    ("get_tar_manifest", "no-manifest", "Invalid Docker tar file"),
    ("inspect_docker_tar", "no-manifest", "Invalid Docker tar file"),
    ("get_tar_manifest", "no-config", "Invalid Docker tar file"),
    ("inspect_docker_tar", "no-config", "Invalid Docker tar file"),
    ("inspect_docker_tar", "broken-config", "Cannot read config file"),
    ("get_tar_manifest", "directory", "Error reading tar file"),
    ("inspect_docker_tar", "directory", "Error reading tar file"),
]


def assert_their_words(theirs_says: Outcome, function: Callable[[], Any], words: str) -> None:
    """They raise with ``words`` first; we raise the same kind of error, beginning alike."""
    assert theirs_says.error is not None and str(theirs_says.error).startswith(words)
    with pytest.raises(OURS_FOR[type(theirs_says.error).__name__], match=re.escape(words)) as e:
        function()
    message = str(e.value)
    assert message.startswith(f"{words}: ") and "\n" not in message, message
    assert len(message) > len(words) + 2  # then our own detail


@pytest.mark.parametrize(("name", "kind", "words"), ARCHIVE_WORDS)
def test_their_words_begin_our_archive_messages(
    archives: dict[str, Path], name: str, kind: str, words: str
) -> None:
    path = archives[kind]
    assert_their_words(run(getattr(theirs, name), path), lambda: getattr(ours, name)(path), words)
    if kind != "directory":
        with pytest.raises(ours.RegistryError, match=re.escape(str(path))):
            getattr(ours, name)(path)  # and ours names the file


PUSH_WORDS = [
    ("push_docker_tar", "missing", ("words/missing", "v1"), "Tar file not found"),
    ("push_docker_tar", "junk", ("words/junk", "v1"), "Invalid Docker tar file"),
    ("push_docker_tar", "no-manifest", ("words/no-manifest", "v1"), "Invalid Docker tar file"),
    ("push_docker_tar", "broken-config", ("words/config", "v1"), "Cannot read config file"),
    (
        "push_docker_tar_with_original_tags",
        "untagged",
        (),
        "No repository specified and could not extract repository from tar file",
    ),
    (
        "push_docker_tar_with_all_original_tags",
        "untagged",
        (),
        "No original tags found in tar file",
    ),
]


@pytest.mark.parametrize(("name", "kind", "args", "words"), PUSH_WORDS)
def test_their_words_begin_our_push_messages(
    server: RegistryServer,
    archives: dict[str, Path],
    name: str,
    kind: str,
    args: tuple[str, ...],
    words: str,
) -> None:
    tar = str(archives[kind])
    assert_their_words(
        run(getattr(theirs, name), tar, server.url, *args),
        lambda: getattr(ours, name)(tar, server.url, *args),
        words,
    )


def test_their_words_begin_our_listing_messages(server: RegistryServer) -> None:
    assert_their_words(
        run(theirs.list_tags, server.url, "words/none"),
        lambda: ours.list_tags(server.url, "words/none"),
        "Failed to list tags for words/none",
    )


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Answer(200), "Failed to connect to registry: Registry does not support API v2"),
        (
            Answer(401, {"WWW-Authenticate": 'Basic realm="r"'}),
            "Failed to connect to registry: Registry requires authentication",
        ),
        (Answer(500), "Failed to connect to registry: Registry returned unexpected status: 500"),
    ],
    ids=["200-without-the-version-header", "401", "500"],
)
def test_their_words_begin_our_connectivity_messages(answer: Answer, words: str) -> None:
    with HostileRegistry(lambda request, _: answer) as server:
        assert_their_words(
            run(theirs.check_registry_connectivity, server.url),
            lambda: ours.check_registry_connectivity(
                server.url, retry=ours.RetryPolicy(attempts=1)
            ),
            words,
        )


def test_their_words_for_a_registry_that_is_not_there() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert_their_words(
        run(theirs.check_registry_connectivity, url),
        lambda: ours.check_registry_connectivity(url, retry=ours.RetryPolicy(attempts=1)),
        "Failed to connect to registry",
    )
