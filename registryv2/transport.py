"""HTTP to one registry: the pooled session, the URL scheme, and status codes -> exceptions.

Every request of the library goes through :meth:`Transport.request`, so connection policy lives
here and nowhere else: pool sizes, timeouts, TLS, the http fallback for loopback hosts, and (as an
addition at this one place) authentication and retries.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.ssl_ import create_urllib3_context

from ._version import __version__
from .auth import Authenticator, scopes_for
from .credentials import (
    Credentials,
    certs_d_roots,
    directory_certificates,
    host_certificates,
    load_docker_credentials,
)
from .exceptions import (
    AuthenticationError,
    ErrorDetail,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    UnsupportedError,
    ValidationError,
)
from .log import logger
from .manifest import load_json
from .models import SMALL_BLOB_WIDTH, RegistryConfig
from .retry import (
    NO_RETRY,
    TRANSIENT_STATUSES,
    chain,
    current_cancel,
    describe_failure,
    is_transient,
    parse_retry_after,
)

if TYPE_CHECKING:
    from requests.adapters import _HostParams, _PoolKwargs

USER_AGENT = f"registryv2/{__version__}"
_STATUS_ERRORS: dict[int, type[RegistryError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: UnsupportedError,
}


# A redirect loop ends here; requests' own default is 30.
MAX_REDIRECTS = 10
# A page of tags or repositories: far larger than any registry's page.
MAX_JSON_ANSWER = 32 * 1024 * 1024
_UNUSABLE_URL = (
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
)


class _Connections:
    """Connections checked out of the pool, each with the cancel event of the transfer (the
    retry scope) that took it: what :meth:`Transport.abort` breaks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[Any, threading.Event | None] = {}

    def taken(self, connection: Any) -> None:
        with self._lock:
            self._owners[connection] = current_cancel()

    def returned(self, connection: Any) -> None:
        with self._lock:
            self._owners.pop(connection, None)

    def abort(self, cancel: threading.Event) -> None:
        with self._lock:
            mine = [c for c, owner in self._owners.items() if owner is cancel]
        for connection in mine:
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


# Bytes an upload may queue in the kernel beyond what the network has taken: left to itself,
# Linux lets megabytes wait there, which a slow link takes seconds to send, and an interrupted
# upload must finish its request (its last bytes included) within the grace it is given.
_UNSENT_LIMIT = 128 * 1024
_SOCKET_OPTIONS = [
    *urllib3.connection.HTTPConnection.default_socket_options,
    *(
        [(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, _UNSENT_LIMIT)]
        if hasattr(socket, "TCP_NOTSENT_LOWAT")
        else []
    ),
]


class _TrackingAdapter(HTTPAdapter):
    """requests' adapter, with pools that report which connection is in use, and by whom, and
    one TLS context per ``verify`` setting and host for every https connection.

    Left to itself, urllib3 builds a context for each new connection and loads the trusted
    certificates into it: some 20 ms of CPU per connection, paid again by every worker. Here
    the certificates are loaded once, into a context kept for the ``verify`` requests settled
    on (after ``REQUESTS_CA_BUNDLE`` and the like) and the host, made by ``make_tls``, and each
    connection only takes it.
    """

    def __init__(
        self,
        in_use: _Connections,
        make_tls: Callable[[bool | str, str, int], ssl.SSLContext],
        **kwargs: Any,
    ) -> None:
        self._in_use = in_use
        self._make_tls = make_tls
        self._tls: dict[tuple[bool | str, str, int], ssl.SSLContext] = {}
        self._tls_lock = threading.Lock()
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[_HostParams, _PoolKwargs]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if host_params["scheme"] == "https":
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
            key = (verify, host_params["host"], host_params["port"] or 443)
            with self._tls_lock:
                if key not in self._tls:
                    self._tls[key] = self._make_tls(*key)
                pool_kwargs["ssl_context"] = self._tls[key]
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        if getattr(conn, "conn_kw", {}).get("ssl_context") is not None:
            conn.ca_certs = conn.ca_cert_dir = None  # in the context already

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("socket_options", _SOCKET_OPTIONS)
        super().init_poolmanager(*args, **kwargs)
        in_use = self._in_use

        def tracking(base: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
            class Pool(base):  # type: ignore[valid-type,misc]
                def _get_conn(self, timeout: float | None = None) -> Any:
                    connection = super()._get_conn(timeout)
                    in_use.taken(connection)
                    return connection

                def _put_conn(self, conn: Any) -> None:
                    if conn is not None:
                        in_use.returned(conn)
                    super()._put_conn(conn)

            return Pool

        self.poolmanager.pool_classes_by_scheme = {
            "http": tracking(HTTPConnectionPool),
            "https": tracking(HTTPSConnectionPool),
        }


class _Session(requests.Session):
    """requests' session, without ``~/.netrc``.

    Credentials come from the caller or the docker config, and go only where the
    :class:`Authenticator` sends them. Left to itself, requests reads ``~/.netrc`` for every
    request sent without ``auth``: an entry there (its ``default`` above all) would replace the
    registry's token with Basic credentials, and be added again after a redirect to object
    storage or any other host.
    """

    def __init__(self) -> None:
        super().__init__()
        self.auth = _keep_headers  # any session auth stops requests looking in ~/.netrc

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: Any) -> None:
        """On a redirect, drop ``Authorization`` when the host changes; never add any."""
        headers = prepared_request.headers
        if "Authorization" in headers and self.should_strip_auth(  # type: ignore[no-untyped-call]
            response.request.url, prepared_request.url
        ):
            del headers["Authorization"]


def _keep_headers(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """requests' auth hook that adds nothing: the ``Authorization`` header, if any, stays."""
    return request


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """A TLS context trusting what requests trusts for ``verify``: nothing checked for False,
    a CA bundle file or directory for a path, requests' own bundle (certifi's) for True.

    Example:
        >>> tls_context(False).verify_mode == ssl.CERT_NONE
        True
    """
    if verify is False:
        return create_urllib3_context(cert_reqs=ssl.CERT_NONE)
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    where = DEFAULT_CA_BUNDLE_PATH if verify is True else verify
    if os.path.isdir(where):
        context.load_verify_locations(capath=where)
    elif os.path.exists(where):
        context.load_verify_locations(cafile=where)
    # A path that does not exist: requests refuses it by name before any connection.
    return context


def split_registry_url(url: str) -> tuple[str | None, str]:
    """Split a registry URL into ``(scheme or None, host[:port])``.

    Example:
        >>> split_registry_url("http://localhost:15000/"), split_registry_url("ghcr.io")
        (('http', 'localhost:15000'), (None, 'ghcr.io'))
    """
    text = url.strip()
    scheme: str | None = None
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https"):
            raise ValidationError(f"registry URL {url!r}: scheme must be http or https")
        scheme, text = parts.scheme, parts.netloc
        if parts.path.strip("/") not in ("", "v2"):
            raise ValidationError(f"registry URL {url!r}: must not have a path")
    text = text.rstrip("/")
    if not text or "/" in text or "@" in text or " " in text:
        raise ValidationError(f"registry URL {url!r}: expected [http(s)://]host[:port]")
    return scheme, text


def blob_url_path(repository: str, digest: str) -> str:
    """The API path of a blob in a repository.

    Example:
        >>> blob_url_path("team/app", "sha256:abc")
        '/v2/team/app/blobs/sha256:abc'
    """
    return f"/v2/{repository}/blobs/{digest}"


def is_loopback(host_port: str) -> bool:
    """Tell whether ``host[:port]`` names this machine (localhost, 127.0.0.0/8, ::1).

    Example:
        >>> is_loopback("127.0.0.5:15000"), is_loopback("[::1]:5000"), is_loopback("ghcr.io")
        (True, True, False)
    """
    host = host_port
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def speaks_tls(host_port: str, timeouts: tuple[float, float]) -> bool:
    """Tell whether the server at ``host[:port]`` (443 by default) answers a TLS handshake.

    Only the handshake goes out, with a context that loads no certificates (loading them costs
    more than the handshake): nothing is sent over the connection, which is closed at once.
    Nobody listening, or a handshake the server breaks off (a plain http server), is False;
    no connection or no answer within ``timeouts`` (connect, read) is a ``TimeoutError``
    saying which.

    Example:
        >>> speaks_tls("127.0.0.1:15000", (5, 30))  # doctest: +SKIP
        False
    """
    parts = urlsplit(f"//{host_port}")
    host, port = parts.hostname or host_port, parts.port or 443
    try:
        sock = socket.create_connection((host, port), timeout=timeouts[0])
    except TimeoutError:
        raise TimeoutError(f"could not connect to {host_port} within {timeouts[0]:g}s") from None
    except OSError:
        return False  # the request that follows, over http, says what is wrong
    with sock:
        sock.settimeout(timeouts[1])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        try:
            context.wrap_socket(sock, server_hostname=host).close()
        except TimeoutError:
            raise TimeoutError(f"{host_port} did not answer within {timeouts[1]:g}s") from None
        except OSError:  # ssl.SSLError included: not TLS
            return False
    return True


def error_from_response(response: requests.Response, what: str) -> RegistryError:
    """Turn a failed response into the matching :class:`RegistryError`, naming ``what`` failed.

    The registry's JSON ``errors`` (code and message) are kept on the exception and shown in its
    message; headers are never shown, so no credential can leak into an error.
    """
    details: list[ErrorDetail] = []
    try:
        body = response.json()
        for entry in body.get("errors") or []:
            details.append(ErrorDetail(str(entry.get("code", "")), str(entry.get("message", ""))))
    except (ValueError, AttributeError, TypeError):
        pass
    status = response.status_code
    if details:
        reason = "; ".join(f"{d.message or d.code.lower()} ({d.code})" for d in details)
    else:
        reason = response.reason or "error"
    cls = _STATUS_ERRORS.get(status, RegistryError)
    host = urlsplit(response.url or "").netloc
    return cls(
        f"{what}: {reason} [HTTP {status}{f' from {host}' if host else ''}]",
        status=status,
        errors=tuple(details),
        transient=status in TRANSIENT_STATUSES,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


class Transport:
    """One registry's pooled HTTP session.

    Safe to share between threads: the session's connection pool holds up to ``pool_size``
    connections, one per engine worker plus spare ones for manifest and listing calls.

    Example:
        >>> t = Transport(RegistryConfig("localhost:15000"))  # doctest: +SKIP
        >>> t.request("GET", "/v2/", what="ping").status_code  # doctest: +SKIP
        200
    """

    def __init__(self, config: RegistryConfig) -> None:
        self.config = config
        self._scheme, self.registry = split_registry_url(config.url)
        if self._scheme == "http" and not (config.insecure or is_loopback(self.registry)):
            raise ValidationError(
                f"registry URL {config.url!r}: plain http to a remote host needs insecure=True"
            )
        self._lock = threading.Lock()
        # As docker and skopeo: authorities and a client certificate for this registry alone.
        self.certificates = (
            directory_certificates(Path(config.cert_dir))
            if config.cert_dir
            else host_certificates(self.registry)
        )
        # Small blobs at SMALL_BLOB_WIDTH x workers at once, or large ones (workers) with their
        # ranges (workers more); and probes.
        pool_size = SMALL_BLOB_WIDTH * config.workers + 4
        self.session = _Session()
        self._in_use = _Connections()
        adapter = _TrackingAdapter(
            self._in_use, self._tls_context, pool_connections=2, pool_maxsize=pool_size
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.max_redirects = MAX_REDIRECTS
        # Passed with every request: a session-level verify would lose to REQUESTS_CA_BUNDLE.
        self._verify: bool | str = config.ca_bundle or not config.insecure
        # urllib3 bounds the TLS handshake (bytes from the server) by the connect timeout: a
        # read timeout shorter than that must bound it too.
        self.timeouts = (min(config.connect_timeout, config.timeout), config.timeout)
        self.retry = config.retry
        self.auth = Authenticator(
            self.registry,
            self.session,
            self._credentials,
            self._verify,
            # A token realm over plain http only for a registry we already speak http with.
            allow_http_realm=lambda: config.insecure or self._scheme == "http",
        )
        self.auth.timeouts = self.timeouts
        self._rate_limit_said = False

    def __repr__(self) -> str:
        return f"Transport({self.registry!r})"

    def _tls_context(self, verify: bool | str, host: str, port: int) -> ssl.SSLContext:
        """The TLS context for ``host:port``: ``verify``'s, with the registry's own certificates
        (certs.d) added when it is the registry, never for another host."""
        context = tls_context(verify)
        parts = urlsplit(f"//{self.registry}")
        certificates = self.certificates
        if certificates is None or (host, port) != (parts.hostname, parts.port or 443):
            return context
        try:
            if verify is not False:
                for authority in certificates.authorities:
                    context.load_verify_locations(cafile=str(authority))
            if certificates.client is not None:
                cert, key = certificates.client
                context.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as e:
            raise ValidationError(
                f"{certificates.directory}: cannot use the certificates for {self.registry} "
                f"({describe_failure(e)})"
            ) from None
        return context

    def _credentials(self) -> Credentials | None:
        if self.config.username is not None or self.config.password is not None:
            return Credentials(self.config.username or "", self.config.password or "")
        path = Path(self.config.auth_file) if self.config.auth_file else None
        if path is not None and not path.is_file():
            raise ValidationError(f"{path}: no such credentials file")
        return load_docker_credentials(self.registry, path)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def abort(self, cancel: threading.Event) -> None:
        """Break every connection the transfer owning ``cancel`` is using, so that its workers,
        however stalled, wake up now (and, seeing ``cancel`` set, stop)."""
        self._in_use.abort(cancel)

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]``, deciding the scheme on first use.

        With no scheme given: https, except that a loopback host falls back to http when https
        does not answer, as docker does. The answer is kept: one probe per client.
        """
        with self._lock:
            if self._scheme is None:
                self._scheme = self._probe_scheme()
            return f"{self._scheme}://{self.registry}"

    def _probe_scheme(self) -> str:
        # Certificates kept for a registry say it speaks TLS (a mutual TLS handshake would
        # break off the probe's, which sends no certificate).
        if not is_loopback(self.registry) or self.certificates is not None:
            return "https"
        what = f"checking whether {self.registry} speaks https"
        attempts = self.retry.begin(what)
        while True:
            try:
                return "https" if speaks_tls(self.registry, self.timeouts) else "http"
            except TimeoutError as e:
                attempts.retry(RegistryError(f"{what}: {e}", transient=True))

    def url(self, path_or_url: str) -> str:
        """Resolve a path (``/v2/...``) or a Location header against the registry.

        Only http and https URLs come back: a Location of another scheme, or one that does not
        parse (``http://[::1``), is a ``RegistryError``.
        """
        try:
            url = urljoin(self.base_url + "/", path_or_url)
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError as e:
            raise RegistryError(
                f"{self.registry} sent a location that is not a URL: {_shown(path_or_url)} ({e})"
            ) from None
        if parts.scheme not in ("http", "https"):
            raise RegistryError(f"{self.registry} sent a location that is not http(s): {url!r}")
        return url

    def is_registry(self, url: str) -> bool:
        """Tell whether ``url`` is on the registry itself: same scheme, host and port."""
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}" == self.base_url

    @staticmethod
    def body(response: requests.Response, limit: int, what: str) -> bytes:
        """The body of a streamed response, refusing more than ``limit`` bytes.

        A body shorter than its ``Content-Length`` is a transient ``RegistryError``.
        """
        declared = response.headers.get("Content-Length", "")
        too_large = f"{what}: the answer is larger than the {limit} bytes allowed"
        try:
            if declared.isdigit() and int(declared) > limit:
                raise RegistryError(f"{too_large} ({declared} bytes)")
            parts: list[bytes] = []
            got = 0
            for piece in response.iter_content(64 * 1024):
                got += len(piece)
                if got > limit:
                    raise RegistryError(too_large)
                parts.append(piece)
        except requests.exceptions.RequestException as e:
            raise RegistryError(
                f"{what}: the answer broke off ({describe_failure(e)})",
                transient=is_transient(e),
            ) from None
        finally:
            response.close()
        return b"".join(parts)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        what: str,
        expect: tuple[int, ...] = (200,),
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        stream: bool = False,
        retry: bool | None = None,
    ) -> requests.Response:
        """Send one request; return the response if its status is in ``expect``.

        Any other status raises the :class:`RegistryError` subclass for it, and a network
        failure raises :class:`RegistryError`; ``what`` says in the message what was being done.
        Idempotent requests (GET, HEAD, PUT, DELETE) are retried on transient failures under
        the client's :class:`RetryPolicy`; ``retry=False`` leaves that to the caller (an
        upload's POST and PATCH are resumed, not repeated).
        """
        url = self.url(path_or_url)
        if retry is None:
            retry = method in _IDEMPOTENT
        policy = self.retry if retry else NO_RETRY
        attempts = policy.begin(what)
        while True:
            try:
                response = self._attempt(method, url, what, expect, headers, params, data, stream)
            except RegistryError as e:
                attempts.retry(e)
                continue
            self._note_rate_limit(response)
            return response

    def _note_rate_limit(self, response: requests.Response) -> None:
        """Say once when a registry's rate limit (Docker Hub's ``ratelimit-remaining``) is used
        up: the requests that count against it (manifest and blob GETs) then wait for it."""
        remaining = response.headers.get("ratelimit-remaining")
        if remaining is None or self._rate_limit_said:
            return
        count, _, window = remaining.partition(";")
        if count.strip() != "0":
            return
        self._rate_limit_said = True
        seconds = window.strip().removeprefix("w=")
        logger.warning(
            "%s: the pull rate limit is used up%s; pulls wait for it (HEAD requests, "
            "which compare digests, do not count)",
            self.registry,
            f" for this {seconds}s window" if seconds.isdigit() else "",
        )

    def _attempt(
        self,
        method: str,
        url: str,
        what: str,
        expect: tuple[int, ...],
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        data: Any,
        stream: bool,
    ) -> requests.Response:
        # Credentials go to the registry only: never to an upload location or any URL elsewhere.
        own = self.is_registry(url)
        # The scopes are read off the URL as sent: a mount's ``from`` is among the parameters.
        sent_url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
        scopes = scopes_for(method, sent_url)
        sent = self.auth.header(scopes) if own else None
        response = self._send(method, url, what, sent, headers, params, data, stream)
        # A 401 the caller expects (a ping) is an answer, not a challenge to take up.
        if (
            own
            and response.status_code == 401
            and 401 not in expect
            and self.auth.challenged(response, scopes, sent)
        ):
            response.close()
            sent = self.auth.header(scopes)
            response = self._send(method, url, what, sent, headers, params, data, stream)
        if response.status_code not in expect:
            try:
                if response.status_code == 401 and not own:
                    raise AuthenticationError(
                        f"{what}: {urlsplit(url).netloc}, not the registry, asks for "
                        "credentials; they are not sent there [HTTP 401]",
                        status=401,
                    )
                if response.status_code == 401:
                    raise self._unauthorized(response, what)
                raise error_from_response(response, what)
            finally:
                response.close()
        return response

    def _send(
        self,
        method: str,
        url: str,
        what: str,
        authorization: str | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        data: Any,
        stream: bool,
    ) -> requests.Response:
        sent = dict(headers or {})
        if authorization:
            sent["Authorization"] = authorization
        logger.debug("%s %s (%s)", method, _without_query(url), what)
        try:
            response = self.session.request(
                method,
                url,
                headers=sent,
                params=params,
                data=data,
                stream=stream,
                timeout=self.timeouts,
                verify=self._verify,
            )
        except requests.exceptions.RequestException as e:
            raise self._network_error(e, what, url) from None
        except ValueError as e:
            if isinstance(e, RegistryError):  # the body's source failed (a broken archive)
                raise
            # A redirect to a URL that does not parse (``http://[::1``), which requests lets out.
            host = urlsplit(url).netloc
            raise RegistryError(f"{what}: {host} sent us to a URL we cannot follow ({e})") from None
        logger.debug("%s %s -> %d", method, _without_query(url), response.status_code)
        return response

    def _network_error(self, error: Exception, what: str, url: str) -> RegistryError:
        """One line for a request that got no answer: which host, and what happened."""
        host = urlsplit(url).netloc or self.registry
        transient = is_transient(error)
        if isinstance(error, requests.exceptions.TooManyRedirects):
            text = f"{host} redirected more than {MAX_REDIRECTS} times"
        elif isinstance(error, _UNUSABLE_URL):
            text = f"{host} sent us to a URL we cannot follow ({describe_failure(error)})"
        elif isinstance(error, requests.exceptions.SSLError):
            text = f"TLS failed with {host} ({describe_failure(error)})"
            reasons = {getattr(e, "reason", None) for e in chain(error)}
            untrusted = any(isinstance(e, ssl.SSLCertVerificationError) for e in chain(error))
            where = (certs_d_roots()[-1:] or [Path("/etc/docker/certs.d")])[0] / host
            if untrusted and host == self.registry:
                text += (
                    f"; to trust its certificate, give its CA with --ca-cert (ca_bundle=), or "
                    f"put it in {where / 'ca.crt'}; or skip the check with --insecure "
                    "(insecure=True)"
                )
            elif reasons & _CLIENT_CERTIFICATE_REFUSED and host == self.registry:
                text += (
                    "; it wants a client certificate it trusts: put it and its key in "
                    f"{where / 'client.cert'} and {where / 'client.key'}"
                )
        elif isinstance(error, requests.exceptions.ConnectTimeout):
            text = f"could not connect to {host} within {self.timeouts[0]:g}s"
        elif isinstance(error, requests.exceptions.Timeout):
            text = f"{host} did not answer within {self.timeouts[1]:g}s"
        elif _never_connected(error):
            text = f"cannot reach {host} ({describe_failure(error)})"
        else:
            text = f"the connection to {host} broke ({describe_failure(error)})"
        return RegistryError(f"{what}: {text}", transient=transient)

    def _unauthorized(self, response: requests.Response, what: str) -> AuthenticationError:
        base = error_from_response(response, what)
        user = self.auth.username
        reason = (
            f"{self.registry} refused the credentials of {user!r}"
            if user
            else f"{self.registry} needs credentials (give a username and password, "
            "or log in with registryv2 login or docker login)"
        )
        return AuthenticationError(f"{what}: {reason} [HTTP 401]", status=401, errors=base.errors)

    def json(
        self, path: str, *, what: str, limit: int = MAX_JSON_ANSWER, **kwargs: Any
    ) -> tuple[Any, requests.Response]:
        """GET a JSON document of at most ``limit`` bytes; it, with the response (for headers).

        A broken answer is retried like a failed request.
        """
        attempts = self.retry.begin(what)
        while True:
            response = self.request("GET", path, what=what, stream=True, **kwargs)
            try:
                raw = self.body(response, limit, what)
                break
            except RegistryError as e:
                attempts.retry(e)
        try:
            return load_json(raw, what, limit), response
        except ValidationError as e:
            raise RegistryError(
                f"{e} (the registry answered with something that is not a JSON document)",
                status=response.status_code,
            ) from None


# TLS alerts by which a server refuses the client certificate we sent, or the lack of one.
_CLIENT_CERTIFICATE_REFUSED = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    }
)
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def _shown(url: str) -> str:
    """A URL from the registry, quoted and cut short for an error message."""
    return repr(url if len(url) <= 200 else url[:200] + "...")


def _without_query(url: str) -> str:
    # Upload URLs carry the registry's upload state in the query: long, and of no use in a log.
    return url.split("?", 1)[0]


def _never_connected(error: BaseException) -> bool:
    return any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain(error))
