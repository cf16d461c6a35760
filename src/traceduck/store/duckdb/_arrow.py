"""Arrow tables in and out of DuckDB statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

__all__ = ["query_arrow", "registered"]


def query_arrow(cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """A SELECT's result as a pyarrow Table, without DB-API's extra copy.

    DuckDB 2 renamed the relation's ``arrow()`` to ``to_arrow_table()``.
    """
    relation = cur.sql(sql, params=params or None)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


@contextmanager
def registered(cur: duckdb.DuckDBPyConnection, name: str, table: Any) -> Iterator[None]:
    """``table`` (Arrow, or a dict of NumPy columns) visible to SQL on ``cur`` as ``name`` for
    the block.

    Inside a transaction that a failed statement aborted, DuckDB refuses the unregister too;
    the block's own error is the one to report (the rollback drops the name with the rest)."""
    cur.register(name, table)
    try:
        yield
    finally:
        try:
            cur.unregister(name)
        except duckdb.TransactionException:
            pass
