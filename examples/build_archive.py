"""Build a ``docker save``-style archive (docker 25+ layout) from a root filesystem directory.

Usage: python examples/build_archive.py ROOTFS TAG OUT.tar

The image has one gzip layer holding ROOTFS and runs ``/bin/sh``; docker, skopeo and registryv2
all read the result.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build(rootfs: Path, tag: str, out: Path) -> str:
    """Write the archive; return the image's manifest digest."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for path in sorted(rootfs.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(rootfs)), recursive=False)
    diff_id = _digest(layer.getvalue())
    blob = gzip.compress(layer.getvalue(), mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _digest(blob),
                    "size": len(blob),
                }
            ],
        }
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "annotations": {
                        "io.containerd.image.name": tag,
                        "org.opencontainers.image.ref.name": tag.rsplit(":", 1)[-1],
                    },
                }
            ],
        }
    ).encode()
    entries = json.dumps(
        [
            {
                "Config": "blobs/sha256/" + _digest(config)[7:],
                "RepoTags": [tag],
                "Layers": ["blobs/sha256/" + _digest(blob)[7:]],
            }
        ]
    ).encode()
    with tarfile.open(out, "w") as tar:
        for name, data in [
            ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
            ("blobs/sha256/" + _digest(config)[7:], config),
            ("blobs/sha256/" + _digest(blob)[7:], blob),
            ("blobs/sha256/" + _digest(manifest)[7:], manifest),
            ("index.json", index),
            ("manifest.json", entries),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return _digest(manifest)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    print(build(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
