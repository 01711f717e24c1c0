"""Copy an image to another registry (same digest there), then give it a second tag.

Usage: python examples/copy_and_tag.py SOURCE TARGET NEW_TAG
       (e.g. localhost:15000/team/app:v1 localhost:15001/mirror/app:v1 stable)
"""

import sys

from registryv2 import copy, get_manifest, tag


def main(source: str, target: str, new_tag: str) -> None:
    # Blobs stream registry to registry, never touching the disk; an index keeps every platform.
    digest = copy(source, target).digest
    print("copied", source, "->", target, digest)

    # A tag re-puts the manifest's bytes: no blob moves, the digest stays.
    print("tagged", new_tag, tag(target, new_tag).digest)

    registry, _, path = target.partition("/")
    repository = path.rsplit(":", 1)[0]
    assert get_manifest(registry, repository, new_tag)["digest"] == digest


if __name__ == "__main__":
    main(*sys.argv[1:4])
