"""One retry policy for every request: which failures deserve another attempt, and when.

The transport retries idempotent requests with it; the blob reader and the blob upload use it
for the steps they resume themselves. Nothing else in the library sleeps or counts attempts.

A failure is *transient* when trying again may work: a connection refused or reset, a timeout,
or HTTP 408, 429, 500, 502, 503, 504. That is decided by exception type and status code, never by
the text of a message. Waits grow exponentially with full jitter (a random wait between zero
and the cap, so that many clients hit by one outage do not come back in step), and a registry's
``Retry-After`` is honoured. An operation gives up after ``attempts`` failures in a row, or when
the next wait would take it past ``max_elapsed`` seconds.
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from .exceptions import CancelledError, RegistryError
from .log import logger

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class _NetworkFailures:
    """The exception types of requests and urllib3 this module tells apart."""

    permanent: tuple[type[BaseException], ...]
    transient: tuple[type[BaseException], ...]
    timeouts: tuple[type[BaseException], ...]
    reasons: tuple[tuple[type[BaseException], str], ...]


@functools.cache
def _network_failures() -> _NetworkFailures:
    # Imported on first use, so that the commands which only read an archive start without
    # requests and urllib3 (they are most of the start-up time); a failure of theirs can only
    # exist once they are loaded.
    import http.client
    import socket
    import ssl

    import requests
    import urllib3

    return _NetworkFailures(
        # TLS failures (a certificate refused, http spoken to an https port) fail the same way
        # again: never retried.
        permanent=(requests.exceptions.SSLError, urllib3.exceptions.SSLError, ssl.SSLError),
        transient=(
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.ProtocolError,
            urllib3.exceptions.TimeoutError,
            urllib3.exceptions.NewConnectionError,
            urllib3.exceptions.IncompleteRead,
            ConnectionError,
            TimeoutError,
        ),
        timeouts=(requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError),
        reasons=(
            (ConnectionRefusedError, "connection refused"),
            (ConnectionResetError, "connection reset"),
            (BrokenPipeError, "connection closed while sending"),
            (socket.gaierror, "cannot resolve the host name"),
            (urllib3.exceptions.IncompleteRead, "the connection closed early"),
            (http.client.IncompleteRead, "the connection closed early"),
            (urllib3.exceptions.ReadTimeoutError, "stalled"),
            (TimeoutError, "stalled"),
        ),
    )


def is_transient(error: BaseException) -> bool:
    """Tell whether the failure ``error`` may go away if the same step is tried again.

    Example:
        >>> is_transient(RegistryError("busy", status=503, transient=True))
        True
        >>> import requests
        >>> is_transient(requests.exceptions.ReadTimeout()), is_transient(ValueError())
        (True, False)
    """
    if isinstance(error, RegistryError):
        return error.transient
    failures = _network_failures()
    if isinstance(error, failures.permanent):
        return False
    return isinstance(error, failures.transient)


def is_timeout(error: BaseException) -> bool:
    """Tell whether ``error`` is a timeout: no connection, or no byte, within the time allowed.

    Example:
        >>> import urllib3
        >>> is_timeout(urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"))
        True
    """
    return isinstance(error, _network_failures().timeouts)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds, or an HTTP date); None if unusable.

    Example:
        >>> parse_retry_after("3"), parse_retry_after("soon")
        (3.0, None)
        >>> parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now=1767225600.0)
        10.0
    """
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    import email.utils  # only for a date, which only a response can carry

    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryNotice:
    """A failed attempt that will be tried again: for logs and progress events."""

    what: str
    attempt: int
    attempts: int
    delay: float
    reason: str


@dataclass(frozen=True)
class _Scope:
    cancel: threading.Event | None = None
    on_retry: Callable[[RetryNotice], None] | None = None


_NO_SCOPE = _Scope()
_scope: ContextVar[_Scope | None] = ContextVar("registryv2_retry_scope", default=None)


@contextlib.contextmanager
def retry_scope(
    cancel: threading.Event | None, on_retry: Callable[[RetryNotice], None] | None
) -> Iterator[None]:
    """Within this block (on this thread), waits end when ``cancel`` is set, and every retry is
    reported to ``on_retry``. The transfer engine wraps each blob's job in one, so that a retry
    deep in the transport is reported as that blob's.

    Example:
        >>> with retry_scope(threading.Event(), print):
        ...     pass
    """
    token = _scope.set(_Scope(cancel, on_retry))
    try:
        yield
    finally:
        _scope.reset(token)


def current_cancel() -> threading.Event | None:
    """The cancel event of the transfer this thread works for, if any."""
    scope = _scope.get()
    return scope.cancel if scope else None


@dataclass(frozen=True)
class RetryPolicy:
    """How stubbornly to retry a failing step.

    Attributes:
        attempts: tries of one step before giving up (1 turns retrying off).
        initial_delay: the cap of the first wait, in seconds; each next cap doubles.
        max_delay: the largest cap of one wait.
        max_elapsed: seconds one step may take, attempts and waits together, before giving up.
        max_rate_limit_wait: seconds one step may wait, in all, for a registry whose rate limit
            is used up (HTTP 429, as Docker Hub's pull limit answers): those waits are not
            failures, and do not count as attempts.

    Example:
        >>> policy = RetryPolicy(attempts=3, initial_delay=0.5)
        >>> 0 <= policy.delay(2) <= 1.0
        True
    """

    attempts: int = 5
    initial_delay: float = 1.0
    max_delay: float = 30.0
    max_elapsed: float = 900.0
    max_rate_limit_wait: float = 3600.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts}")
        if min(self.initial_delay, self.max_delay, self.max_elapsed) < 0:
            raise ValueError("retry delays must not be negative")

    def delay(self, failures: int) -> float:
        """A wait after ``failures`` failures in a row: full jitter under a doubling cap."""
        cap = min(self.max_delay, self.initial_delay * 2 ** max(0, failures - 1))
        return random.uniform(0, cap)

    def begin(self, what: str) -> Attempts:
        """Start counting the attempts of one step; ``what`` names it in logs and errors.

        Example:
            >>> attempts = RetryPolicy().begin("listing tags of team/app")
        """
        scope = _scope.get() or _NO_SCOPE
        return Attempts(self, what, scope.on_retry, scope.cancel)


NO_RETRY = RetryPolicy(attempts=1)


class Attempts:
    """The attempts of one step: call :meth:`retry` with each failure, :meth:`reset` on progress.

    Example:
        >>> attempts = RetryPolicy(attempts=2, initial_delay=0).begin("demo")
        >>> attempts.retry(RegistryError("busy", status=503, transient=True))  # waits, returns
        >>> attempts.retry(RegistryError("busy", status=503, transient=True))
        Traceback (most recent call last):
        ...
        registryv2.exceptions.RegistryError: busy (gave up after 2 attempts)
    """

    def __init__(
        self,
        policy: RetryPolicy,
        what: str,
        on_retry: Callable[[RetryNotice], None] | None,
        cancel: threading.Event | None,
    ) -> None:
        self.policy = policy
        self.what = what
        self.failures = 0
        self._on_retry = on_retry
        self._cancel = cancel
        self._started = time.monotonic()
        self._rate_waits = 0
        self._rate_waited = 0.0

    def reset(self) -> None:
        """The step made progress: count failures, and time, from zero again."""
        self.failures = 0
        self._started = time.monotonic()

    def retry(self, error: BaseException) -> None:
        """Wait before the next attempt after ``error``, or raise when there should be none.

        A permanent failure is raised as it is; a transient one that exhausts the policy is
        raised saying how many attempts were made. A rate limit (HTTP 429) is waited out, as
        long as the registry asks (``Retry-After``), up to the policy's
        ``max_rate_limit_wait``, and said in one line.
        """
        if (
            isinstance(error, RegistryError)
            and error.status == 429
            and self.policy.attempts > 1
            and self._rate_limited(error)
        ):
            return
        self.failures += 1
        if not is_transient(error):
            raise error
        if self.failures >= self.policy.attempts:
            raise _gave_up(error, self.failures)
        asked = error.retry_after if isinstance(error, RegistryError) else None
        delay = asked if asked is not None else self.policy.delay(self.failures)
        if time.monotonic() - self._started + delay > self.policy.max_elapsed:
            if asked is not None and isinstance(error, RegistryError):
                raise error.retitled(
                    f"{error} (the registry asked to wait {asked:g}s; more than the "
                    f"{self.policy.max_elapsed:g}s allowed)"
                )
            raise _gave_up(error, self.failures)
        notice = RetryNotice(self.what, self.failures, self.policy.attempts, delay, str(error))
        logger.info(
            "%s; retrying in %.1fs (attempt %d of %d failed)",
            notice.reason,
            delay,
            notice.attempt,
            notice.attempts,
        )
        self._wait(notice)

    def _wait(self, notice: RetryNotice) -> None:
        """Tell the scope's listener, then wait ``notice.delay``; cancelled, raise."""
        if self._on_retry is not None:
            self._on_retry(notice)
        if self._cancel is None:
            time.sleep(notice.delay)
        elif self._cancel.wait(notice.delay):
            raise CancelledError(self.what)

    def _rate_limited(self, error: RegistryError) -> bool:
        """Wait for a rate limit's window; False when the policy allows no more waiting."""
        asked = error.retry_after
        self._rate_waits += 1
        delay = asked if asked is not None else min(60.0, 2.0**self._rate_waits)
        if self._rate_waited + delay > self.policy.max_rate_limit_wait:
            return False
        self._rate_waited += delay
        logger.warning(
            "%s: the registry's rate limit is reached; waiting %gs%s, then going on",
            self.what,
            delay,
            " as it asks" if asked is not None else "",
        )
        self._wait(
            RetryNotice(self.what, self._rate_waits, self.policy.attempts, delay, str(error))
        )
        return True


def _gave_up(error: BaseException, attempts: int) -> BaseException:
    # An error that already says how often its own step was tried is not retitled again.
    if attempts < 2 or not isinstance(error, RegistryError) or error.attempts > 1:
        return error
    return error.retitled(f"{error} (gave up after {attempts} attempts)", attempts)


def chain(error: BaseException) -> list[BaseException]:
    """``error`` and every exception inside it (causes, contexts, arguments), outer first."""
    seen: list[BaseException] = []
    todo = [error]
    while todo:
        e = todo.pop(0)
        if e in seen:
            continue
        seen.append(e)
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
        todo += [a for a in e.args if isinstance(a, BaseException)]
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return seen


def describe_failure(error: BaseException) -> str:
    """A few words for a network failure, from the innermost of the exceptions requests and
    urllib3 nest (by their types).

    Example:
        >>> import requests
        >>> describe_failure(requests.exceptions.ConnectionError(ConnectionRefusedError(111)))
        'connection refused'
    """
    inside = chain(error)
    for cls, reason in _network_failures().reasons:
        if any(isinstance(e, cls) for e in inside):
            return reason
    innermost = inside[-1]
    text = json.dumps(str(innermost))[1:-1]
    return (text[:200] + "...") if len(text) > 200 else text or type(innermost).__name__
