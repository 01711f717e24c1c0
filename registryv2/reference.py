"""Image references: the one place where ``host/repository:tag@digest`` strings are parsed.

A *reference* names an image on a registry (``localhost:15000/team/app:v1``); the *registry* is
``host[:port]``, the *repository* the path (``team/app``), the *identifier* the tag or digest.
References are read as docker reads them: a name without a registry is on Docker Hub
(``nginx`` is ``docker.io/library/nginx:latest``, served by ``registry-1.docker.io``), and an
explicit ``http://`` or ``https://`` is kept. Archive tags such as
``docker.io/library/nginx:alpine`` are *normalized* into a repository of another registry by
dropping the registry host and Docker Hub's implicit ``library/``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from .exceptions import ValidationError

DEFAULT_TAG = "latest"
DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
DOCKER_HUB_HOSTS = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_ENDPOINT})

# The grammar of github.com/distribution/reference, kept to what we need.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


def is_digest(value: str) -> bool:
    """Tell whether ``value`` is a ``sha256:<64 hex>`` digest.

    Example:
        >>> is_digest("sha256:" + "0" * 64), is_digest("latest")
        (True, False)
    """
    return bool(_DIGEST_RE.match(value))


def is_tag(value: str) -> bool:
    """Tell whether ``value`` is a valid tag (up to 128 of letters, digits, ``_ . -``).

    Example:
        >>> is_tag("v1.2-rc"), is_tag("team/app:v1")
        (True, False)
    """
    return bool(_TAG_RE.match(value))


def is_repository(value: str) -> bool:
    """Tell whether ``value`` is a repository path (``team/app``), without a registry or tag.

    Example:
        >>> is_repository("team/app"), is_repository("Team/app:v1")
        (True, False)
    """
    return bool(_REPOSITORY_RE.match(value))


def _looks_like_host(component: str) -> bool:
    # Docker's rule: the first path component is a registry host when it has a dot or a port,
    # or is "localhost"; otherwise the name lives on Docker Hub.
    return "." in component or ":" in component or component == "localhost"


@dataclass(frozen=True)
class Reference:
    """A parsed image reference.

    Attributes:
        registry: ``host[:port]`` as written, or ``None`` when the string named no registry.
        repository: the repository path, such as ``team/app``.
        tag: the tag, or ``None`` when only a digest was given.
        digest: the ``sha256:`` digest, or ``None``.
        scheme: ``http`` or ``https`` when the reference was written with one.

    Example:
        >>> Reference.parse("localhost:15000/team/app:v1").repository
        'team/app'
    """

    registry: str | None
    repository: str
    tag: str | None
    digest: str | None
    scheme: str | None = None

    @classmethod
    def parse(cls, text: str, *, default_tag: str | None = DEFAULT_TAG) -> Reference:
        """Parse ``[host[:port]/]repository[:tag][@sha256:digest]``.

        Raises ``ValidationError`` naming the reference and what is wrong with it. A reference
        with neither tag nor digest gets ``default_tag``.

        Example:
            >>> Reference.parse("app@sha256:" + "a" * 64).tag is None
            True
        """
        original = text
        if not text or text != text.strip():
            raise ValidationError(f"invalid reference {original!r}: empty or surrounded by spaces")
        scheme: str | None = None
        for prefix in ("http://", "https://"):
            if text.startswith(prefix):
                text, scheme = text[len(prefix) :], prefix[:-3]
                if "/" not in text:
                    raise ValidationError(
                        f"invalid reference {original!r}: a scheme needs a registry and a "
                        "repository after it"
                    )
        digest: str | None = None
        if "@" in text:
            text, digest = text.split("@", 1)
            if not is_digest(digest):
                raise ValidationError(
                    f"invalid reference {original!r}: {digest!r} is not a sha256 digest"
                )
        registry: str | None = None
        first, sep, rest = text.partition("/")
        if sep and (_looks_like_host(first) or scheme):
            registry, text = first, rest
        tag: str | None = None
        path, colon, maybe_tag = text.rpartition(":")
        if colon:
            text, tag = path, maybe_tag
            if not _TAG_RE.match(tag):
                raise ValidationError(f"invalid reference {original!r}: bad tag {tag!r}")
        if not _REPOSITORY_RE.match(text):
            raise ValidationError(
                f"invalid reference {original!r}: repository {text!r} must be lowercase "
                "components of letters, digits and separators, joined by '/'"
            )
        if tag is None and digest is None:
            tag = default_tag
        return cls(registry=registry, repository=text, tag=tag, digest=digest, scheme=scheme)

    @property
    def normalized_repository(self) -> str:
        """The repository as a registry of our own stores it.

        Docker Hub's implicit ``library/`` goes; other registries keep their paths.

        Example:
            >>> Reference.parse("docker.io/library/nginx:alpine").normalized_repository
            'nginx'
        """
        on_hub = self.registry is None or self.registry in DOCKER_HUB_HOSTS
        if on_hub and self.repository.startswith("library/") and self.repository.count("/") == 1:
            return self.repository[len("library/") :]
        return self.repository

    @property
    def endpoint(self) -> str:
        """Where the registry is reached, ``registry-1.docker.io`` for Docker Hub, else the
        registry, with the scheme the reference was written with.

        Example:
            >>> registry_reference("nginx").endpoint
            'registry-1.docker.io'
            >>> registry_reference("https://127.0.0.1:5000/x:1").endpoint
            'https://127.0.0.1:5000'
        """
        host = DOCKER_HUB_ENDPOINT if self.registry in DOCKER_HUB_HOSTS else str(self.registry)
        return f"{self.scheme}://{host}" if self.scheme else host

    @property
    def familiar(self) -> str:
        """The reference as docker shows it, without Docker Hub's ``docker.io/`` and
        ``library/``, as ``docker save`` writes tags.

        Example:
            >>> registry_reference("docker.io/library/busybox:1").familiar
            'busybox:1'
            >>> registry_reference("localhost:5000/app:v1").familiar
            'localhost:5000/app:v1'
        """
        if self.registry not in DOCKER_HUB_HOSTS:
            return str(self)
        repository = self.normalized_repository
        return str(dataclasses.replace(self, registry=None, repository=repository))

    @property
    def identifier(self) -> str:
        """The digest when there is one, else the tag (what goes after ``/manifests/``)."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def registry_reference(text: str, *, default_tag: str | None = DEFAULT_TAG) -> Reference:
    """Parse a reference as docker does: without a registry it is on Docker Hub.

    Docker Hub's names are made whole: ``nginx`` is ``docker.io/library/nginx``,
    ``index.docker.io/x`` is ``docker.io/library/x``. A registry alone (``localhost:5000``) is
    refused, saying a repository is missing.

    Example:
        >>> str(registry_reference("nginx:alpine"))
        'docker.io/library/nginx:alpine'
        >>> registry_reference("localhost:15000/app").registry
        'localhost:15000'
    """
    if _is_registry_only(text):
        raise ValidationError(
            f"invalid reference {text!r}: that is a registry; name a repository in it, as in "
            f"{text.rstrip('/')}/team/app:v1"
        )
    ref = Reference.parse(text, default_tag=default_tag)
    registry = ref.registry or DOCKER_HUB
    repository = ref.repository
    if registry in DOCKER_HUB_HOSTS:
        registry = DOCKER_HUB
        if "/" not in repository:
            repository = f"library/{repository}"
    return dataclasses.replace(ref, registry=registry, repository=repository)


def _is_registry_only(text: str) -> bool:
    """``host[:port]`` with nothing after it: a dotted name or localhost, and no path."""
    bare = text.split("://", 1)[-1].rstrip("/")
    name = bare.split(":", 1)[0]
    return (
        bool(bare) and "/" not in bare and "@" not in bare and ("." in name or name == "localhost")
    )


def registry_of(text: str) -> str:
    """Check that ``text`` names a registry (``host[:port]``, maybe with a scheme); return it.

    Example:
        >>> registry_of("localhost:15000"), registry_of("https://ghcr.io/")
        ('localhost:15000', 'https://ghcr.io')
    """
    bare = text.split("://", 1)[-1].rstrip("/")
    if (
        not bare
        or "/" in bare
        or "@" in bare
        or not (_looks_like_host(bare) or bare == "docker.io")
    ):
        raise ValidationError(
            f"invalid registry {text!r}: give host[:port] (a name with a dot or a port, or "
            "localhost), with http:// or https:// if it must be one of them"
        )
    return text.rstrip("/")


def parse_repository_tag(repo_tag: str) -> tuple[str, str]:
    """Split ``[host[:port]/]repository[:tag|@digest]`` into ``(repository, tag)``.

    A plain split, as in ``registry-api-v2-client``: nothing is validated, the host stays in
    the repository, an empty or missing tag is ``latest``. Unlike there, a port is never taken
    for a tag, and a digest takes the tag's place.

    Example:
        >>> parse_repository_tag("localhost:5000/myapp")
        ('localhost:5000/myapp', 'latest')
        >>> parse_repository_tag("nginx:alpine"), parse_repository_tag("app:")
        (('nginx', 'alpine'), ('app', 'latest'))
    """
    name, at, digest = repo_tag.partition("@")
    if at and is_digest(digest):
        return name, digest
    slash = repo_tag.rfind("/")
    colon = repo_tag.rfind(":")
    if colon > slash:
        return repo_tag[:colon], repo_tag[colon + 1 :] or DEFAULT_TAG
    return repo_tag, DEFAULT_TAG


def normalize_archive_tag(repo_tag: str) -> tuple[str, str]:
    """Turn an archive tag into the ``(repository, tag)`` we push it under.

    The registry host and Docker Hub's implicit ``library/`` are dropped.

    Example:
        >>> normalize_archive_tag("docker.io/library/nginx:alpine")
        ('nginx', 'alpine')
        >>> normalize_archive_tag("ghcr.io/org/app:1")
        ('org/app', '1')
    """
    ref = Reference.parse(repo_tag)
    return ref.normalized_repository, ref.identifier
