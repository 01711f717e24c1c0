"""The exceptions registryv2 raises.

Every error derives from :class:`RegistryV2Error`, so ``except RegistryV2Error`` catches all of
them. The three names the async ``registry-api-v2-client`` exports (``RegistryError``,
``TarReadError``, ``ValidationError``) keep their meaning; subclasses let callers tell apart the
cases they act on (a missing image, bad credentials, a registry that refuses deletes).
"""

from __future__ import annotations

from dataclasses import dataclass


class RegistryV2Error(Exception):
    """Base class of every error raised by registryv2."""


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of a registry's JSON error body: ``{"code": ..., "message": ...}``."""

    code: str
    message: str


class RegistryError(RegistryV2Error):
    """The registry refused a request, or could not be reached.

    Attributes:
        status: the HTTP status code, or ``None`` when no response arrived.
        errors: the ``errors`` array of the registry's JSON body, in order.
        transient: True when the same request may succeed later (a timeout, a refused or
            broken connection, HTTP 408, 429, 500, 502, 503, 504).
        retry_after: seconds the registry asked us to wait (``Retry-After``), if it did.
        attempts: how many times the failing step was tried.

    Example:
        >>> try:
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

    @property
    def codes(self) -> list[str]:
        """The registry's error codes, such as ``["MANIFEST_UNKNOWN"]``."""
        return [e.code for e in self.errors]


class NotFoundError(RegistryError):
    """A repository, tag, manifest or blob does not exist (HTTP 404)."""


class AuthenticationError(RegistryError):
    """The registry did not accept our credentials, or needs some (HTTP 401)."""


class PermissionDeniedError(RegistryError):
    """The credentials were accepted but do not allow this operation (HTTP 403)."""


class UnsupportedError(RegistryError):
    """The registry does not offer this operation, such as deletes when disabled (HTTP 405)."""


class TarReadError(RegistryV2Error):
    """An image archive is missing, unreadable or not a ``docker save`` archive."""


class ValidationError(RegistryV2Error, ValueError):
    """An argument is malformed or ambiguous: a reference, a digest, an image selection."""


class ArchiveWriteError(RegistryV2Error):
    """An output archive could not be written: no space left, no permission, a read-only disk.
    Nothing is left behind: the file at the output path, if any, is as it was."""


class DigestMismatchError(RegistryV2Error):
    """Bytes read from an archive or a registry do not hash to the digest that names them."""


class CancelledError(RegistryV2Error):
    """A transfer step stopped because the transfer is being abandoned: another blob failed,
    or the caller was interrupted. Raised inside worker threads; callers see the first cause."""
