"""HTTP to one registry: the pooled session, the URL scheme, and status codes -> exceptions.

Every request of the library goes through :meth:`Transport.request`, so connection policy lives
here and nowhere else: pool sizes, timeouts, TLS, the http fallback for loopback hosts, and (as an
addition at this one place) authentication and retries.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from . import __version__
from .auth import Authenticator, scopes_for
from .credentials import Credentials, load_docker_credentials
from .exceptions import (
    AuthenticationError,
    ErrorDetail,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    UnsupportedError,
    ValidationError,
)
from .models import RegistryConfig

USER_AGENT = f"registryv2/{__version__}"
_STATUS_ERRORS: dict[int, type[RegistryError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: UnsupportedError,
}


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
    return cls(f"{what}: {reason} [HTTP {status}]", status=status, errors=tuple(details))


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
        pool_size = config.workers + 4
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        # Passed with every request: a session-level verify would lose to REQUESTS_CA_BUNDLE.
        self._verify: bool | str = config.ca_bundle or not config.insecure
        self._timeout = (min(30.0, config.timeout), config.timeout)
        self.auth = Authenticator(self.registry, self.session, self._credentials, self._verify)

    def __repr__(self) -> str:
        return f"Transport({self.registry!r})"

    def _credentials(self) -> Credentials | None:
        if self.config.username is not None or self.config.password is not None:
            return Credentials(self.config.username or "", self.config.password or "")
        return load_docker_credentials(self.registry)

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]``, deciding the scheme on first use.

        With no scheme given: https, except that a loopback host falls back to http when https
        does not answer, as docker does.
        """
        with self._lock:
            if self._scheme is None:
                self._scheme = self._probe_scheme()
            return f"{self._scheme}://{self.registry}"

    def _probe_scheme(self) -> str:
        if not is_loopback(self.registry):
            return "https"
        try:
            self.session.get(
                f"https://{self.registry}/v2/", timeout=self._timeout, verify=self._verify
            )
        except requests.exceptions.SSLError as e:
            # An untrusted certificate still means https is spoken there: say so, do not
            # silently fall back. A handshake that fails outright is a plain http server.
            return "https" if "CERTIFICATE_VERIFY_FAILED" in str(e) else "http"
        except requests.exceptions.ConnectionError:
            return "http"
        return "https"

    def url(self, path_or_url: str) -> str:
        """Resolve a path (``/v2/...``) or a Location header against the registry."""
        return urljoin(self.base_url + "/", path_or_url)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        what: str,
        expect: tuple[int, ...] = (200,),
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send one request; return the response if its status is in ``expect``.

        Any other status raises the :class:`RegistryError` subclass for it, and a network
        failure raises :class:`RegistryError`; ``what`` says in the message what was being done.
        """
        url = self.url(path_or_url)
        scopes = scopes_for(method, url)
        sent = self.auth.header(scopes)
        response = self._send(method, url, what, sent, headers, params, data, stream)
        # A 401 the caller expects (a ping) is an answer, not a challenge to take up.
        if (
            response.status_code == 401
            and 401 not in expect
            and self.auth.challenged(response, scopes, sent)
        ):
            response.close()
            sent = self.auth.header(scopes)
            response = self._send(method, url, what, sent, headers, params, data, stream)
        if response.status_code not in expect:
            try:
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
        data: bytes | None,
        stream: bool,
    ) -> requests.Response:
        sent = dict(headers or {})
        if authorization:
            sent["Authorization"] = authorization
        try:
            return self.session.request(
                method,
                url,
                headers=sent,
                params=params,
                data=data,
                stream=stream,
                timeout=self._timeout,
                verify=self._verify,
            )
        except requests.exceptions.SSLError as e:
            raise RegistryError(f"{what}: TLS failed with {self.registry} ({_root(e)})") from None
        except requests.exceptions.Timeout:
            raise RegistryError(
                f"{what}: {self.registry} did not answer within {self.config.timeout:g}s"
            ) from None
        except requests.exceptions.ConnectionError as e:
            raise RegistryError(f"{what}: cannot reach {self.base_url} ({_root(e)})") from None

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

    def json(self, path: str, *, what: str, **kwargs: Any) -> tuple[Any, requests.Response]:
        """GET a JSON document; returns it with the response (for its headers)."""
        response = self.request("GET", path, what=what, **kwargs)
        try:
            return response.json(), response
        except ValueError:
            raise RegistryError(
                f"{what}: the registry answered with something that is not JSON",
                status=response.status_code,
            ) from None


def _root(error: BaseException) -> str:
    # requests nests urllib3's errors several deep; the innermost says what really happened.
    while error.__context__ is not None and error.__context__ is not error:
        error = error.__context__
    while error.args and isinstance(error.args[0], BaseException):
        error = error.args[0]
    text = str(error)
    if "Connection refused" in text:
        return "connection refused"
    return json.dumps(text)[1:-1] if text else type(error).__name__
