"""registry-api-v2-client's README example, made blocking: `await` and `asyncio.run` deleted,
and the import taken from registryv2 (plus a return type, for mypy). Nothing else changed.

Usage: python examples/migrated_from_async.py   (in a directory holding my-image.tar and
exported-image.tar; REGISTRY_URL chooses the registry, http://localhost:15000 by default)
"""

import os

from registryv2 import (
    check_registry_connectivity,
    list_repositories,
    push_docker_tar,
    push_docker_tar_with_original_tags,
)


def main() -> None:
    registry_url = os.environ.get("REGISTRY_URL", "http://localhost:15000")

    # Check that the registry can be reached
    accessible = check_registry_connectivity(registry_url)
    print(f"Registry accessible: {accessible}")

    # Push a Docker tar file
    digest = push_docker_tar(
        "my-image.tar",  # the docker tar file
        registry_url,  # the registry URL
        "myapp",  # repository name
        "v1.0.0",  # tag
    )
    print(f"Upload complete: {digest}")

    # Push under the original tags (taken from the tar file)
    digest = push_docker_tar_with_original_tags("exported-image.tar", registry_url)
    print(f"Pushed with original tags: {digest}")

    # List repositories
    repos = list_repositories(registry_url)
    print(f"Repositories: {repos}")


# Run it (was: asyncio.run(main()))
main()
