"""Version ranges as skopeo's ``images-by-semver`` reads them (Go's Masterminds/semver)."""

from __future__ import annotations

import pytest

from registryv2.exceptions import ValidationError
from registryv2.semver import Version, VersionRange


@pytest.mark.parametrize(
    ("text", "allowed", "refused"),
    [
        # ^: up to the next major; for 0.x up to the next minor, for 0.0.x the next patch.
        ("^1.2.3", ["1.2.3", "1.9.9", "v1.10"], ["1.2.2", "2.0.0", "2.0.0-rc1"]),
        ("^1.2", ["1.2.0", "1.99"], ["1.1.9", "2"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.2.2", "0.3.0"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4", "0.1.0"]),
        # ~: patches of the minor given (of the major, given alone).
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.2.2", "1.3.0"]),
        ("~1.2", ["1.2.0", "1.2.40"], ["1.3"]),
        ("~1", ["1.0", "1.9.9"], ["0.9", "2.0"]),
        # Wildcards, and a missing part taken as one.
        ("1.2.x", ["1.2.0", "1.2.7"], ["1.1.9", "1.3.0"]),
        ("1.*", ["1.0.0", "1.5"], ["0.9", "2.0.0"]),
        ("1.2", ["1.2.0", "1.2.5"], ["1.3.0"]),
        ("*", ["0.0.1", "99"], ["latest", "1.0.0-rc1"]),
        # Comparisons: a partial bound covers its whole span.
        (">1.2", ["1.3.0"], ["1.2.5"]),
        ("<=1.2", ["1.2.9"], ["1.3.0"]),
        ("<1.2", ["1.1.99"], ["1.2.0"]),
        ("=1.2.3", ["1.2.3", "v1.2.3"], ["1.2.4"]),
        ("!=1.4.0", ["1.4.1", "1.3"], ["1.4.0"]),
        # Hyphen ranges, commas, spaces and ||.
        ("1.2 - 1.4.5", ["1.2.0", "1.4.5"], ["1.1.9", "1.4.6"]),
        (">= 1.2, < 3.0.0 || >= 4.2.3", ["1.2", "2.9", "4.2.3", "5"], ["1.1", "3.0.0", "4.2.2"]),
        (">=1.2 <2", ["1.5"], ["2.0", "1.1"]),
        # A pre-release is taken only by a range naming one.
        (">=1.0", ["v1.3.0", "1.3.0+build.5"], ["1.3.0-rc1"]),
        (">=1.3.0-rc1", ["1.3.0-rc1", "1.3.0-rc2", "1.3.0"], ["1.3.0-beta", "1.2.0"]),
    ],
)
def test_a_range_allows_what_masterminds_semver_allows(
    text: str, allowed: list[str], refused: list[str]
) -> None:
    found = VersionRange.parse(text)
    assert [tag for tag in allowed if not found.allows(tag)] == []
    assert [tag for tag in refused if found.allows(tag)] == []


@pytest.mark.parametrize("tag", ["latest", "1.2.3.4", "01.2", "1.2-", "v", "", "sha256-abc"])
def test_a_tag_that_is_not_a_version_is_never_allowed(tag: str) -> None:
    assert Version.parse(tag) is None
    assert not VersionRange.parse("*").allows(tag)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "an empty version range"),
        ("  ", "an empty version range"),
        (">= 1.x.x.x", "'1.x.x.x' is not a version"),
        ("abc", "'abc' is not a version"),
        ("1..2", "'1..2' is not a version"),
        ("1.2 ||", "an empty alternative"),
        (">=1.2 <", "an empty alternative"),
        ("^", "an empty alternative"),
        (">=>1", "at '>'"),
    ],
)
def test_a_range_that_does_not_parse_says_why(text: str, said: str) -> None:
    with pytest.raises(ValidationError) as raised:
        VersionRange.parse(text)
    assert said in str(raised.value)
    assert str(raised.value).startswith(
        "an empty" if not text.strip() else f"invalid version range {text!r}"
    )


def test_versions_order_as_semver_orders_them() -> None:
    order = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "v1.0.1",
        "1.1",
        "2",
    ]
    parsed = [Version.parse(text) for text in order]
    assert all(v is not None for v in parsed)
    assert sorted(parsed) == parsed  # type: ignore[type-var]
    assert Version.parse("v1.2") == Version.parse("1.2.0")
    assert Version.parse("1.2.0+build") == Version.parse("1.2.0")
