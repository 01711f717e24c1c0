"""Image archives built with tarfile, in every layout the reader must understand.

Everything is deterministic (fixed mtimes, sorted keys) so that digests can be asserted.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer: a tar of the given files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@dataclass
class SampleImage:
    """An image to write into an archive: layer tars, how each is stored, and its tags."""

    layers: list[bytes]
    tags: list[str]
    compression: list[str] = field(default_factory=list)  # per layer: "none" or "gzip"
    architecture: str = "amd64"
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.compression:
            self.compression = ["none"] * len(self.layers)

    def stored_layers(self) -> list[bytes]:
        return [
            gzip_bytes(x) if c == "gzip" else x
            for x, c in zip(self.layers, self.compression, strict=True)
        ]

    def config(self) -> bytes:
        run: dict[str, object] = {
            "Env": ["PATH=/usr/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": self.labels,
        }
        if self.exposed_ports:  # only then: the other images keep their digests
            run["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        doc = {
            "architecture": self.architecture,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": run,
            "rootfs": {"type": "layers", "diff_ids": [sha256(x) for x in self.layers]},
            "history": [{"created_by": f"layer {i}"} for i in range(len(self.layers))],
        }
        return json.dumps(doc, sort_keys=True).encode()

    def oci_manifest(self) -> bytes:
        config = self.config()
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER[c], "digest": sha256(x), "size": len(x)}
                for x, c in zip(self.stored_layers(), self.compression, strict=True)
            ],
        }
        return json.dumps(doc).encode()


def simple_image(
    tag: str = "example.com/team/app:v1", n_layers: int = 2, seed: str = "x", **kw: object
) -> SampleImage:
    layers = [
        layer_tar(
            {
                f"file{i}.txt": f"{seed} layer {i}\n".encode() * (i + 1),
                f"dir{i}/data.bin": os.urandom(2048),
            }
        )
        for i in range(n_layers)
    ]
    return SampleImage(layers=layers, tags=[tag], **kw)  # type: ignore[arg-type]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


def _add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def write_legacy(path: Path, images: list[SampleImage], *, compress: bool = False) -> Path:
    """Docker < 25: manifest.json, repositories, <id>/layer.tar, <config-hex>.json."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        entries: list[dict[str, object]] = []
        repositories: dict[str, dict[str, str]] = {}
        for image in images:
            config = image.config()
            config_name = sha256(config)[7:] + ".json"
            _add(tar, config_name, config)
            layer_names = []
            parent = ""
            for stored in image.stored_layers():
                layer_id = hashlib.sha256((parent + sha256(stored)).encode()).hexdigest()
                _add(tar, f"{layer_id}/VERSION", b"1.0")
                _add(tar, f"{layer_id}/json", json.dumps({"id": layer_id}).encode())
                _add(tar, f"{layer_id}/layer.tar", stored)
                layer_names.append(f"{layer_id}/layer.tar")
                parent = layer_id
            entries.append({"Config": config_name, "RepoTags": image.tags, "Layers": layer_names})
            for t in image.tags:
                repo, tag = t.rsplit(":", 1)
                repositories.setdefault(repo, {})[tag] = parent
        _add(tar, "repositories", json.dumps(repositories).encode())
        _add(tar, "manifest.json", json.dumps(entries).encode())
    data = raw.getvalue()
    path.write_bytes(gzip_bytes(data) if compress else data)
    return path


def write_docker25(
    path: Path,
    images: list[SampleImage],
    *,
    manifest_json: bool = True,
    symlinked_layers: bool = False,
) -> Path:
    """Docker 25+: an OCI image layout plus manifest.json pointing into blobs/."""
    with tarfile.open(path, mode="w") as tar:
        written: set[str] = set()
        manifests: list[dict[str, object]] = []
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        entries = []

        def blob(data: bytes) -> str:
            name = "blobs/sha256/" + sha256(data)[7:]
            if name not in written:
                _add(tar, name, data)
                written.add(name)
            return name

        for image in images:
            config_name = blob(image.config())
            layer_names = [blob(x) for x in image.stored_layers()]
            manifest = image.oci_manifest()
            blob(manifest)
            tags: list[str | None] = [*image.tags] or [None]
            for t in tags:
                annotations = {}
                if t:
                    annotations = {
                        "io.containerd.image.name": t,
                        "org.opencontainers.image.ref.name": t.rsplit(":", 1)[1],
                    }
                manifests.append(
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": sha256(manifest),
                        "size": len(manifest),
                        "annotations": annotations,
                    }
                )
            if symlinked_layers:
                # As some tools do: legacy-looking paths that link into blobs/.
                linked = []
                for n, name in enumerate(layer_names):
                    _add_symlink(tar, f"legacy{n}/layer.tar", "../" + name)
                    linked.append(f"legacy{n}/layer.tar")
                layer_names = linked
            entries.append({"Config": config_name, "RepoTags": image.tags, "Layers": layer_names})
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(tar, "index.json", json.dumps(index).encode())
        if manifest_json:
            _add(tar, "manifest.json", json.dumps(entries).encode())
    return path


def _write_oci_layout(
    path: Path, blobs: list[bytes], top: bytes, media_type: str, ref: str
) -> None:
    """An OCI image layout directory holding ``blobs`` and ``top``, with ``ref`` naming ``top``."""
    directory = path / "blobs" / "sha256"
    directory.mkdir(parents=True, exist_ok=True)
    for data in [*blobs, top]:
        (directory / sha256(data)[7:]).write_bytes(data)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": media_type,
                "digest": sha256(top),
                "size": len(top),
                "annotations": {"org.opencontainers.image.ref.name": ref},
            }
        ],
    }
    (path / "index.json").write_text(json.dumps(index))
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def write_oci_dir(path: Path, image: SampleImage, ref: str = "latest") -> Path:
    """An OCI image layout directory, for skopeo to read (``oci:DIR:REF``)."""
    _write_oci_layout(
        path, [image.config(), *image.stored_layers()], image.oci_manifest(), OCI_MANIFEST, ref
    )
    return path


def write_big_legacy(path: Path, tag: str, layer_sizes: list[int]) -> Path:
    """A legacy archive with large random layers, written without holding a layer in memory."""
    work = path.parent / (path.name + ".parts")
    work.mkdir(exist_ok=True)
    layer_paths, diff_ids = [], []
    for n, size in enumerate(layer_sizes):
        inner = work / f"payload{n}"
        with open(inner, "wb") as f:
            left = size
            while left:
                step = min(left, 4 << 20)
                f.write(os.urandom(step))
                left -= step
        layer = work / f"layer{n}.tar"
        with tarfile.open(layer, "w") as tar:
            tar.add(inner, arcname=f"payload{n}.bin")
        inner.unlink()
        layer_paths.append(layer)
        diff_ids.append(file_digest(layer))
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    with tarfile.open(path, "w") as tar:
        _add(tar, "config.json", config)
        names = []
        for n, layer in enumerate(layer_paths):
            tar.add(layer, arcname=f"l{n}/layer.tar")
            names.append(f"l{n}/layer.tar")
            layer.unlink()
        _add(
            tar,
            "manifest.json",
            json.dumps([{"Config": "config.json", "RepoTags": [tag], "Layers": names}]).encode(),
        )
    work.rmdir()
    return path


def write_oci_index_dir(path: Path, images: list[SampleImage], ref: str = "latest") -> bytes:
    """An OCI layout directory whose ``ref`` is an index of the images, one per architecture.

    Returns the index bytes.
    """
    blobs: list[bytes] = []
    entries = []
    for image in images:
        manifest = image.oci_manifest()
        blobs += [image.config(), manifest, *image.stored_layers()]
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": sha256(manifest),
                "size": len(manifest),
                "platform": {"os": "linux", "architecture": image.architecture},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    _write_oci_layout(path, blobs, index, OCI_INDEX, ref)
    return index


def rewrite_members(src: Path, dst: Path, change: Callable[[str, bytes], bytes]) -> Path:
    """Copy the tar ``src`` to ``dst``, each regular member's bytes passed through ``change``."""
    with tarfile.open(src) as old, tarfile.open(dst, "w") as new:
        for member in old.getmembers():
            data = None
            if member.isreg():
                extracted = old.extractfile(member)
                assert extracted is not None
                data = change(member.name, extracted.read())
                member.size = len(data)
            new.addfile(member, io.BytesIO(data) if data is not None else None)
    return dst
