"""The exceptions registryv2 raises.

As in ``registry-api-v2-client``, every error is a :class:`RegistryError`, so
``except RegistryError`` catches every failure of the library (``RegistryV2Error`` is another
name for the same class). Under it:

.. code-block:: text

    RegistryError (= RegistryV2Error)   the registry refused, or could not be reached
    ├── NotFoundError                   404: no such repository, tag, manifest or blob
    ├── AuthenticationError             401: credentials missing or refused
    ├── PermissionDeniedError           403
    ├── UnsupportedError                405: deletes disabled, and the like
    ├── ValidationError (ValueError)    a bad argument: reference, digest, image choice, archive
    │   └── TarReadError                an archive that is missing, unreadable or malformed
    │       └── ArchiveNotFoundError    ... that does not exist (also a FileNotFoundError)
    ├── DigestMismatchError             bytes that do not hash to their digest
    ├── ArchiveWriteError               an output archive that cannot be written
    └── CancelledError                  a transfer step stopped because the transfer stopped

``RegistryError.transient`` says whether trying again later may help.
"""

from __future__ import annotations

from dataclasses import dataclass

# How registry-api-v2-client's messages begin for the failures registryv2 reports too. Code
# migrated from it matches on these words, so registryv2's messages for the same failures
# begin with them, then say precisely what is wrong.
TAR_NOT_FOUND = "Tar file does not exist"
TAR_NOT_PUSHED = "Tar file not found"  # its word for the same, from the push functions
TAR_UNREADABLE = "Error reading tar file"
INVALID_TAR = "Invalid Docker tar file"
BAD_CONFIG = "Cannot read config file"
BLOB_NOT_IN_TAR = "Blob not found in tar"
BLOB_MISMATCH = "Blob digest mismatch"
NO_REPOSITORY = "No repository specified and could not extract repository from tar file"
NO_ORIGINAL_TAGS = "No original tags found in tar file"
LIST_TAGS_FAILED = "Failed to list tags for"
LIST_REPOSITORIES_FAILED = "Failed to list repositories"
NOT_A_REGISTRY = "Registry does not support API v2"
NEEDS_AUTHENTICATION = "Registry requires authentication"
UNEXPECTED_STATUS = "Registry returned unexpected status"
UNREACHABLE = "Failed to connect to registry"
THEIR_WORDS = (
    TAR_NOT_FOUND,
    TAR_NOT_PUSHED,
    TAR_UNREADABLE,
    INVALID_TAR,
    BAD_CONFIG,
    BLOB_NOT_IN_TAR,
    BLOB_MISMATCH,
    NO_REPOSITORY,
    NO_ORIGINAL_TAGS,
    LIST_TAGS_FAILED,
    LIST_REPOSITORIES_FAILED,
    NOT_A_REGISTRY,
    NEEDS_AUTHENTICATION,
    UNEXPECTED_STATUS,
    UNREACHABLE,
)


def begin_with(words: str, message: str) -> str:
    """``message`` begun with ``words`` (one of the above), unless it begins with some already.

    Example:
        >>> begin_with(INVALID_TAR, "app.tar: not a tar archive (invalid header)")
        'Invalid Docker tar file: app.tar: not a tar archive (invalid header)'
    """
    return message if message.startswith(THEIR_WORDS) else f"{words}: {message}"


# An error line is cut here, saying how much more there was: a message can quote input.
MESSAGE_LIMIT = 500


def one_line(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` as one line of at most ``limit`` characters, plus a note of what is cut.

    Example:
        >>> one_line("x" * 600, 10)
        'xxxxxxxxxx... (590 more characters)'
    """
    line = " ".join(message.splitlines())
    if len(line) <= limit:
        return line
    return f"{line[:limit]}... ({len(line) - limit} more characters)"


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of a registry's JSON error body: ``{"code": ..., "message": ...}``."""

    code: str
    message: str


class RegistryError(Exception):
    """Base class of every registryv2 error; raised itself when a registry fails or is
    unreachable.

    Attributes:
        status: the HTTP status code, or ``None`` when no response arrived.
        errors: the ``errors`` array of the registry's JSON body, in order.
        transient: True when the same request may succeed later (a timeout, a refused or
            broken connection, HTTP 408, 429, 500, 502, 503, 504).
        retry_after: seconds the registry asked us to wait (``Retry-After``), if it did.
        attempts: how many times the failing step was tried.

    Example:
        >>> from registryv2 import list_tags
        >>> try:  # doctest: +SKIP
        ...     list_tags("localhost:15000", "no/such/repo")
        ... except RegistryError as e:
        ...     print(e.status, e.codes)
        404 ['NAME_UNKNOWN']
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: tuple[ErrorDetail, ...] = (),
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors
        self.transient = transient
        self.retry_after = retry_after
        self.attempts = 1

    @property
    def codes(self) -> list[str]:
        """The registry's error codes, such as ``["MANIFEST_UNKNOWN"]``."""
        return [e.code for e in self.errors]

    def retitled(self, message: str, attempts: int | None = None) -> RegistryError:
        """The same error (class, status, registry errors) with another message."""
        error = type(self)(
            message,
            status=self.status,
            errors=self.errors,
            transient=self.transient,
            retry_after=self.retry_after,
        )
        error.attempts = self.attempts if attempts is None else attempts
        return error


RegistryV2Error = RegistryError
"""Another name for :class:`RegistryError`, the base of every registryv2 error."""


class NotFoundError(RegistryError):
    """A repository, tag, manifest or blob does not exist (HTTP 404)."""


class AuthenticationError(RegistryError):
    """The registry did not accept our credentials, or needs some (HTTP 401)."""


class PermissionDeniedError(RegistryError):
    """The credentials were accepted but do not allow this operation (HTTP 403)."""


class UnsupportedError(RegistryError):
    """The registry does not offer this operation, such as deletes when disabled (HTTP 405)."""


class ValidationError(RegistryError, ValueError):
    """An argument is malformed or ambiguous: a reference, a digest, an image selection, or an
    archive that is not a sound image archive."""


class TarReadError(ValidationError):
    """An image archive is missing, unreadable or not a ``docker save`` archive."""


class ArchiveNotFoundError(TarReadError, FileNotFoundError):
    """An archive path that does not exist. A ``FileNotFoundError`` too, as
    ``registry-api-v2-client`` raises one there."""


class DigestMismatchError(RegistryError):
    """Bytes read from an archive or a registry do not hash to the digest that names them."""


class ArchiveWriteError(RegistryError):
    """An output archive could not be written: no space left, no permission, a read-only disk.
    Nothing is left behind: the file at the output path, if any, is as it was."""


class CancelledError(RegistryError):
    """A transfer step stopped because the transfer is being abandoned: another blob failed,
    or the caller was interrupted. Raised inside worker threads; callers see the first cause."""
