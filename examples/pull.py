"""Pull images back into an archive that ``docker load`` (and skopeo) take.

Usage: python examples/pull.py REGISTRY REPOSITORY TAG OUTPUT   (e.g. localhost:15000 team/app
v1 app-v1.tar)
"""

import sys

from registryv2 import RegistryClient, inspect_docker_tar


def main(registry: str, repository: str, tag: str, output: str) -> None:
    with RegistryClient(registry) as client:
        # One reference or several; an index gives this machine's platform unless told.
        [written] = client.pull([f"{repository}:{tag}"], output)
    print("wrote", output, written.manifest_digest)

    # The archive is whole (written beside, renamed at the end): read it back.
    info = inspect_docker_tar(output)
    print(info.repo_tags, f"{info.os}/{info.architecture}", len(info.layers), "layers")


if __name__ == "__main__":
    main(*sys.argv[1:5])
