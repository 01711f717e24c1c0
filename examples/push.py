"""Push an image archive: under a name you choose, under the tag it carries, under every tag.

Usage: python examples/push.py ARCHIVE REGISTRY     (e.g. app.tar localhost:15000)
"""

import sys

from registryv2 import (
    extract_original_tags,
    push_docker_tar,
    push_docker_tar_with_all_original_tags,
    push_docker_tar_with_original_tags,
)


def main(archive: str, registry: str) -> None:
    print("tags in the archive:", extract_original_tags(archive))

    # Under a repository and tag of your choosing: the layers go up byte for byte.
    digest = push_docker_tar(archive, registry, "examples/app", "v1")
    print("examples/app:v1", digest)

    # Under the archive's own first tag (docker.io/library/nginx:alpine -> nginx:alpine).
    print("first original tag", push_docker_tar_with_original_tags(archive, registry))

    # Under every tag the archive carries; each blob goes up once.
    print("every original tag", push_docker_tar_with_all_original_tags(archive, registry))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
