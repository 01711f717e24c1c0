"""The registry auth handshake (Basic, and Bearer tokens per scope).

The transport asks :class:`Authenticator` for an ``Authorization`` header before each request and
hands it every 401; nothing else in the library knows auth exists. Scopes are derived from the
request itself (``repository:team/app:pull,push``, ``registry:catalog:*``), tokens are cached per
set of scopes until they expire, and a token the registry rejects is fetched anew once.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests
import urllib3

from .credentials import Credentials
from .exceptions import AuthenticationError, RegistryError
from .retry import TRANSIENT_STATUSES, describe_failure, is_transient

_TOKEN_MARGIN = 10.0  # seconds: refresh a token this long before it expires
MAX_TOKEN_ANSWER = 1024 * 1024
_CHALLENGE_RE = re.compile(r'\s*([A-Za-z][\w.-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: a scheme and its parameters."""

    scheme: str
    params: dict[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """Parse ``WWW-Authenticate``, which may hold several challenges and quoted commas.

    Example:
        >>> parse_challenges('Bearer realm="https://a/t",scope="repository:x:pull,push"')[0].params
        {'realm': 'https://a/t', 'scope': 'repository:x:pull,push'}
    """
    challenges: list[Challenge] = []
    pos = 0
    text = header.strip()
    while pos < len(text):
        m = re.compile(r"\s*,?\s*([A-Za-z][\w-]*)").match(text, pos)
        if not m:
            break
        scheme, pos = m.group(1), m.end()
        params: dict[str, str] = {}
        while True:
            p = _CHALLENGE_RE.match(text, pos)
            # A bare word followed by a space and not "=" starts the next challenge.
            if not p or not p.group(0).strip():
                break
            value = p.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[p.group(1).lower()] = value
            pos = p.end()
        challenges.append(Challenge(scheme.lower(), params))
    return challenges


def scopes_for(method: str, url: str) -> frozenset[str]:
    """The token scopes a request needs, read off its URL and method.

    Example:
        >>> sorted(scopes_for("POST", "https://r/v2/team/app/blobs/uploads/?mount=d&from=base"))
        ['repository:base:pull', 'repository:team/app:pull,push']
    """
    parts = urlsplit(url)
    path = parts.path
    if path.startswith("/v2/_catalog"):
        return frozenset({"registry:catalog:*"})
    m = re.match(r"^/v2/(.+?)/(?:manifests|blobs|tags|referrers)/", path)
    if not m:
        return frozenset()
    repository = m.group(1)
    if method in ("GET", "HEAD"):
        actions = "pull"
    elif method == "DELETE":
        actions = "delete"
    else:
        actions = "pull,push"
    scopes = {f"repository:{repository}:{actions}"}
    source = parse_qs(parts.query).get("from")
    if source:
        scopes.add(f"repository:{source[0]}:pull")
    return frozenset(scopes)


@dataclass
class _Token:
    value: str
    expires: float


class Authenticator:
    """Answers registry challenges for one registry, and remembers what it learnt.

    Thread-safe: the engine's workers share it.
    """

    def __init__(
        self,
        registry: str,
        session: requests.Session,
        credentials: Callable[[], Credentials | None],
        verify: bool | str,
        allow_http_realm: Callable[[], bool] = lambda: False,
    ) -> None:
        self.registry = registry
        self._session = session
        self._load_credentials = credentials
        self._loaded: list[Credentials | None] = []
        self._verify = verify
        self._allow_http_realm = allow_http_realm
        self.timeouts: tuple[float, float] = (10.0, 60.0)
        self._lock = threading.Lock()
        self._scheme: str | None = None  # "basic" or "bearer" once a challenge said so
        self._bearer: dict[str, str] = {}
        self._tokens: dict[frozenset[str], _Token] = {}

    def __repr__(self) -> str:
        return f"Authenticator({self.registry!r}, scheme={self._scheme!r})"

    @property
    def _credentials(self) -> Credentials | None:
        # Loaded on the first challenge: an open registry never runs a credential helper.
        if not self._loaded:
            self._loaded.append(self._load_credentials())
        return self._loaded[0]

    @property
    def username(self) -> str | None:
        """The user name we authenticate as, once credentials were needed."""
        creds = self._loaded[0] if self._loaded else None
        return creds.username if creds and creds.username else None

    def header(self, scopes: frozenset[str]) -> str | None:
        """The ``Authorization`` value to send with a request needing ``scopes``, if known."""
        with self._lock:
            if self._scheme == "basic" and self._credentials:
                return _basic(self._credentials)
            if self._scheme == "bearer":
                token = self._tokens.get(scopes)
                if token and token.expires > time.monotonic():
                    return f"Bearer {token.value}"
                self._tokens.pop(scopes, None)
                return f"Bearer {self._fetch_token(scopes)}"
        return None

    def challenged(
        self, response: requests.Response, scopes: frozenset[str], sent: str | None
    ) -> bool:
        """Learn from a 401 to a request sent with ``sent`` as its ``Authorization``.

        True when sending it again is worth it: we now know what to send, or the token sent was
        rejected (expired early, revoked) and a fresh one will be fetched. Several workers may
        be challenged at once; each decides by what its own request carried.
        """
        challenges = parse_challenges(response.headers.get("WWW-Authenticate", ""))
        with self._lock:
            for challenge in challenges:
                if challenge.scheme == "bearer" and challenge.params.get("realm"):
                    self._check_realm(challenge.params["realm"])
                    self._scheme, self._bearer = "bearer", challenge.params
                    token = self._tokens.get(scopes)
                    if token is not None and sent == f"Bearer {token.value}":
                        del self._tokens[scopes]
                    return True
                if challenge.scheme == "basic" and self._credentials is not None:
                    self._scheme = "basic"
                    return sent is None or not sent.startswith("Basic ")
        return False

    def _check_realm(self, realm: str) -> None:
        """A realm is where credentials go: a sound https URL (http only where the registry
        itself is spoken to over http)."""
        try:
            parts = urlsplit(realm)
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise AuthenticationError(
                f"{self.registry} names a malformed token server: {realm!r}"
            ) from None
        allowed = ("https", "http") if self._allow_http_realm() else ("https",)
        if parts.scheme not in allowed or not parts.hostname:
            raise AuthenticationError(
                f"{self.registry} names a token server our credentials must not go to: "
                f"{realm!r} (only https, or http for a registry reached over http)"
            )

    def _fetch_token(self, scopes: frozenset[str]) -> str:
        realm = self._bearer["realm"]
        params: list[tuple[str, str]] = []
        if self._bearer.get("service"):
            params.append(("service", self._bearer["service"]))
        params += [("scope", s) for s in sorted(scopes)]
        creds = self._credentials
        what = f"getting a token for {self.registry} from {urlsplit(realm).netloc}"
        try:
            if creds and creds.identity_token:
                response = self._session.post(
                    realm,
                    verify=self._verify,
                    timeout=self.timeouts,
                    stream=True,
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": creds.identity_token,
                        "client_id": "registryv2",
                        "service": self._bearer.get("service", ""),
                        "scope": " ".join(sorted(scopes)),
                    },
                )
            else:
                auth = (creds.username, creds.password) if creds and creds.username else None
                response = self._session.get(
                    realm,
                    params=params,
                    auth=auth,
                    verify=self._verify,
                    timeout=self.timeouts,
                    stream=True,
                )
        except requests.RequestException as e:
            raise RegistryError(
                f"{what}: {describe_failure(e)}", transient=is_transient(e)
            ) from None
        try:
            if response.status_code in (401, 403):
                who = f"as {creds.username!r}" if creds and creds.username else "anonymously"
                raise AuthenticationError(
                    f"{what}: credentials refused {who} [HTTP {response.status_code}]",
                    status=response.status_code,
                )
            if response.status_code != 200:
                raise RegistryError(
                    f"{what}: [HTTP {response.status_code}]",
                    status=response.status_code,
                    transient=response.status_code in TRANSIENT_STATUSES,
                )
            raw = response.raw.read(MAX_TOKEN_ANSWER + 1, decode_content=True)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            raise RegistryError(
                f"{what}: the answer broke off ({describe_failure(e)})", transient=is_transient(e)
            ) from None
        finally:
            response.close()
        value, lifetime = _token(raw, what)
        self._tokens[scopes] = _Token(value, time.monotonic() + lifetime - _TOKEN_MARGIN)
        return value


def _token(raw: bytes, what: str) -> tuple[str, float]:
    """The token and its lifetime in seconds, from a token server's answer."""
    if len(raw) > MAX_TOKEN_ANSWER:
        raise AuthenticationError(f"{what}: the token server sent more than a token")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        doc = None
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
        shown = raw[:80].decode("utf-8", "replace")
        raise AuthenticationError(f"{what}: the token server answered without a token: {shown!r}")
    lifetime = doc.get("expires_in") if isinstance(doc, dict) else None
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = 60
    return token, float(lifetime)


def _basic(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()
