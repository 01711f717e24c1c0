"""Semantic versions and version ranges, as skopeo's ``images-by-semver`` reads them.

skopeo takes the tags of a repository that are versions (``1.2.3``, ``v1.2``, ``2``: a missing
minor or patch is 0) and keeps those a range allows. A range is what Go's Masterminds/semver
reads: comparisons (``>=1.2``, ``<2``, ``!=1.4.0``, ``=1.2.3``), joined by commas or spaces
(all must hold) and by ``||`` (either may); ``~1.2`` (patches of 1.2), ``^1.2`` (up to the
next major; for 0.x up to the next minor), wildcards (``1.2.x``, ``1.*``, ``*``) and hyphen
ranges (``1.2 - 1.4.5``). A pre-release tag (``1.3.0-rc1``) is taken only by a range that
names a pre-release itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .exceptions import ValidationError

_VERSION = re.compile(
    r"^v?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_WILD = ("x", "X", "*")
_PART = r"(?:0|[1-9]\d*|[xX*])"
_BOUND = re.compile(
    rf"^v?({_PART})(?:\.({_PART}))?(?:\.({_PART}))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-.]+)?$"
)
_TERM = re.compile(r"(!=|>=|=>|<=|=<|~>|[=<>~^])?\s*([^\s,<>=!~^][^\s,]*)")
_HYPHEN = re.compile(r"(\S+)\s+-\s+(\S+)")


@dataclass(frozen=True, order=True)
class Version:
    """A semantic version; ordered as semver orders them (a pre-release before its release).

    Example:
        >>> Version.parse("v1.2") < Version.parse("1.2.1-rc.1") < Version.parse("1.2.1")
        True
    """

    major: int
    minor: int
    patch: int
    release: tuple[int, tuple[tuple[int, int | str], ...]]  # (1, ()) released, (0, ids) not

    @classmethod
    def parse(cls, text: str) -> Version | None:
        """The version a tag is, or None when it is not one."""
        found = _VERSION.match(text)
        if not found:
            return None
        major, minor, patch, pre = found.groups()
        return cls(int(major), int(minor or 0), int(patch or 0), _release(pre))

    @property
    def prerelease(self) -> bool:
        """Whether this is a pre-release (``1.3.0-rc1``)."""
        return self.release[0] == 0


def _release(pre: str | None) -> tuple[int, tuple[tuple[int, int | str], ...]]:
    if not pre:
        return (1, ())
    # Numeric identifiers sort before alphanumeric ones, numerically.
    ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (0, ids)


Check = Callable[[Version], bool]


@dataclass(frozen=True)
class VersionRange:
    """A range of versions: ``VersionRange.parse(">= 1.2, < 2 || 3.x")``.

    Example:
        >>> r = VersionRange.parse("^1.2")
        >>> r.allows("1.9.0"), r.allows("v2.0.0"), r.allows("latest")
        (True, False, False)
    """

    text: str
    groups: tuple[tuple[Check, ...], ...]
    prerelease: bool  # whether the range names a pre-release (and so may take one)

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        """Read a range; a ``ValidationError`` saying what is wrong when it is not one."""
        if not text.strip():
            raise ValidationError("an empty version range")
        groups = []
        prerelease = False
        for alternative in text.split("||"):
            alternative = _HYPHEN.sub(lambda m: f">={m[1]} <={m[2]}", alternative.strip())
            checks: list[Check] = []
            position = 0
            for term in _TERM.finditer(alternative):
                gap = alternative[position : term.start()]
                if gap.strip(" ,"):
                    raise ValidationError(f"invalid version range {text!r}: at {gap.strip()!r}")
                position = term.end()
                more, pre = _checks(term[1] or "", term[2], text)
                checks += more
                prerelease = prerelease or pre
            if alternative[position:].strip(" ,") or not checks:
                raise ValidationError(f"invalid version range {text!r}: an empty alternative")
            groups.append(tuple(checks))
        return cls(text, tuple(groups), prerelease)

    def allows(self, tag: str) -> bool:
        """Whether the tag is a version in the range."""
        version = Version.parse(tag)
        if version is None or (version.prerelease and not self.prerelease):
            return False
        return any(all(check(version) for check in group) for group in self.groups)


def _checks(op: str, text: str, whole: str) -> tuple[list[Check], bool]:
    """What ``op text`` asks of a version, and whether it names a pre-release."""
    found = _BOUND.match(text)
    if not found:
        raise ValidationError(f"invalid version range {whole!r}: {text!r} is not a version")
    parts = [found[1], found[2], found[3]]
    # How many leading parts are given (a wildcard or a missing part ends them).
    given = 0
    for part in parts:
        if part is None or part in _WILD:
            break
        given += 1
    numbers = [int(p) if p is not None and p not in _WILD else 0 for p in parts[:given]]
    numbers += [0] * (3 - len(numbers))
    low = Version(numbers[0], numbers[1], numbers[2], _release(found[4]))
    return _compare(op, low, numbers, given), found[4] is not None


def _compare(op: str, low: Version, numbers: list[int], given: int) -> list[Check]:

    def upper(level: int) -> Version:
        """The first version past ``low`` at ``level`` (0 major, 1 minor, 2 patch)."""
        bumped = numbers[:level] + [numbers[level] + 1] + [0] * (2 - level)
        return Version(bumped[0], bumped[1], bumped[2], (0, ()))  # before any x.y.z-pre

    if given == 0:
        return [lambda v: op not in ("!=", "<", ">")]  # *, x: every version
    partial = given < 3
    if op in ("", "="):
        if partial:
            high = upper(given - 1)
            return [lambda v: low <= v < high]
        return [lambda v: v == low]
    if op == "!=":
        if partial:
            high = upper(given - 1)
            return [lambda v: not low <= v < high]
        return [lambda v: v != low]
    if op == ">":
        if partial:
            high = upper(given - 1)
            return [lambda v: v >= high]
        return [lambda v: v > low]
    if op in (">=", "=>"):
        return [lambda v: v >= low]
    if op == "<":
        return [lambda v: v < low]
    if op in ("<=", "=<"):
        if partial:
            high = upper(given - 1)
            return [lambda v: v < high]
        return [lambda v: v <= low]
    if op in ("~", "~>"):
        high = upper(0 if given == 1 else 1)
        return [lambda v: low <= v < high]
    # ^: up to the next change of the first non-zero part given.
    level = next((i for i in range(given) if numbers[i] != 0), given - 1)
    high = upper(min(level, given - 1))
    return [lambda v: low <= v < high]
