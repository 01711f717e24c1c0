"""``python -m registryv2``: the same as the ``registryv2`` command."""

from .cli import main

main()
