"""The query module's Runner for ClickHouse: compiled filters run through clickhouse-connect."""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

from ...errors import FilterError, StorageError
from ._client import Connection
from ._dialect import CLICKHOUSE, ClickHouseDialect

__all__ = ["QUERY_SETTINGS", "ClickHouseRunner", "user_error"]

# Outer joins give NULL (not 0 or '') for a trace without the key; a CAST keeps NULL.
QUERY_SETTINGS = {"join_use_nulls": 1, "cast_keep_nullable": 1}
# Errors a user's value can cause: a bad regex (427), a bad number or text (6, 27, 38, 69, 72),
# a value ClickHouse cannot read as DuckDB does (395, ``_numbers.BIGINT_AMBIGUOUS``).
_USER_CODES = {"427", "6", "27", "38", "69", "72", "395"}
_CODE = re.compile(r"Code: (\d+)")


class ClickHouseRunner:
    dialect: ClickHouseDialect = CLICKHOUSE

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def rows(self, query: str, params: Any, text: str) -> list[tuple[Any, ...]]:
        try:
            return self.conn.query(query, params, **QUERY_SETTINGS)
        except StorageError as exc:
            raise user_error(exc, text) or exc from exc.__cause__

    def arrow(self, query: str, params: Any, text: str, **settings: Any) -> pa.Table:
        """The query's result as Arrow (``settings``: more ClickHouse settings for it); an
        error a filter's value causes (``text``) is a FilterError."""
        try:
            return self.conn.query_arrow(query, params, **QUERY_SETTINGS, **settings)
        except StorageError as exc:
            raise user_error(exc, text) or exc from exc.__cause__

    def regex_error(self, pattern: str) -> str | None:
        try:
            self.conn.query("SELECT match('', {p:String})", {"p": pattern})
        except StorageError as exc:
            message = str(exc.__cause__ or exc)
            found = re.search(r"cannot compile re2: (.*?)(?:\. Look at|$)", message)
            if found is None:
                return message.splitlines()[0]
            # "<pattern>, error: <RE2's message>": RE2's message alone, as DuckDB gives it
            detail = found.group(1)
            lead = f"{pattern}, error: "
            return detail[len(lead) :] if detail.startswith(lead) else detail
        return None


def user_error(exc: StorageError, text: str) -> FilterError | None:
    code = _CODE.search(str(exc))
    if code is None or code.group(1) not in _USER_CODES:
        return None
    first = str(exc.__cause__ or exc).strip().splitlines()[0]
    return FilterError(f"the filter could not be run: {first}", text, None)
