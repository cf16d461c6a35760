"""The layout that shows the architecture (shared/STYLE.md, DESIGN.md "Stores"): each engine's
driver is imported by its own package only, the engines do not reach into each other, and the
filter compiler runs on the interface, not on an engine."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "traceduck"

# driver module -> the one package (relative to src/traceduck) that may import it
DRIVERS = {
    "duckdb": "store/duckdb",
    "clickhouse_connect": "store/clickhouse",
    "chdb": "store/clickhouse",
}


def imported_modules(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, nested ones included; relative
    imports resolved against ``package`` (the file's dotted package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # ``from . import duckdb`` names a module too
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _files(root: Path) -> list[tuple[Path, str, str]]:
    """(file, its path under root, its dotted package) of every module under ``root``."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        parts = ["traceduck", *path.relative_to(root).parent.parts]
        out.append((path, rel, ".".join(parts)))
    return out


def _inside(rel: str, folder: str) -> bool:
    return rel.startswith(folder + "/")


def driver_violations(root: Path = SRC) -> list[str]:
    """Imports of an engine's driver outside that engine's package."""
    bad = []
    for path, rel, package in _files(root):
        for line, module in imported_modules(path, package):
            top = module.split(".")[0]
            if top in DRIVERS and not _inside(rel, DRIVERS[top]):
                bad.append(f"{rel}:{line} imports {top} (only {DRIVERS[top]}/ may)")
    return sorted(set(bad))


def cross_violations(root: Path = SRC) -> list[str]:
    """Imports that cross the layers: one engine's package into the other's, the query
    module into the stores (it runs on the Runner it is given), anything below the user
    interfaces into cli/, ui/ or collector/."""
    rules = [
        ("store/duckdb", "traceduck.store.clickhouse"),
        ("store/clickhouse", "traceduck.store.duckdb"),
        ("query", "traceduck.store"),
        ("store", "traceduck.cli"),
        ("store", "traceduck.ui"),
        ("store", "traceduck.collector"),
        ("query", "traceduck.cli"),
        ("query", "traceduck.ui"),
        ("query", "traceduck.collector"),
    ]
    bad = []
    for path, rel, package in _files(root):
        for line, module in imported_modules(path, package):
            for folder, forbidden in rules:
                if _inside(rel, folder) and (
                    module == forbidden or module.startswith(forbidden + ".")
                ):
                    bad.append(f"{rel}:{line} imports {module}")
    return sorted(set(bad))


def engine_violations(root: Path = SRC) -> list[str]:
    """Imports of an engine's package from outside ``store/``: tracing, the query module, the
    CLI, the UI and the collector go through the store interface (``TraceStore``, the sink)."""
    bad = []
    for path, rel, package in _files(root):
        if _inside(rel, "store"):
            continue
        for line, module in imported_modules(path, package):
            for engine in ("traceduck.store.duckdb", "traceduck.store.clickhouse"):
                if module == engine or module.startswith(engine + "."):
                    bad.append(f"{rel}:{line} imports {module}")
    return sorted(set(bad))


def test_nothing_outside_the_stores_reaches_into_an_engine() -> None:
    assert engine_violations() == []


def test_the_engine_rule_finds_what_it_must(tmp_path: Path) -> None:
    path = tmp_path / "_export" / "_x.py"
    path.parent.mkdir(parents=True)
    path.write_text("from ..store.duckdb._writer import write_batch\nfrom ..store import _sink\n")
    assert engine_violations(tmp_path) == [
        "_export/_x.py:1 imports traceduck.store.duckdb._writer",
        "_export/_x.py:1 imports traceduck.store.duckdb._writer.write_batch",
    ]


def test_each_engine_driver_is_imported_by_its_own_package_only() -> None:
    assert driver_violations() == []


def test_the_engines_and_the_query_module_do_not_reach_across() -> None:
    assert cross_violations() == []


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("store/_base.py", "import duckdb\n", ["store/_base.py:1 imports duckdb"]),
        ("_stats.py", "def f():\n    from duckdb import Error\n", ["_stats.py:2 imports duckdb"]),
        (
            "cli/x.py",
            "import clickhouse_connect.driver\n",
            ["cli/x.py:1 imports clickhouse_connect"],
        ),
        ("query/_r.py", "import chdb\n", ["query/_r.py:1 imports chdb"]),
        ("store/duckdb/_x.py", "import chdb\n", ["store/duckdb/_x.py:1 imports chdb"]),
        ("store/duckdb/_x.py", "import duckdb\n", []),
        ("store/clickhouse/_x.py", "import clickhouse_connect\nimport chdb\n", []),
    ],
)
def test_the_driver_rule_finds_what_it_must(
    tmp_path: Path, rel: str, source: str, expected: list[str]
) -> None:
    """The checker itself: imports at any depth, in any spelling, outside the engine's folder."""
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    assert [v.split(" (")[0] for v in driver_violations(tmp_path)] == expected


def test_a_relative_import_across_engines_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "store" / "clickhouse" / "_x.py"
    path.parent.mkdir(parents=True)
    path.write_text("from ..duckdb._reader import tree_order\n")
    assert cross_violations(tmp_path) == [
        "store/clickhouse/_x.py:1 imports traceduck.store.duckdb._reader",
        "store/clickhouse/_x.py:1 imports traceduck.store.duckdb._reader.tree_order",
    ]
