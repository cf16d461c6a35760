"""The query module's Runner for DuckDB: compiled filters run on a DuckDB connection."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from ...errors import FilterError
from ...query._dialect import DUCKDB
from ._arrow import query_arrow

__all__ = ["DuckDBRunner"]

# DuckDB errors that a user's value can cause (a bad regex, an out-of-range cast); anything
# else (I/O, a locked file, a missing table) is not the filter's fault and is not rewrapped.
_USER_ERRORS: tuple[type[BaseException], ...] = (
    duckdb.InvalidInputException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
)


class DuckDBRunner:
    dialect = DUCKDB

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def rows(self, query: str, params: Any, text: str) -> list[tuple[Any, ...]]:
        try:
            return self.con.execute(query, list(params)).fetchall()
        except _USER_ERRORS as exc:
            raise _filter_error(exc, text) from exc

    def arrow(self, query: str, params: Any, text: str) -> pa.Table:
        try:
            return query_arrow(self.con, query, list(params))
        except _USER_ERRORS as exc:
            raise _filter_error(exc, text) from exc

    def regex_error(self, pattern: str) -> str | None:
        try:
            self.con.execute(self.dialect.regex_check(), [pattern]).fetchall()
        except duckdb.Error as exc:
            return str(exc).splitlines()[0].split("Error: ", 1)[-1]
        return None


def _filter_error(exc: BaseException, text: str) -> FilterError:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return FilterError(f"the filter could not be run: {first}", text, None)
