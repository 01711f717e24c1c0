"""List a registry's repositories and tags, and look inside each image without pulling it.

Usage: python examples/list_and_inspect.py REGISTRY     (e.g. localhost:15000)
"""

import sys

from registryv2 import RegistryClient


def main(registry: str) -> None:
    with RegistryClient(registry) as client:
        for repository in client.list_repositories():
            for tag in client.list_tags(repository):
                info = client.get_image_info(repository, tag)
                print(
                    f"{repository}:{tag}",
                    info.manifest_digest,
                    f"{info.os}/{info.architecture}",
                    f"{len(info.layers)} layers",
                    f"{info.size} bytes",
                )


if __name__ == "__main__":
    main(sys.argv[1])
