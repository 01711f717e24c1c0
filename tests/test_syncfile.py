"""The sync list (skopeo sync's YAML), read strictly: every error names the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from registryv2.exceptions import ValidationError
from registryv2.syncfile import Credentials, load_sync_file

DIGEST = "sha256:" + "a" * 64
FULL = f"""\
reg.example.com:5000/sub:
  images:
    busybox: []
    redis: ['7.2', '{DIGEST}', '7.2']
  images-by-tag-regex:
    nginx: ^1\\.2[0-9]$
  images-by-semver:
    alpine: '>= 3.18, < 4'
  tls-verify: false
  cert-dir: /certs
  credentials:
    username: john
    password: s3cret
localhost:5000:
  images:
    app: [1.10]
"""


def test_a_file_and_the_same_dict_read_alike(tmp_path: Path) -> None:
    path = tmp_path / "sync.yml"
    path.write_text(FULL)
    first, second = load_sync_file(path)
    assert first.registry == "reg.example.com:5000/sub"
    assert first.images == {"busybox": (), "redis": ("7.2", DIGEST)}  # each once, in order
    assert first.by_regex["nginx"].search("1.25") and not first.by_regex["nginx"].search("1.3")
    assert first.by_semver["alpine"].allows("3.19.1") and not first.by_semver["alpine"].allows("4")
    assert (first.tls_verify, first.cert_dir) == (False, "/certs")
    assert first.credentials == Credentials("john", "s3cret")
    assert second.images == {"app": ("1.10",)}  # the text as written, not the float 1.1
    assert second.tls_verify is None and second.credentials is None

    doc = {
        "reg.example.com:5000/sub": {
            "images": {"busybox": None, "redis": ["7.2", DIGEST]},
            "images-by-tag-regex": {"nginx": r"^1\.2[0-9]$"},
            "images-by-semver": {"alpine": ">= 3.18, < 4"},
            "tls-verify": False,
            "cert-dir": "/certs",
            "credentials": {"username": "john", "password": "s3cret"},
        }
    }
    (same,) = load_sync_file(doc)
    assert (same.images, same.tls_verify, same.credentials) == (
        first.images,
        False,
        first.credentials,
    )
    assert same.by_regex["nginx"].pattern == first.by_regex["nginx"].pattern


def test_credentials_are_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "sync.yml"
    path.write_text(FULL)
    sections = load_sync_file(path)
    assert "s3cret" not in repr(sections) and "john" in repr(sections)
    path.write_text("a:\n  credentials:\n    username: john\n    password: [s3cret]\n")
    with pytest.raises(ValidationError) as raised:
        load_sync_file(path)
    assert "s3cret" not in str(raised.value)
    assert str(raised.value) == f"{path}:4: a: credentials: password: expected a string"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("a:\n  images:\n    x: [v1\n  b: 2\n", ":4: not valid YAML"),
        ("a:\n  images:\n    x: []\n  image: {}\n", ":4: a: image: unknown key (known: images,"),
        ("a:\n  images:\n    x: []\n  images:\n    y: []\n", ":4: a: images: given twice"),
        ("a:\n  images-by-tag-regex:\n    x: '(a'\n", ":3: a: images-by-tag-regex: x: inval"),
        ("a:\n  images-by-semver:\n    x: '>= one'\n", ":3: a: images-by-semver: x: invalid"),
        ("a:\n  images:\n    x: [v1, 'no:tag']\n", ":3: a: images: x: 'no:tag' is neither a tag"),
        ("a:\n  images:\n    x: v1\n", ":3: a: images: x: expected a list of tags and digests"),
        ("a:\n  images:\n    Bad_Repo: []\n", ":3: a: images: Bad_Repo: not a repository name"),
        ("a:\n  tls-verify: maybe\n", ":2: a: tls-verify: expected true or false, not 'maybe'"),
        ("a:\n  credentials:\n    password: x\n", ":3: a: credentials: username is missing"),
        ("a:\n  credentials:\n    user: x\n", ":3: a: credentials: user: unknown key"),
        ("- a\n", ":1: expected registries as keys"),
        ("{}\n", ":1: no registry listed"),
        ("", ": empty; list registries and their images"),
    ],
)  # fmt: skip
def test_each_error_names_the_file_the_line_and_the_field(
    tmp_path: Path, text: str, said: str
) -> None:
    path = tmp_path / "sync.yml"
    path.write_text(text)
    with pytest.raises(ValidationError) as raised:
        load_sync_file(path)
    message = str(raised.value)
    assert message.startswith(f"{path}{said}"), message
    assert "\n" not in message


def test_a_dict_is_refused_as_strictly_without_lines() -> None:
    with pytest.raises(ValidationError, match=r"^sync list: a: bogus: unknown key"):
        load_sync_file({"a": {"images": {"x": ["v1"]}, "bogus": 1}})
    with pytest.raises(ValidationError, match=r"^sync list: a: images: x: 'a b' is neither"):
        load_sync_file({"a": {"images": {"x": ["a b"]}}})
    with pytest.raises(ValidationError, match=r"^sync list: no registry listed"):
        load_sync_file({})


def test_a_file_that_cannot_be_read_or_is_not_text(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read the sync list"):
        load_sync_file(tmp_path / "missing.yml")
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00a: b")
    with pytest.raises(ValidationError, match="not UTF-8 text"):
        load_sync_file(binary)
