"""The docs cannot drift from the code: every code block of the README and the user guide runs.

Each document runs in a world of its own: three real registries standing in for the hosts the
docs name (``localhost:15000``; ``mirror.example.com``; ``registry.example.com``, with TLS from a
CA of the test's own and a password), archives named as the docs name them, and Docker Hub
reached through a mirror (there is no network here). Python blocks run in order in one
namespace, shell blocks in bash with the ``registryv2`` command on the PATH; every one must
succeed. The Korean documents must keep the English ones' sections and code blocks.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from registryv2 import RegistryClient, get_manifest, list_tags
from registryv2.archive import ImageArchive

from .archives import simple_image, write_docker25, write_legacy
from .auth_servers import CertificateAuthority, htpasswd_file
from .servers import RegistryServer, push_index

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "guide.md"
TRANSLATIONS = {README: ROOT / "README.ko.md", GUIDE: ROOT / "docs" / "ko" / "guide.md"}
PASSWORD = "correct horse"
# Shown, not run: setting up a clone (.ci/setup does it) and a registry outside the tests.
SHOWN_ONLY = {"console", "yaml"}  # output, and configuration for other programs


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int
    section: str


def parse(path: Path) -> tuple[list[tuple[int, str]], list[Block]]:
    """The headings (level, title) and the fenced code blocks of a Markdown file."""
    headings: list[tuple[int, str]] = []
    blocks: list[Block] = []
    fence: tuple[str, int, list[str]] | None = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if fence is not None:
            if line.startswith("```"):
                blocks.append(
                    Block(fence[0], "\n".join(fence[2]) + "\n", fence[1], headings[-1][1])
                )
                fence = None
            else:
                fence[2].append(line)
        elif line.startswith("```"):
            fence = (line[3:].strip(), number, [])
        elif match := re.match(r"(#+) (.*)", line):
            headings.append((len(match[1]), match[2]))
    assert fence is None, f"{path}: a code block is not closed"
    return headings, blocks


@dataclass
class World:
    workdir: Path
    hosts: dict[str, str]
    env: dict[str, str]
    main: RegistryServer
    mirror: RegistryServer
    private: RegistryServer

    def localize(self, code: str) -> str:
        for name, address in self.hosts.items():
            code = code.replace(name, address)
        return code


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    ca = CertificateAuthority(tmp_path / "ca")
    users = htpasswd_file(tmp_path / "htpasswd", {"alice": PASSWORD})
    main = RegistryServer(tmp_path / "main")
    mirror = RegistryServer(tmp_path / "mirror")
    private = RegistryServer(
        tmp_path / "private",
        {"auth": {"htpasswd": {"realm": "docs", "path": str(users)}}},
        tls=(ca.cert, ca.key),
    )
    try:
        work = tmp_path / "work"
        work.mkdir()
        write_legacy(work / "app.tar", [simple_image(tag="team/app:v1", seed="app")])
        nginx = simple_image(tag="nginx:alpine", seed="nginx", n_layers=1)
        nginx.tags.append("nginx:1.25")
        write_docker25(work / "nginx.tar", [nginx])
        db = simple_image(tag="team/db:2", seed="db", n_layers=1)
        write_docker25(work / "bundle.tar", [simple_image(tag="team/app:v1", seed="app"), db])
        shutil.copy(ca.ca_pem, work / "internal-ca.pem")
        # What the docs take as already there: Docker Hub's images (through the mirror) and
        # other repositories of the team, one of them multi-platform.
        seed = write_docker25(tmp_path / "seed.tar", [simple_image(tag="busybox:1", seed="bb")])
        with RegistryClient(main.url) as client, ImageArchive.open(seed) as archive:
            image = archive.select()
            client.push_image(image, "library/busybox", ["1"])
            client.push_image(image, "library/nginx", ["1.25"])
            client.push_image(image, "team/db", ["2"])
        base = {
            arch: write_legacy(tmp_path / f"base-{arch}.tar", [simple_image(architecture=arch)])
            for arch in ("amd64", "arm64")
        }
        push_index(main.url, "team/base", "1", base)
        hosts = {
            "http://10.0.0.5:5000": main.url,
            "10.0.0.5:5000": main.host,
            "registry.internal:5000": private.host,
            "registry.example.com": private.host,
            "mirror.internal:5000": mirror.host,
            "mirror.example.com": mirror.host,
            "localhost:15000": main.host,
            "/etc/ssl/internal-ca.pem": str(ca.ca_pem),
        }
        env = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "REQUESTS_CA_BUNDLE": str(ca.ca_pem),
            "DOCKER_CONFIG": str(tmp_path / "docker-config"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "REGISTRYV2_MIRRORS": f"docker.io={main.url}",
            "REGISTRY_TOKEN": PASSWORD,
        }
        yield World(work, hosts, env, main, mirror, private)
    finally:
        for server in (main, mirror, private):
            server.stop()


def run_blocks(path: Path, world: World, monkeypatch: pytest.MonkeyPatch) -> list[Block]:
    """Run every block of ``path`` in order; the blocks that ran."""
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(world.workdir)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    ran = []
    for block in parse(path)[1]:
        where = f"{path.name}:{block.line} ({block.section})"
        code = world.localize(block.code)
        if block.language == "python":
            exec(compile(code, where, "exec"), namespace)  # the docs' own code
        elif block.language == "sh":
            if code.split("#")[0].strip() == "docker compose up -d":
                check_compose_file()
            elif ".ci/setup" in code:
                check_opening_commands(code)
            else:
                done = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", code],
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                assert done.returncode == 0, (
                    f"{where}\n{code}\n{done.stderr[-3000:]}{done.stdout[-3000:]}"
                )
        else:
            assert block.language in SHOWN_ONLY, f"{where}: a block that says no language"
            continue
        ran.append(block)
    return ran


def check_compose_file() -> None:
    """``docker compose up -d`` starts the registry these docs use: port 15000, deletes on."""
    compose = (ROOT / "docker-compose.yml").read_text()
    assert '"15000:5000"' in compose
    assert 'REGISTRY_STORAGE_DELETE_ENABLED: "true"' in compose


def check_opening_commands(code: str) -> None:
    """The README's two opening commands: CI runs the second exactly; the first is the demo,
    which test_the_demo_runs runs (all but its set-up, which CI's set-up is)."""
    commands = [line for line in code.splitlines() if line and not line.startswith("#")]
    assert commands == ["bash examples/demo.sh", "bash .ci/setup && .venv/bin/tox"]
    assert (ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1] == commands[1]


def test_every_block_of_the_readme_runs(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = run_blocks(README, world, monkeypatch)
    assert len(ran) == len(parse(README)[1]), "every README block runs"
    # What the blocks did, seen from outside.
    pushed = get_manifest(world.main.url, "team/app", "v1")["digest"]
    assert get_manifest(world.mirror.url, "team/app", "v1")["digest"] == pushed
    assert get_manifest(world.main.url, "team/app", "stable")["digest"] == pushed
    assert (world.workdir / "pulled.tar").exists() and (world.workdir / "busybox.tar").exists()
    assert (world.workdir / "app.tar").read_bytes() != (world.workdir / "pulled.tar").read_bytes()


def test_every_block_of_the_guide_runs(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = run_blocks(GUIDE, world, monkeypatch)
    shown = [b for b in parse(GUIDE)[1] if b not in ran]
    assert {b.section for b in shown} == {
        "Install",
        "A registry to try",
        "Past one machine: shards",
    }
    assert len(ran) > 25
    assert "v1-gzip" not in list_tags(world.main.url, "team/app")
    assert sorted(
        list_tags(
            world.private.url,
            "team/app",
            username="alice",
            password=PASSWORD,
        )
    ) == ["v1", "v2"]
    assert (world.workdir / "images.tar").exists() and (world.workdir / "busybox.tar").exists()


def test_the_demo_runs(tmp_path: Path) -> None:
    """The README's first command, after the set-up CI has already done, on a machine where
    another program holds the demo's default port: it starts its registry on a free one."""
    with socket.socket() as holder:
        # Another run of this test may hold the port at once; a registry never could.
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 15000))
        holder.listen()
        done = subprocess.run(
            ["bash", str(ROOT / "examples" / "demo.sh")],
            env={
                **os.environ,
                "DEMO_SKIP_SETUP": "1",
                "DEMO_DIR": str(tmp_path / "demo"),
                "DEMO_PYTHON": sys.executable,
            },
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    started = re.search(r"^== started a registry on localhost:(\d+) ", done.stdout, re.M)
    assert started and started[1] != "15000", done.stdout
    assert f"addr: 127.0.0.1:{started[1]}" in (tmp_path / "demo" / "registry.yml").read_text()
    assert f"localhost:{started[1]}/tools/busybox:1.0@sha256:" in done.stdout
    assert done.stdout.rstrip().endswith("hello from the pulled image")


@pytest.mark.parametrize("english", list(TRANSLATIONS), ids=lambda p: p.name)
def test_the_korean_text_keeps_every_section_and_block(english: Path) -> None:
    korean = TRANSLATIONS[english]
    en_headings, en_blocks = parse(english)
    ko_headings, ko_blocks = parse(korean)
    assert [level for level, _ in ko_headings] == [level for level, _ in en_headings]
    assert [(b.language, b.code) for b in ko_blocks] == [(b.language, b.code) for b in en_blocks]
    # Each block sits in the section that corresponds to its English one.
    en_index = {title: i for i, (_, title) in enumerate(en_headings)}
    ko_index = {title: i for i, (_, title) in enumerate(ko_headings)}
    assert [ko_index[b.section] for b in ko_blocks] == [en_index[b.section] for b in en_blocks]
    # And it is Korean: every section's prose has Hangul in it.
    text = korean.read_text()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    sections = re.split(r"\n#+ ", "\n" + prose)[1:]
    assert sections and all(re.search("[\uac00-\ud7a3]", s) for s in sections)


def test_the_migration_table_sets_every_function_of_the_async_library_beside_ours() -> None:
    import inspect

    import registry_api_v2_client as theirs

    import registryv2

    table = (ROOT / "docs" / "migration.md").read_text().split("## Every function, side by side")[1]
    rows = {
        re.match(r"\| `(\w+)\(", line)[1]: line  # type: ignore[index]
        for line in table.splitlines()
        if re.match(r"\| `\w+\(", line)
    }
    functions = {
        name
        for name in dir(theirs)
        if not name.startswith("_") and inspect.isfunction(getattr(theirs, name))
    }
    assert len(functions) == 16
    assert set(rows) == functions
    for name in functions:
        assert callable(getattr(registryv2, name)), name
        # Ours takes every parameter theirs does, under the same name.
        ours = inspect.signature(getattr(registryv2, name)).parameters
        assert set(inspect.signature(getattr(theirs, name)).parameters) <= set(ours), name


def test_the_examples_in_the_docstrings_run() -> None:
    """Every docstring example that needs no registry and no file runs and prints what it
    shows (the others are marked ``+SKIP``: the README and guide blocks above run those)."""
    import doctest
    import importlib
    import io
    import pkgutil

    import registryv2

    names = [
        m.name
        for m in pkgutil.walk_packages(registryv2.__path__, "registryv2.")
        if m.name != "registryv2.__main__"  # it runs the command
    ]
    finder = doctest.DocTestFinder()
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS, verbose=False)
    for name in ["registryv2", *names]:
        for test in finder.find(importlib.import_module(name), name):
            runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.attempted > 60, result  # the examples run (those marked +SKIP do not count)
    assert result.failed == 0, out.getvalue()[-4000:]
