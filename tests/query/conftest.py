"""Fixtures for the query compiler tests: a real DuckDB file holding the fixed dataset."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import duckdb
import pytest

if importlib.util.find_spec("traceduck") is None:  # not pip-installed: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from querytest_data import TRACES, build_store


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store file with the fixed dataset, shared by the tests of one module (read-only)."""
    path = tmp_path_factory.mktemp("query") / "fixed.duckdb"
    con = duckdb.connect(str(path))
    build_store(con, TRACES)
    con.close()
    return path


@pytest.fixture(scope="module")
def con(store_path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the fixed store (tests must not change it)."""
    connection = duckdb.connect(str(store_path), read_only=True)
    yield connection
    connection.close()


@pytest.fixture
def fresh_con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A writable store with the fixed dataset, private to one test."""
    connection = duckdb.connect(str(tmp_path / "fresh.duckdb"))
    build_store(connection, TRACES)
    yield connection
    connection.close()
