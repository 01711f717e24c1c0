"""The registryv2 command, run as a user runs it: a subprocess, its stdout, stderr and status.

Every command, for people and with --json, and every error case: one line (or one JSON
document) on stderr, the documented exit status, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registryv2 import RegistryClient, get_manifest, pull

from .archives import sha256, simple_image, write_docker25, write_legacy
from .hostile import Answer, HostileRegistry
from .proxies import SilentServer
from .servers import RegistryServer, free_port, push_index, skopeo_pull_dir

pytestmark = pytest.mark.integration


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registryv2", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def ok(*args: str, **kw: Any) -> str:
    done = run(*args, **kw)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def ok_json(*args: str, **kw: Any) -> Any:
    """The command with --json: one JSON document on stdout, nothing on stderr."""
    done = run(*args, "--json", **kw)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return json.loads(done.stdout)


def assert_one_line_error(
    done: subprocess.CompletedProcess[str], status: int, *needles: str
) -> None:
    assert done.returncode == status, (done.returncode, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def assert_json_error(
    done: subprocess.CompletedProcess[str], status: int, kind: str, *needles: str
) -> dict[str, Any]:
    assert done.returncode == status, done.stderr
    assert done.stdout == ""
    error: dict[str, Any] = json.loads(done.stderr)["error"]
    assert error["type"] == kind, error
    for needle in needles:
        assert needle in error["message"], error
    return error


# -- the transfer commands ---------------------------------------------------------------------


def test_push_says_what_went_where(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image(tag="example.com/team/app:v7")])
    out = ok("push", str(tar), f"{registry.host}/{repo}:v1")
    digest = get_manifest(registry.url, repo, "v1")["digest"]
    assert out == f"{registry.host}/{repo}:v1@{digest}\n"
    assert skopeo_pull_dir(f"{registry.host}/{repo}:v1", tmp_path / "out")["digest"] == digest
    # No tag in REF: the archive's own (v7), as push_docker_tar does; -q prints the digest only.
    assert ok("push", "-q", str(tar), f"{registry.host}/{repo}") == f"{digest}\n"
    assert sorted(RegistryClient(registry.url).list_tags(repo)) == ["v1", "v7"]
    doc = ok_json("push", str(tar), f"{registry.host}/{repo}:v2")
    [pushed] = doc["pushed"]
    assert pushed["reference"] == f"{registry.host}/{repo}:v2" and pushed["digest"] == digest
    assert pushed["bytes_uploaded"] == 0  # every blob was there already
    assert {b["action"] for b in pushed["blobs"]} == {"exists"}


def test_push_all_tags_and_a_registry_given_as_a_reference(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image(tag=f"elsewhere.example/{repo}/all:a")
    image.tags.append(f"{repo}/all:b")
    tar = write_legacy(tmp_path / "app.tar", [image])
    lines = ok("push", "--all-tags", str(tar), registry.host).splitlines()
    assert [line.split("@")[0] for line in lines] == [
        f"{registry.host}/{repo}/all:a",
        f"{registry.host}/{repo}/all:b",
    ]
    done = run("push", str(tar), registry.host)
    assert_one_line_error(done, 2, "that is a registry", f"{registry.host}/team/app:v1")


def test_pull_copy_tag_digest(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    digest = ok("push", "-q", str(tar), f"{registry.host}/{repo}:v1").strip()
    out = tmp_path / "pulled.tar"
    assert ok("pull", f"{registry.host}/{repo}:v1", "-o", str(out)) == (
        f"{digest} {registry.host}/{repo}:v1\n"
    )
    doc = ok_json("pull", f"{registry.host}/{repo}:v1", "-o", str(out))
    assert doc["output"] == str(out) and doc["images"][0]["digest"] == digest
    assert doc["images"][0]["platform"] == "linux/amd64"

    assert ok("copy", f"{registry.host}/{repo}:v1", f"{registry.host}/{repo}-copy:v1") == (
        f"{registry.host}/{repo}-copy:v1@{digest}\n"
    )
    ok("tag", f"{registry.host}/{repo}:v1", "v2")
    doc = ok_json("copy", "--all-tags", f"{registry.host}/{repo}", f"{registry.host}/{repo}-all")
    assert sorted(c["reference"] for c in doc["copied"]) == [
        f"{registry.host}/{repo}-all:v1",
        f"{registry.host}/{repo}-all:v2",
    ]
    doc = ok_json("tag", f"{registry.host}/{repo}:v1", "stable", "2024-06")
    assert doc["digest"] == digest and doc["tagged"] == [
        f"{registry.host}/{repo}:stable",
        f"{registry.host}/{repo}:2024-06",
    ]
    assert ok("digest", f"{registry.host}/{repo}:stable") == f"{digest}\n"
    assert ok_json("digest", f"{registry.host}/{repo}:2024-06")["digest"] == digest


# -- the commands that look --------------------------------------------------------------------


def test_ls_tags_check(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    for tag in ("a", "b"):
        ok("push", str(tar), f"{registry.host}/{repo}:{tag}")
    assert repo in ok("ls", registry.host).splitlines()
    assert repo in ok_json("ls", registry.host)["repositories"]
    # In the registry's order, which the CNCF registry does not sort.
    assert sorted(ok("tags", f"{registry.host}/{repo}").splitlines()) == ["a", "b"]
    assert sorted(ok_json("tags", f"{registry.host}/{repo}:ignored")["tags"]) == ["a", "b"]
    assert "a registry" in ok("check", registry.host)
    doc = ok_json("check", registry.host)
    assert doc["ok"] is True and doc["endpoint"] == registry.url


def test_inspect_an_image_an_index_and_an_archive(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    image = simple_image(labels={"org.example": "yes"})
    tar = write_legacy(tmp_path / "app.tar", [image])
    digest = ok("push", "-q", str(tar), f"{registry.host}/{repo}:v1").strip()
    human = ok("inspect", f"{registry.host}/{repo}:v1")
    assert f"Digest:       {digest}" in human and "Platform:     linux/amd64" in human
    assert "Label:        org.example=yes" in human and "Layers:       2," in human
    doc = ok_json("inspect", f"{registry.host}/{repo}:v1")
    assert doc["digest"] == digest and doc["platforms"] is None
    assert doc["image"]["config"]["labels"] == {"org.example": "yes"}
    raw = subprocess.run(
        [sys.executable, "-m", "registryv2", "inspect", "--raw", f"{registry.host}/{repo}:v1"],
        capture_output=True,
        check=True,
    ).stdout
    assert raw == RegistryClient(registry.url).get_manifest(repo, "v1").raw

    archives = {
        arch: write_legacy(tmp_path / f"{arch}.tar", [simple_image(seed=arch, architecture=arch)])
        for arch in ("amd64", "arm64")
    }
    push_index(registry.url, repo, "multi", archives)
    doc = ok_json("inspect", f"{registry.host}/{repo}:multi")
    assert [p["platform"] for p in doc["platforms"]] == ["linux/amd64", "linux/arm64"]
    assert doc["image"] is None
    arm = ok_json("inspect", "--platform", "linux/arm64", f"{registry.host}/{repo}:multi")
    assert arm["image"]["architecture"] == "arm64"

    from_archive = ok_json("inspect", str(tar))
    assert from_archive["archive"] == str(tar)
    assert from_archive["image"]["id"] == sha256(image.config())
    assert "Archive:      " in ok("inspect", str(tar))


def test_validate(tmp_path: Path) -> None:
    good = write_docker25(tmp_path / "good.tar", [simple_image()])
    assert ok("validate", str(good)) == f"{good}: valid\n"
    assert ok_json("validate", str(good)) == {"archive": str(good), "valid": True, "problem": None}
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    done = run("validate", str(bad))
    assert done.returncode == 1 and done.stdout.startswith(f"{bad}: not valid: ")
    done = run("validate", str(bad), "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["valid"] is False


def test_rm_says_which_tags_go(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    digest = ok("push", "-q", str(tar), f"{registry.host}/{repo}:a").strip()
    ok("tag", f"{registry.host}/{repo}:a", "b")
    ok(
        "push",
        str(write_legacy(tmp_path / "c.tar", [simple_image(seed="c")])),
        f"{registry.host}/{repo}:c",
    )
    out = ok("rm", "-y", f"{registry.host}/{repo}:a")
    assert out == f"Deleted {registry.host}/{repo}@{digest} (tags: a, b)\n"
    assert ok("tags", f"{registry.host}/{repo}").split() == ["c"]
    doc = ok_json("rm", "-y", f"{registry.host}/{repo}:c")
    assert doc["tags"] == ["c"] and doc["repository"] == f"{registry.host}/{repo}"


# -- global options, anywhere ------------------------------------------------------------------


def test_global_options_before_or_after_the_command(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    first = json.loads(
        ok("--json", "--workers", "2", "push", str(tar), f"{registry.host}/{repo}:x")
    )
    second = json.loads(ok("push", str(tar), f"{registry.host}/{repo}:y", "--workers=2", "--json"))
    assert first["pushed"][0]["digest"] == second["pushed"][0]["digest"]
    done = run("-v", "tags", f"{registry.host}/{repo}")
    assert done.returncode == 0
    assert f"GET http://{registry.host}/v2/{repo}/tags/list" in done.stderr


def test_insecure_warns_once_per_host_at_most(tmp_path: Path) -> None:
    from .auth_servers import CertificateAuthority

    ca = CertificateAuthority(tmp_path / "ca")
    server = RegistryServer(tmp_path / "registry", tls=(ca.cert, ca.key))
    try:
        tar = write_legacy(tmp_path / "app.tar", [simple_image(n_layers=4)])
        done = run("--insecure", "push", str(tar), f"{server.host}/x:y")
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("InsecureRequestWarning") <= 1
    finally:
        server.stop()


# -- errors: one line, the right status, as JSON with --json ----------------------------------


def test_a_registry_that_is_down(tmp_path: Path) -> None:
    tar = write_legacy(tmp_path / "app.tar", [simple_image()])
    host = f"127.0.0.1:{free_port()}"
    done = run("--retries", "1", "push", str(tar), f"{host}/x:y")
    assert_one_line_error(done, 1, host, "connection refused")
    assert_json_error(
        run("--retries", "1", "--json", "tags", f"{host}/x"),
        1,
        "RegistryError",
        "connection refused",
    )


def test_a_registry_that_never_answers(tmp_path: Path) -> None:
    with SilentServer() as silent:
        for command in (
            ["tags", f"{silent.host}/x"],
            ["ls", silent.host],
            ["inspect", f"{silent.host}/x:1"],
            ["check", silent.host],
        ):
            started = time.monotonic()
            done = run("--timeout", "1", "--retries", "1", *command)
            assert time.monotonic() - started < 5
            assert_one_line_error(done, 1, silent.host, "did not answer within 1s")


def test_missing_repository_and_tag(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    assert_one_line_error(run("tags", f"{registry.host}/no/such/repo"), 1, "NAME_UNKNOWN")
    ok(
        "push",
        str(write_legacy(tmp_path / "a.tar", [simple_image()])),
        f"{registry.host}/{repo}:v1",
    )
    assert_one_line_error(
        run("digest", f"{registry.host}/{repo}:v404"), 1, "MANIFEST_UNKNOWN", f"{repo}:v404"
    )
    error = assert_json_error(
        run("inspect", "--json", f"{registry.host}/{repo}:v404"), 1, "NotFoundError"
    )
    assert error["status"] == 404 and error["codes"] == ["MANIFEST_UNKNOWN"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tags", "localhost:1/Bad/Name"], "must be lowercase"),
        (["digest", "localhost:1/app@sha256:short"], "not a sha256 digest"),
        (["tag", "localhost:1/app:v1", "bad tag"], "invalid tag 'bad tag'"),
        (["ls", "not a registry"], "invalid registry"),
    ],
)
def test_bad_references_are_usage_errors(args: list[str], needle: str) -> None:
    assert_one_line_error(run(*args), 2, needle)
    assert_json_error(run(*args, "--json"), 2, "ValidationError", needle)


def test_bad_archives_are_usage_errors(registry: RegistryServer, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive\n" * 100)
    assert_one_line_error(run("push", str(junk), f"{registry.host}/x:y"), 2, str(junk), "not a tar")
    missing = tmp_path / "nope.tar"
    assert_json_error(
        run("push", str(missing), f"{registry.host}/x:y", "--json"),
        2,
        "ArchiveNotFoundError",
        "Tar file does not exist",
    )


def test_usage_errors(tmp_path: Path) -> None:
    assert_one_line_error(run("tagz"), 2, "No such command 'tagz'", "--help")
    assert_json_error(run("push", "--json"), 2, "UsageError", "Missing argument")


def run_with_a_closed(stream: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The command with its stdout or stderr a pipe nobody reads any more (``| head -1``)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "registryv2", *args],
            stdout=write if stream == "stdout" else subprocess.PIPE,
            stderr=write if stream == "stderr" else subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)


def test_a_reader_that_went_away(tmp_path: Path) -> None:
    good = write_docker25(tmp_path / "good.tar", [simple_image()])
    # Output lost: status 1, not a success, and no traceback where one could be read.
    done = run_with_a_closed("stdout", "validate", str(good))
    assert (done.returncode, done.stderr) == (1, "")
    # An error that cannot be shown still has its own status.
    done = run_with_a_closed("stderr", "push", str(tmp_path / "missing.tar"), "localhost:1/a:b")
    assert (done.returncode, done.stdout) == (2, "")
    assert run_with_a_closed("stderr", "validate", str(good)).returncode == 0


def test_deletes_disabled(tmp_path: Path) -> None:
    server = RegistryServer(
        tmp_path / "registry",
        {
            "storage": {
                "filesystem": {"rootdirectory": str(tmp_path / "data")},
                "delete": {"enabled": False},
            }
        },
    )
    try:
        ok("push", str(write_legacy(tmp_path / "a.tar", [simple_image()])), f"{server.host}/x:y")
        done = run("rm", "-y", f"{server.host}/x:y")
        assert_one_line_error(done, 1, "does not allow deletes", "REGISTRY_STORAGE_DELETE_ENABLED")
    finally:
        server.stop()


def test_a_web_server_is_not_a_registry() -> None:
    with HostileRegistry(lambda request, _: Answer(200, {}, b"<html>hi</html>")) as web:
        assert_one_line_error(run("check", web.host), 1, "is not a registry")


# -- references as people type them, and mirrors ------------------------------------------------


@pytest.fixture
def hub_mirror(registry: RegistryServer, tmp_path: Path) -> Iterator[str]:
    """docker.io/library/busybox:1 in a local registry, which REGISTRYV2_MIRRORS points at."""
    tar = write_legacy(tmp_path / "busybox.tar", [simple_image(tag="busybox:1", seed="bb")])
    ok("push", str(tar), f"{registry.host}/library/busybox:1")
    yield f"docker.io={registry.url}"


def test_docker_hub_names_go_to_the_mirror(
    hub_mirror: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"REGISTRYV2_MIRRORS": hub_mirror}
    for name in ("busybox:1", "docker.io/library/busybox:1", "library/busybox:1"):
        out = tmp_path / f"{name.replace('/', '_')}.tar"
        line = ok("pull", name, "-o", str(out), env=env)
        assert line.split()[1] == "busybox:1"  # as docker save names it
        assert out.exists()
    assert ok("tags", "busybox", env=env).split() == ["1"]
    monkeypatch.setenv("REGISTRYV2_MIRRORS", hub_mirror)
    [info] = pull("busybox:1", tmp_path / "api.tar")
    assert info.repo_tags == ["busybox:1"]


def test_an_explicit_scheme_is_honoured(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    ok(
        "push",
        str(write_legacy(tmp_path / "a.tar", [simple_image()])),
        f"{registry.host}/{repo}:v1",
    )
    # https to a plain-http registry must fail, not fall back to http in silence.
    done = run("--retries", "1", "tags", f"https://{registry.host}/{repo}")
    assert_one_line_error(done, 1, "TLS failed")
    assert ok("tags", f"http://{registry.host}/{repo}").split() == ["v1"]


def test_an_air_gap_round_trip(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    """Three images pulled from one registry into one archive, carried across, and pushed with
    every tag into another: the same tags and digests there, and skopeo reads each."""
    inside = RegistryServer(tmp_path / "air-gapped")
    try:
        sources = {
            f"{repo}/app:v1": write_legacy(tmp_path / "1.tar", [simple_image(seed="one")]),
            f"{repo}/app:v2": write_legacy(tmp_path / "2.tar", [simple_image(seed="two")]),
            f"{repo}/db:5": write_docker25(
                tmp_path / "3.tar", [simple_image(seed="db", compression=["gzip", "gzip"])]
            ),
        }
        refs = [f"{registry.host}/{name}" for name in sources]
        for ref, tar in zip(refs, sources.values(), strict=True):
            ok("push", str(tar), ref)
        bundle = tmp_path / "bundle.tar"
        ok("pull", *refs, "-o", str(bundle))
        carried = ok_json("push", "--all-tags", str(bundle), inside.host)
        assert sorted(p["reference"] for p in carried["pushed"]) == sorted(
            f"{inside.host}/{name}" for name in sources
        )
        for name in sources:
            repository, tag = name.rsplit(":", 1)
            before = get_manifest(registry.url, repository, tag)["digest"]
            after = get_manifest(inside.url, repository, tag)["digest"]
            assert before == after, name
            pulled = skopeo_pull_dir(f"{inside.host}/{name}", tmp_path / name.replace("/", "_"))
            assert pulled["digest"] == after
        assert sorted(ok("tags", f"{inside.host}/{repo}/app").split()) == ["v1", "v2"]
    finally:
        inside.stop()
