"""docs/architecture.md against the code: the layers, the module table, the import directions."""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import registryv2
from registryv2.archive import ImageArchive
from registryv2.archive.writer import ArchiveWriter
from registryv2.client import RegistryClient
from registryv2.engine import TransferEngine
from registryv2.registry import Registry
from registryv2.transport import Transport

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "registryv2"
DOC = ROOT / "docs" / "architecture.md"


@functools.cache
def _table(heading: str) -> list[list[str]]:
    """The rows of the first table under ``## heading``, header and rule left out."""
    section = DOC.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def _allowed() -> dict[str, set[str]]:
    return {
        layer: {name.strip() for name in below.split(",") if name.strip()}
        for layer, below in _table("Layers")
    }


def _modules() -> dict[str, tuple[str, str]]:
    """``archive/reader.py`` -> (layer, job), as the doc says."""
    return {row[0].strip("`"): (row[1], row[2]) for row in _table("Where each job lives")}


def _path_of(module: str) -> str | None:
    """``registryv2.archive.reader`` -> ``archive/reader.py`` (a package -> its ``__init__``)."""
    parts = module.split(".")[1:]
    if (PACKAGE.joinpath(*parts) / "__init__.py").exists():
        return "/".join([*parts, "__init__.py"])
    if parts and PACKAGE.joinpath(*parts[:-1], parts[-1] + ".py").exists():
        return "/".join(parts) + ".py"
    return None


def imports_of(relative: str, source: str) -> set[str]:
    """The package's modules that ``source`` (the file ``relative``) imports, anywhere in it."""
    package = ["registryv2", *relative.split("/")[:-1]]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                stem = ".".join([*base, *([node.module] if node.module else [])])
            else:
                stem = node.module or ""
            names = [f"{stem}.{a.name}" for a in node.names]
            # ``from . import operations`` imports a module; ``from .x import y``, x itself.
            if not any(_path_of(n) for n in names):
                names = [stem]
        for name in names:
            if name == "registryv2" or name.startswith("registryv2."):
                path = _path_of(name)
                if path is not None:
                    found.add(path)
    return found


def violations(relative: str, source: str, layers: dict[str, tuple[str, str]]) -> list[str]:
    """Each import of ``relative`` that points at a layer its own layer may not import."""
    allowed = _allowed()
    layer = layers[relative][0]
    bad = []
    for target in sorted(imports_of(relative, source)):
        other = layers[target][0]
        if other != layer and other not in allowed[layer]:
            bad.append(f"{relative} ({layer}) imports {target} ({other})")
    return bad


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(PACKAGE)): path.read_text() for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_every_module_is_in_the_table_and_every_row_is_a_module() -> None:
    assert set(_modules()) == set(_sources())


def test_every_layer_in_the_module_table_is_defined() -> None:
    assert {layer for layer, _ in _modules().values()} == set(_allowed())


def test_each_job_is_the_first_line_of_the_module_docstring() -> None:
    for relative, source in _sources().items():
        docstring = ast.get_docstring(ast.parse(source)) or ""
        assert _modules()[relative][1] == docstring.splitlines()[0], relative


def test_layers_only_point_down() -> None:
    modules = _modules()
    found = [v for rel, src in _sources().items() for v in violations(rel, src, modules)]
    assert found == []


def test_the_checker_catches_an_archive_module_that_imports_the_registry() -> None:
    modules = _modules()
    source = "from ..registry import Registry\nfrom ..image import Blob\n"
    assert violations("archive/reader.py", source, modules) == [
        "archive/reader.py (archive) imports registry.py (registry)"
    ]
    assert violations("registry.py", "from .archive.writer import ArchiveWriter\n", modules)


def test_the_archive_and_registry_sides_never_meet_below_the_jobs() -> None:
    modules = _modules()
    for relative, source in _sources().items():
        layer = modules[relative][0]
        targets = {modules[t][0] for t in imports_of(relative, source)}
        if layer == "archive":
            assert not targets & {"wire", "transfer", "registry", "jobs"}, relative
        if layer in {"wire", "transfer", "registry"}:
            assert "archive" not in targets, relative


def test_no_circle_of_imports() -> None:
    graph = {rel: imports_of(rel, src) for rel, src in _sources().items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    names = [
        "registryv2." + rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for rel in _sources()
        if rel not in {"__init__.py", "__main__.py"}  # __main__ runs the command
    ]
    script = (
        "import importlib, sys\n"
        f"for name in {sorted(names)!r} + {sorted(names, reverse=True)!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'registryv2']:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_registry_names_the_tag_or_digest_part_an_identifier() -> None:
    for name, method in inspect.getmembers(Registry, inspect.isfunction):
        parameters = inspect.signature(method).parameters
        assert "reference" not in parameters, name


def test_the_words_table_names_what_the_code_has() -> None:
    words = dict((row[0], row[1]) for row in _table("Words"))
    for word in (
        "reference",
        "identifier",
        "repository",
        "source, destination",
        "place",
        "blob reader, blob writer",
    ):
        assert word in words


def test_every_name_the_doc_gives_exists() -> None:
    """``module.name`` and ``Class.method`` in backquotes, anywhere in the doc, are in the code."""
    classes = {
        "RegistryClient": RegistryClient,
        "Registry": Registry,
        "ArchiveWriter": ArchiveWriter,
        "ImageArchive": ImageArchive,
        "TransferEngine": TransferEngine,
        "Transport": Transport,
    }
    named = re.findall(r"`([A-Za-z_][\w.]*)\.(\w+)[`(]", DOC.read_text())
    assert len(named) > 15
    for owner, attribute in named:
        if attribute in {"py", "md", "json", "tar", "gz"} or owner == "os":
            continue
        if owner in classes:
            found: object = classes[owner]
        elif hasattr(registryv2, owner) and not _path_of(f"registryv2.{owner}"):
            found = getattr(registryv2, owner)
        else:
            found = importlib.import_module(f"registryv2.{owner}")
        assert hasattr(found, attribute) or (
            isinstance(found, type) and attribute in inspect.signature(found).parameters
        ), (owner, attribute)
