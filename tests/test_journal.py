"""The upload journal on its own: what it keeps, what it refuses to trust, who may hold it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registryv2.journal import STALE_AFTER, OpenUpload, UploadJournal, default_state_dir

DIGEST = "sha256:" + "a" * 64
LOCATION = "http://127.0.0.1:5000/v2/team/app/blobs/uploads/u1?_state=s"


def journal(tmp_path: Path) -> UploadJournal:
    found = UploadJournal.at(tmp_path)
    assert found is not None
    return found


def test_a_recorded_upload_is_found_by_the_next_claim(tmp_path: Path) -> None:
    entry = journal(tmp_path).claim("127.0.0.1:5000", "team/app", DIGEST)
    assert entry is not None and entry.saved() is None
    entry.record(LOCATION, 10 << 20)
    entry.release()
    again = journal(tmp_path).claim("127.0.0.1:5000", "team/app", DIGEST)
    assert again is not None
    assert again.saved() == OpenUpload(LOCATION, 10 << 20)
    mode = stat.S_IMODE(os.stat(again.path).st_mode)
    assert mode == 0o600  # an upload location is the user's business only
    again.forget()
    again.release()
    assert list((tmp_path / "uploads").iterdir()) == []  # nothing left behind


def test_another_blob_repository_or_registry_has_its_own_entry(tmp_path: Path) -> None:
    j = journal(tmp_path)
    entry = j.claim("127.0.0.1:5000", "team/app", DIGEST)
    assert entry is not None
    entry.record(LOCATION, 1)
    for other in [
        ("127.0.0.1:5001", "team/app", DIGEST),
        ("127.0.0.1:5000", "team/db", DIGEST),
        ("127.0.0.1:5000", "team/app", "sha256:" + "b" * 64),
    ]:
        claimed = j.claim(*other)
        assert claimed is not None and claimed.saved() is None
        claimed.release()


@pytest.mark.parametrize(
    "change",
    [
        {"location": "http://evil.example:5000/v2/team/app/blobs/uploads/u1"},
        {"location": "ftp://127.0.0.1:5000/x"},
        {"repository": "team/other"},
        {"digest": "sha256:" + "c" * 64},
        {"offset": -1},
        {"offset": "12"},
        {"updated": time.time() - STALE_AFTER - 60},
    ],
    ids=["other-host", "not-http", "foreign-repo", "foreign-blob", "negative", "text", "stale"],
)
def test_an_entry_that_cannot_be_trusted_is_ignored_and_removed(
    tmp_path: Path, change: dict[str, object]
) -> None:
    entry = journal(tmp_path).claim("127.0.0.1:5000", "team/app", DIGEST)
    assert entry is not None
    entry.record(LOCATION, 5)
    doc = json.loads(entry.path.read_text())
    entry.path.write_text(json.dumps({**doc, **change}))
    assert entry.saved() is None
    assert not entry.path.exists()


@pytest.mark.parametrize("junk", [b"", b"{", b"[]", b"\xff\xfe", b'"text"'])
def test_a_damaged_entry_is_ignored(tmp_path: Path, junk: bytes) -> None:
    entry = journal(tmp_path).claim("127.0.0.1:5000", "team/app", DIGEST)
    assert entry is not None
    entry.path.write_bytes(junk)
    assert entry.saved() is None


def test_only_one_holder_at_a_time_in_this_process_and_in_another(tmp_path: Path) -> None:
    j = journal(tmp_path)
    first = j.claim("127.0.0.1:5000", "team/app", DIGEST)
    assert first is not None
    assert j.claim("127.0.0.1:5000", "team/app", DIGEST) is None
    probe = (
        "import sys; from registryv2.journal import UploadJournal;"
        f"e = UploadJournal.at(sys.argv[1]).claim('127.0.0.1:5000', 'team/app', '{DIGEST}');"
        "print('held' if e is None else 'free')"
    )
    run = [sys.executable, "-c", probe, str(tmp_path)]
    assert subprocess.run(run, capture_output=True, text=True).stdout.strip() == "held"
    first.release()
    assert subprocess.run(run, capture_output=True, text=True).stdout.strip() == "free"


def test_an_unusable_cache_directory_turns_resuming_off(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert UploadJournal.at(blocker) is None


def test_the_default_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/var/cache/me")
    assert default_state_dir() == Path("/var/cache/me/registryv2")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_state_dir() == Path.home() / ".cache" / "registryv2"
