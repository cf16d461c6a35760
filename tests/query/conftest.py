"""Fixtures for the query compiler tests: the fixed dataset in a real store of each engine.

``con`` is parametrised over the engines (see tests/_engines.py): the query runner of a
read-only DuckDB connection, or of the ClickHouse store (chdb): what the query module takes.
``duck_con`` is DuckDB only, for tests of DuckDB's own SQL.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

if importlib.util.find_spec("traceduck") is None:  # not pip-installed: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/_engines.py

from querytest_data import TRACES, build_store

from _engines import ENGINES, HAVE_CHDB, new_store_name, write_rows
from traceduck.query import as_runner
from traceduck.store.duckdb._runner import DuckDBRunner


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store file with the fixed dataset, shared by the tests of one module (read-only)."""
    path = tmp_path_factory.mktemp("query") / "fixed.duckdb"
    con = duckdb.connect(str(path))
    build_store(con, TRACES)
    con.close()
    return path


_CHDB_FIXED: dict[str, Any] = {}


def chdb_fixed_store() -> Any:
    """The fixed dataset in chdb, built once per test session (tests must not change it)."""
    if "store" not in _CHDB_FIXED:
        if not HAVE_CHDB:
            pytest.fail("chdb is not installed: pip install -e '.[dev,clickhouse]'")
        from traceduck import TraceStore

        store = TraceStore(new_store_name("chdb", ""))
        write_rows(store, TRACES)
        _CHDB_FIXED["store"] = store
    return _CHDB_FIXED["store"]


@pytest.fixture(scope="module")
def duck_con(store_path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the fixed DuckDB store (tests must not change it)."""
    connection = duckdb.connect(str(store_path), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def con(engine: str, request: pytest.FixtureRequest) -> Any:
    """The fixed dataset on ``engine``: what the query module's functions take."""
    if engine == "duckdb":
        return DuckDBRunner(request.getfixturevalue("duck_con"))
    return chdb_fixed_store().runner


@pytest.fixture(scope="module")
def fixed_store(engine: str, store_path: Path) -> Any:
    """The fixed dataset through the public TraceStore API, on ``engine``."""
    from traceduck import TraceStore

    return TraceStore(str(store_path)) if engine == "duckdb" else chdb_fixed_store()


def select_ids(con: Any, where: str, params: Any) -> list[str]:
    """Trace ids of ``SELECT ... FROM traces t WHERE <where>`` on either engine."""
    runner = as_runner(con)
    query = f"SELECT t.trace_id FROM {runner.dialect.traces_from} WHERE {where}"
    return [r[0] for r in runner.rows(query, params, "")]


@pytest.fixture
def fresh_con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A writable DuckDB store with the fixed dataset, private to one test."""
    connection = duckdb.connect(str(tmp_path / "fresh.duckdb"))
    build_store(connection, TRACES)
    yield connection
    connection.close()
