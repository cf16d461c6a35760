"""What the query module needs from a store: its Dialect and a way to run a compiled query.

The compiler runs no queries of its own: its type probes ("tags.cost holds numbers") and regex
checks go through the ``Runner`` a store hands it (DuckDB: ``store/duckdb/_runner.py``,
ClickHouse: ``store/clickhouse/_query.py``). Nothing here knows an engine.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from ._dialect import Dialect

__all__ = ["Runner", "as_runner"]


@runtime_checkable
class Runner(Protocol):
    dialect: Dialect

    def rows(self, query: str, params: Any, text: str) -> list[tuple[Any, ...]]:
        """Rows of a rendered query; a value-caused engine error is a FilterError."""

    def arrow(self, query: str, params: Any, text: str) -> pa.Table:
        """``rows`` as a pyarrow Table."""

    def regex_error(self, pattern: str) -> str | None:
        """Why ``pattern`` is not a valid regular expression for the engine, or None."""


def as_runner(con: Any) -> Runner:
    """``con`` when it is a Runner; a TypeError that says what to pass otherwise."""
    if not (hasattr(con, "regex_error") and hasattr(con, "dialect")):  # (cheaper than isinstance)
        raise TypeError(
            f"the query module runs queries through a store's Runner, not {type(con).__name__} "
            "(e.g. DuckDBRunner(connection))"
        )
    return con
