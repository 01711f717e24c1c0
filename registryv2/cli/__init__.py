"""The ``registryv2`` command: thin click commands over the library.

Each command parses its arguments, calls :mod:`registryv2.operations` (or the client) and prints
the result, for people or as JSON. ``app.py`` holds the group, the global options and the exit
statuses; the commands are grouped by what they do.

A command imports the library's network side (``operations``, the client) when it runs, not
at the top of its module: the commands that only read an archive, and ``--help``, then start
without requests and urllib3, which take most of a command's start-up.
"""

from . import manage, query, sync, transfer
from .app import main, main_group

__all__ = ["main", "main_group", "manage", "query", "sync", "transfer"]
