"""registryv2: a synchronous client for the Docker Registry HTTP API v2 (OCI distribution).

The module-level functions mirror ``registry-api-v2-client`` (same names and arguments, without
``await``); :class:`RegistryClient` is the object to hold for many calls.

Example:
    >>> from registryv2 import push_docker_tar, list_tags  # doctest: +SKIP
    >>> digest = push_docker_tar("app.tar", "localhost:15000", "team/app", "v1")  # doctest: +SKIP
"""

import importlib.util
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

if TYPE_CHECKING:
    from ._public import *  # noqa: F403


def __getattr__(name: str) -> Any:
    # PEP 562: the public names are imported when one is first used (most of them need requests
    # and urllib3, which take most of a command's start-up), all of them at once, so this runs
    # no more for them. A submodule not imported yet is left to the import system
    # (``from . import operations``).
    if name != "__all__" and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(name)
    public = importlib.import_module(f"{__name__}._public")
    names = globals()
    names.update((n, getattr(public, n)) for n in public.__all__)
    names["__all__"] = [*public.__all__, "__version__"]
    if name not in names:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return names[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *__getattr__("__all__")})
