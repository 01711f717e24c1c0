"""Delete an image: the manifest a tag points at, and with it every tag on that manifest.

Usage: python examples/delete.py REGISTRY REPOSITORY TAG   (the registry must allow deletes)
"""

import sys

from registryv2 import RegistryClient


def main(registry: str, repository: str, tag: str) -> None:
    with RegistryClient(registry) as client:
        digest = client.resolve_digest(repository, tag)
        # Registries delete manifests, not tags: say which tags go with it first.
        going = [
            t
            for t in client.list_tags(repository)
            if client.resolve_digest(repository, t) == digest
        ]
        print("deleting", digest, "and its tags", sorted(going))
        client.delete_image_by_digest(repository, digest)
        print("left:", client.list_tags(repository))


if __name__ == "__main__":
    main(*sys.argv[1:4])
