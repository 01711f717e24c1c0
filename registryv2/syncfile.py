"""The list of images a sync keeps in step: skopeo sync's YAML, read strictly.

The file is keyed by registry (``host[:port]``, optionally with a path under it); each registry
says which images to take and how to reach it::

    registry.example.com:
      images:
        busybox: []                 # every tag
        redis: ["7.2", "sha256:..."]
      images-by-tag-regex:
        nginx: ^1\\.2[0-9]\\.\\d+-alpine$
      images-by-semver:
        alpine: ">= 3.18, < 4"
      tls-verify: true
      cert-dir: /etc/registry-certs
      credentials:
        username: john
        password: secret

The same document can be given as a ``dict``. Anything else is refused, never ignored: an
unknown key, a regex or a version range that does not parse, a tag that is not one. The
error names the file, the line and the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .exceptions import ValidationError
from .reference import is_digest, is_repository, is_tag
from .semver import VersionRange

_SECTION_KEYS = (
    "images",
    "images-by-tag-regex",
    "images-by-semver",
    "tls-verify",
    "cert-dir",
    "credentials",
)
_CREDENTIAL_KEYS = ("username", "password")
MAX_FILE_SIZE = 4 << 20  # a list of images, not a data file


@dataclass(frozen=True)
class Credentials:
    """A user name and password for one registry of the file; never shown by ``repr()``."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class RegistrySection:
    """What the file says about one registry.

    Attributes:
        registry: the key: ``host[:port]``, possibly with a path under it.
        images: repository -> the tags and digests to take (empty: every tag).
        by_regex: repository -> a pattern tags are searched with (as Go's MatchString).
        by_semver: repository -> the range of versions tags must be in.
        tls_verify: whether to check the registry's certificate (None: not said).
        cert_dir: a directory of ``*.crt`` authorities and a ``*.cert``/``*.key`` pair.
        credentials: a user and password for the registry.
    """

    registry: str
    images: dict[str, tuple[str, ...]] = field(default_factory=dict)
    by_regex: dict[str, re.Pattern[str]] = field(default_factory=dict)
    by_semver: dict[str, VersionRange] = field(default_factory=dict)
    tls_verify: bool | None = None
    cert_dir: str | None = None
    credentials: Credentials | None = None


class _Where:
    """Names the place of a value in an error: ``FILE:LINE: REGISTRY: FIELD: ...``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, node: Any, path: list[str], message: str) -> ValidationError:
        mark = getattr(node, "start_mark", None)
        where = f"{self.name}:{mark.line + 1}" if mark is not None else self.name
        fields = ": ".join(path)
        return ValidationError(f"{where}: {fields + ': ' if fields else ''}{message}")


def load_sync_file(source: str | os.PathLike[str] | Mapping[str, Any]) -> list[RegistrySection]:
    """Read a sync list (skopeo sync's YAML) from a file, or the same document as a ``dict``.

    Example:
        >>> sections = load_sync_file({"localhost:5000": {"images": {"busybox": ["1.36"]}}})
        >>> sections[0].registry, sections[0].images
        ('localhost:5000', {'busybox': ('1.36',)})
    """
    if isinstance(source, Mapping):
        return _sections(_Plain(source), _Where("sync list"))
    import yaml

    path = os.fspath(source)
    where = _Where(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_SIZE + 1)
    except OSError as e:
        raise ValidationError(f"{path}: cannot read the sync list ({e.strerror or e})") from None
    if len(data) > MAX_FILE_SIZE:
        raise ValidationError(f"{path}: more than {MAX_FILE_SIZE >> 20} MiB, not a sync list")
    try:
        node = yaml.compose(data.decode("utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        raise ValidationError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValidationError(f"{path}{line}: not valid YAML ({problem})") from None
    if node is None:
        raise ValidationError(f"{path}: empty; list registries and their images")
    return _sections(_Node(node), where)


class _Plain:
    """A value of a ``dict`` document, read as the YAML nodes are."""

    start_mark = None

    def __init__(self, value: Any) -> None:
        self.value = value

    def mapping(self) -> list[tuple[str, _Plain, _Plain]] | None:
        """(key, value, the key's node) for a mapping; None for anything else."""
        if self.value is None:
            return []
        if not isinstance(self.value, Mapping):
            return None
        return [(str(k), _Plain(v), _Plain(k)) for k, v in self.value.items()]

    def sequence(self) -> list[_Plain] | None:
        if self.value is None:
            return []
        if isinstance(self.value, list | tuple):
            return [_Plain(v) for v in self.value]
        return None

    def scalar(self) -> str | None:
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        if isinstance(self.value, str | int | float):
            return str(self.value)
        return None


class _Node(_Plain):
    """A YAML node, with the line it starts on."""

    def __init__(self, node: Any) -> None:
        super().__init__(node)
        self.start_mark = node.start_mark

    def mapping(self) -> list[tuple[str, _Plain, _Plain]] | None:
        import yaml

        if isinstance(self.value, yaml.ScalarNode) and self.value.tag.endswith(":null"):
            return []
        if not isinstance(self.value, yaml.MappingNode):
            return None
        return [(str(k.value), _Node(v), _Node(k)) for k, v in self.value.value]

    def sequence(self) -> list[_Plain] | None:
        import yaml

        if isinstance(self.value, yaml.ScalarNode) and self.value.tag.endswith(":null"):
            return []
        if not isinstance(self.value, yaml.SequenceNode):
            return None
        return [_Node(v) for v in self.value.value]

    def scalar(self) -> str | None:
        import yaml

        if not isinstance(self.value, yaml.ScalarNode) or self.value.tag.endswith(":null"):
            return None
        return str(self.value.value)


def _mapping(
    node: _Plain, where: _Where, path: list[str], what: str, known: tuple[str, ...] = ()
) -> list[tuple[str, _Plain]]:
    """The items of a mapping, each key once (and one of ``known``, when given)."""
    items = node.mapping()
    if items is None:
        raise where.fail(node, path, f"expected {what}")
    seen: set[str] = set()
    for key, _, key_node in items:
        if key in seen:
            raise where.fail(key_node, [*path, key], "given twice")
        if known and key not in known:
            raise where.fail(key_node, [*path, key], f"unknown key (known: {', '.join(known)})")
        seen.add(key)
    return [(key, value) for key, value, _ in items]


def _scalar(node: _Plain, where: _Where, path: list[str], what: str) -> str:
    value = node.scalar()
    if value is None:
        raise where.fail(node, path, f"expected {what}")
    return value


def _sections(root: _Plain, where: _Where) -> list[RegistrySection]:
    sections = []
    for registry, body in _mapping(root, where, [], "registries as keys"):
        path = [registry]
        if not registry or "://" in registry or registry != registry.strip():
            raise where.fail(body, path, "a registry is host[:port], without a scheme")
        section: dict[str, Any] = {"registry": registry}
        items = _mapping(body, where, path, "a mapping of images and settings", _SECTION_KEYS)
        for key, value in items:
            here = [*path, key]
            if key == "images":
                section["images"] = _images(value, where, here)
            elif key == "images-by-tag-regex":
                section["by_regex"] = {
                    repo: _regex(pattern, where, [*here, repo])
                    for repo, pattern in _repositories(value, where, here)
                }
            elif key == "images-by-semver":
                section["by_semver"] = {
                    repo: _range(text, where, [*here, repo])
                    for repo, text in _repositories(value, where, here)
                }
            elif key == "tls-verify":
                text = _scalar(value, where, here, "true or false").lower()
                if text not in ("true", "false"):
                    raise where.fail(value, here, f"expected true or false, not {text!r}")
                section["tls_verify"] = text == "true"
            elif key == "cert-dir":
                section["cert_dir"] = _scalar(value, where, here, "a directory")
            else:
                section["credentials"] = _credentials(value, where, here)
        sections.append(RegistrySection(**section))
    if not sections:
        raise where.fail(root, [], "no registry listed")
    return sections


def _repositories(node: _Plain, where: _Where, path: list[str]) -> list[tuple[str, _Plain]]:
    items = _mapping(node, where, path, "repositories as keys")
    for repo, value in items:
        if not is_repository(repo):
            raise where.fail(value, [*path, repo], "not a repository name")
    return items


def _images(node: _Plain, where: _Where, path: list[str]) -> dict[str, tuple[str, ...]]:
    images = {}
    for repo, value in _repositories(node, where, path):
        here = [*path, repo]
        entries = value.sequence()
        if entries is None:
            raise where.fail(value, here, "expected a list of tags and digests ([] for every tag)")
        wanted = []
        for entry in entries:
            text = _scalar(entry, where, here, "a tag or a digest")
            if not (is_tag(text) or is_digest(text)):
                raise where.fail(entry, here, f"{text!r} is neither a tag nor a digest")
            wanted.append(text)
        images[repo] = tuple(dict.fromkeys(wanted))
    return images


def _regex(node: _Plain, where: _Where, path: list[str]) -> re.Pattern[str]:
    text = _scalar(node, where, path, "a regular expression")
    try:
        return re.compile(text)
    except re.error as e:
        raise where.fail(node, path, f"invalid regular expression {text!r} ({e})") from None


def _range(node: _Plain, where: _Where, path: list[str]) -> VersionRange:
    text = _scalar(node, where, path, "a version range")
    try:
        return VersionRange.parse(text)
    except ValidationError as e:
        raise where.fail(node, path, str(e)) from None


def _credentials(node: _Plain, where: _Where, path: list[str]) -> Credentials:
    found = {}
    for key, value in _mapping(node, where, path, "username and password", _CREDENTIAL_KEYS):
        found[key] = _scalar(value, where, [*path, key], "a string")
    if "username" not in found:
        raise where.fail(node, path, "username is missing")
    return Credentials(found["username"], found.get("password", ""))
