"""The floors of docs/architecture.md, checked on the source: arrows only run down, no cycles.

Floors, bottom to top (a module may import its own unit and any unit on a lower floor):

    0  explgraph.core, explgraph (the bare package: its version)
    1  miner, graphstore          (never each other)
    2  queries
    3  explgraph.workflows
    4  explgraph.web
    5  explgraph.cli              (may start the web explorer)
    6  explgraph.__main__

Every import counts: top-level, function-local and ``TYPE_CHECKING`` ones, so a cycle cannot
hide behind a late import. Only the CLI reads the environment, except for the process-wide
switches docs/architecture.md lists.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("explgraph", "miner", "graphstore", "queries")

#: unit name -> floor; the longest matching prefix of a module names its unit
FLOORS: dict[str, int] = {
    "explgraph": 0,
    "explgraph.core": 0,
    "miner": 1,
    "graphstore": 1,
    "queries": 2,
    "explgraph.workflows": 3,
    "explgraph.web": 4,
    "explgraph.cli": 5,
    "explgraph.__main__": 6,
}

#: environment variables a library may read (process-wide switches for tests and operators)
ALLOWED_ENVIRONMENT = {
    "explgraph/core/faults.py",  # EXPLGRAPH_FAULT_AT / _EXIT / _SIGNAL
    "miner/graph/kernels.py",  # EXPLGRAPH_KERNELS
    "miner/models/loading.py",  # EXPLGRAPH_OFFLINE
}
ENVIRONMENT_EXEMPT_PREFIXES = ("explgraph/cli/", "graphstore/testing/")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            found[module_name(path)] = path
    return found


def unit_of(module: str) -> str:
    best = ""
    for unit in FLOORS:
        if (module == unit or module.startswith(unit + ".")) and len(unit) > len(best):
            best = unit
    return best


def _resolve(target: str) -> str | None:
    """The project module an import of ``target`` loads (a name inside a module: that module)."""
    known = modules()
    while target:
        if target in known:
            return target
        if "." not in target:
            return None
        target = target.rsplit(".", 1)[0]
    return None


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """Every project module ``module`` imports, with the line of the import."""
    path = modules()[module]
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            targets = [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] not in PACKAGES:
                continue
            resolved = _resolve(target)
            if resolved is not None and resolved != module:
                yield resolved, node.lineno


@cache
def import_graph() -> dict[str, frozenset[str]]:
    return {module: frozenset(t for t, _ in imports_of(module)) for module in modules()}


def test_every_module_has_a_floor() -> None:
    assert not [m for m in modules() if not unit_of(m)]


def test_arrows_only_run_down() -> None:
    wrong = []
    for module in sorted(modules()):
        unit = unit_of(module)
        for target, line in imports_of(module):
            other = unit_of(target)
            if other == unit or FLOORS[other] < FLOORS[unit]:
                continue
            wrong.append(f"{modules()[module].relative_to(REPO)}:{line} {module} -> {target}")
    assert not wrong, "imports that run up or sideways:\n" + "\n".join(wrong)


def test_the_core_imports_nothing_of_the_project() -> None:
    core = [m for m in modules() if unit_of(m) == "explgraph.core"]
    assert core
    outside = {
        f"{m} -> {t}" for m in core for t in import_graph()[m] if unit_of(t) != "explgraph.core"
    }
    assert not outside


def _cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    assert _cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a planted two-module cycle is reported."""
    graph = dict(import_graph())
    a, b = "miner.data.boxes", "miner.data.records"
    graph[a] = graph[a] | {b}
    graph[b] = graph[b] | {a}
    assert [a, b] in _cycles(graph)


def _environment_reads(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv", "putenv")
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            lines.append(node.lineno)
    return lines


def test_only_the_cli_reads_the_environment() -> None:
    reads = []
    for path in sorted(modules().values()):
        relative = path.relative_to(REPO).as_posix()
        if relative in ALLOWED_ENVIRONMENT or relative.startswith(ENVIRONMENT_EXEMPT_PREFIXES):
            continue
        reads += [f"{relative}:{line}" for line in _environment_reads(path)]
    assert not reads, "environment reads below the CLI:\n" + "\n".join(reads)


PROBE = """
import json, sys
import {module}
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
project = sorted(m for m in sys.modules if m.split(".")[0] in {packages!r})
print(json.dumps({{"heavy": heavy, "project": project}}))
"""
HEAVY = ("torch", "numpy", "pandas", "rich", "typer", "click", "neo4j", "ladybug")


@pytest.mark.parametrize("module", ["explgraph", "explgraph.core"])
def test_the_core_loads_light(module: str) -> None:
    """Importing the bare package or its core loads no CLI, no torch, no other project module."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, heavy=HEAVY, packages=PACKAGES)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    loaded = json.loads(done.stdout)
    assert loaded["heavy"] == []
    assert all(unit_of(m) in ("explgraph", "explgraph.core") for m in loaded["project"])


def _uses_of_tests(path: Path) -> list[int]:
    """Lines of ``path`` that import ``tests`` or name one of its modules (``tests.x:fn``)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value] if re.fullmatch(r"tests(\.\w+)+(:[\w.]+)?", node.value) else []
        else:
            continue
        if any(name == "tests" or name.startswith("tests.") for name in names):
            lines.append(node.lineno)
    return lines


def test_bench_never_uses_the_tests() -> None:
    """Benchmarks stand on the product (and graphstore.testing), never on tests/."""
    found = {
        str(path.relative_to(REPO)): lines
        for path in sorted((REPO / "bench").rglob("*.py"))
        if (lines := _uses_of_tests(path))
    }
    assert found == {}


def test_the_bench_check_sees_an_import_and_a_model_spec(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text('from tests.helpers import cli\nMODEL = "tests.helpers.models:tiny_net"\n')
    assert _uses_of_tests(probe) == [1, 2]
