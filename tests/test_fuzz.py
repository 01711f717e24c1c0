"""Fuzzing the parsers of untrusted input: random and mutated manifests, configs and archives
raise only the documented exceptions, quickly. Bounded by example count and a deadline."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registryv2 import ImageArchive, ImageConfig, RegistryV2Error, ValidationError
from registryv2.archive.inspect import (
    extract_original_tags,
    get_tar_manifest,
    inspect_docker_tar,
    validate_docker_tar,
)
from registryv2.manifest import parse_manifest

from .archives import sha256, simple_image, write_docker25, write_legacy

FUZZ = settings(
    max_examples=150,
    deadline=2000,  # milliseconds per example: anything slower is a hang in the making
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same examples every run: a failure here is reproducible
)

KEYS = [
    "schemaVersion", "mediaType", "config", "layers", "manifests", "digest", "size",
    "platform", "os", "architecture", "Env", "Labels", "Cmd", "rootfs", "diff_ids",
    "Config", "RepoTags", "Layers", "annotations",
]  # fmt: skip
DIGEST = "sha256:" + "a" * 64

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.just(DIGEST),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)


def mutate(doc: Any, path: list[int], value: Any) -> Any:
    """Replace one node of ``doc`` (chosen by ``path``) with ``value``."""
    if not path or not isinstance(doc, dict | list) or not doc:
        return value
    if isinstance(doc, dict):
        key = sorted(doc)[path[0] % len(doc)]
        return {**doc, key: mutate(doc[key], path[1:], value)}
    index = path[0] % len(doc)
    return [*doc[:index], mutate(doc[index], path[1:], value), *doc[index + 1 :]]


IMAGE = simple_image()
VALID_MANIFEST = json.loads(IMAGE.oci_manifest())
VALID_CONFIG = json.loads(IMAGE.config())


@FUZZ
@given(st.binary(max_size=2000))
def test_manifest_parser_on_random_bytes(raw: bytes) -> None:
    with contextlib.suppress(ValidationError):
        parse_manifest(raw)


@FUZZ
@given(json_values)
def test_manifest_parser_on_random_json(doc: Any) -> None:
    try:
        info = parse_manifest(json.dumps(doc).encode())
    except ValidationError:
        return
    # Whatever it accepted is safe to use: digests that are digests, sizes that are sizes.
    blobs = [*info.layers, *([info.config] if info.config else [])]
    for digest, size in [(b.digest, b.size) for b in blobs] + [
        (m.digest, m.size) for m in info.manifests
    ]:
        assert digest.startswith(("sha256:", "sha512:")) and "/" not in digest
        assert isinstance(size, int) and size >= 0


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=50), max_size=4), json_values)
def test_manifest_parser_on_mutated_manifests(path: list[int], value: Any) -> None:
    with contextlib.suppress(ValidationError):
        parse_manifest(json.dumps(mutate(VALID_MANIFEST, path, value)).encode())


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=50), max_size=4), json_values)
def test_config_reader_on_mutated_configs(path: list[int], value: Any) -> None:
    with contextlib.suppress(ValidationError):
        ImageConfig.from_json(mutate(VALID_CONFIG, path, value))


def archive_with(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


MEMBER_NAMES = st.sampled_from(
    ["manifest.json", "index.json", "oci-layout", "repositories", "config.json", "l/layer.tar",
     f"blobs/sha256/{'a' * 64}", "../escape", "/abs"]
)  # fmt: skip
MEMBER_DATA = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.builds(
        lambda entries: json.dumps(entries).encode(),
        st.lists(
            st.fixed_dictionaries(
                {"Config": st.sampled_from(["config.json", "nope"]),
                 "Layers": st.lists(st.sampled_from(["l/layer.tar", "x"]), max_size=2),
                 "RepoTags": st.lists(st.sampled_from(["a:1", "Bad Tag", "b"]), max_size=2)}
            ),
            max_size=2,
        ),
    ),
)  # fmt: skip


def use_every_reader(path: Path) -> None:
    """Every function that reads an archive: only documented errors may come out."""
    try:
        with ImageArchive.open(path) as archive:
            for image in archive.images:
                image.inspect()
                for blob in image.blobs:
                    with blob.open() as f:
                        f.read()
    except RegistryV2Error:
        pass
    for reader in (inspect_docker_tar, get_tar_manifest, extract_original_tags):
        with contextlib.suppress(RegistryV2Error):
            reader(path)
    assert validate_docker_tar(path) in (True, False)


@FUZZ
@given(st.dictionaries(MEMBER_NAMES, MEMBER_DATA, max_size=6), st.booleans())
def test_archive_readers_on_random_archives(members: dict[str, bytes], compress: bool) -> None:
    data = archive_with(members)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.tar"
        path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
        use_every_reader(path)


@st.composite
def coherent_archives(draw: st.DrawFn) -> dict[str, bytes]:
    """A legacy archive whose manifest.json entry, config and layer are each maybe mutated:
    deep enough to reach inspection and validation, not only the first checks."""
    paths = st.lists(st.integers(min_value=0, max_value=50), max_size=3)
    entry: Any = {"Config": "config.json", "Layers": ["l/layer.tar"], "RepoTags": ["app:v1"]}
    config: Any = VALID_CONFIG
    if draw(st.booleans()):
        entry = mutate(entry, draw(paths), draw(json_values))
    if draw(st.booleans()):
        config = mutate(config, draw(paths), draw(json_values))
    layer = draw(st.sampled_from([IMAGE.layers[0], b"", b"\x1f\x8b\x08junk", b"x" * 513]))
    return {
        "manifest.json": json.dumps([entry]).encode(),
        "config.json": json.dumps(config).encode(),
        "l/layer.tar": layer,
    }


@FUZZ
@given(coherent_archives(), st.booleans())
def test_archive_readers_on_coherent_archives(members: dict[str, bytes], compress: bool) -> None:
    data = archive_with(members)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.tar"
        path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
        use_every_reader(path)


GOOD: dict[str, bytes] = {}
with tempfile.TemporaryDirectory() as _tmp:
    GOOD["legacy"] = write_legacy(Path(_tmp) / "legacy.tar", [IMAGE]).read_bytes()
    GOOD["docker25"] = write_docker25(Path(_tmp) / "docker25.tar", [IMAGE]).read_bytes()


@FUZZ
@given(
    st.sampled_from(sorted(GOOD)),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_archive_readers_on_damaged_archives(layout: str, flips: list[tuple[int, int]]) -> None:
    data = bytearray(GOOD[layout])
    for offset, byte in flips:
        data[offset % len(data)] = byte
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.tar"
        path.write_bytes(bytes(data))
        use_every_reader(path)


def test_the_fuzzed_readers_do_accept_good_archives() -> None:
    # The fuzz tests would pass for a reader refusing everything: not this one.
    with tempfile.TemporaryDirectory() as tmp:
        for layout, data in GOOD.items():
            path = Path(tmp) / f"{layout}.tar"
            path.write_bytes(data)
            assert validate_docker_tar(path), layout
            assert inspect_docker_tar(path).id == sha256(IMAGE.config())
