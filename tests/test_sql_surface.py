"""The documented SQL surface (README) matches the schema, and td.sql stays read-only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import traceduck as td
from traceduck.store.duckdb._schema import SQL_SURFACE

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_lists_every_documented_table_and_column() -> None:
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|$", README.read_text(), re.MULTILINE))
    documented = {t: tuple(c.strip() for c in cols.split(",")) for t, cols in rows.items()}
    assert documented == SQL_SURFACE


def test_schema_has_exactly_the_documented_columns(tmp_path: Path) -> None:
    store = td.TraceStore(tmp_path / "s.duckdb")
    for table, columns in SQL_SURFACE.items():
        result = store.sql(f"SELECT * FROM {table} LIMIT 0")
        assert tuple(result.column_names) == columns, table


@pytest.mark.parametrize(
    "query",
    [
        "DROP TABLE traces",
        "DELETE FROM traces",
        "SELECT 1; DROP TABLE traces",
        "UPDATE traces SET name = 'x'",
    ],
)
def test_sql_refuses_anything_but_one_read_only_query(tmp_path: Path, query: str) -> None:
    store = td.TraceStore(tmp_path / "s.duckdb")
    with pytest.raises(td.TraceduckError, match="read-only"):
        store.sql(query)
    assert store.sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 0}]


def test_sql_error_is_a_clear_traceduck_error(tmp_path: Path) -> None:
    store = td.TraceStore(tmp_path / "s.duckdb")
    with pytest.raises(td.TraceduckError, match="SQL error"):
        store.sql("SELECT no_such_column FROM traces")
