"""Trace statistics per group: counts, error rate and latency percentiles, over a filter.

Used by ``TraceStore.stats`` (and so by ``traceduck stats`` and the web UI)::

    >>> TraceStore("traces.duckdb").stats("tags.env = 'prod'", by="name")
    [{'group': 'answer', 'count': 120, 'errors': 6, 'error_rate': 0.05,
      'p50_ms': 2.1, 'p95_ms': 8.4, 'p99_ms': 11.9, 'max_ms': 14.0}]
"""

from __future__ import annotations

from typing import Any

import duckdb

from .._stats import GROUP_FIELDS, bad_group, stat_groups
from ._runner import DuckDBRunner

__all__ = ["trace_stats"]

_PREFIXES = {"tags.": "tags", "tag.": "tags", "metadata.": "metadata"}


def trace_stats(
    cur: duckdb.DuckDBPyConnection, filter_string: str | None = None, by: str | None = None
) -> list[dict[str, Any]]:
    """One dict per group, largest group first: group, count, errors, error_rate, p50/p95/p99/max.

    ``by`` is None (one group, ``group`` = None), ``name``, ``status``, ``service_name``,
    ``tags.KEY`` or ``metadata.KEY`` (a dotted path into a metadata object works too). Traces
    without the tag or metadata key form the group None. Latencies are trace execution times in
    milliseconds (``quantile_cont``, interpolated).
    """
    from ...query import compile_filter

    group_sql, group_params, is_json = _group_expression(by)
    where, params = compile_filter(filter_string, DuckDBRunner(cur))
    rows = cur.execute(
        f"""
        SELECT {group_sql} AS grp,
               count(*) AS n,
               count(*) FILTER (WHERE t.status = 'ERROR') AS errors,
               quantile_cont(t.execution_time_ms, 0.5) AS p50,
               quantile_cont(t.execution_time_ms, 0.95) AS p95,
               quantile_cont(t.execution_time_ms, 0.99) AS p99,
               max(t.execution_time_ms) AS mx
        FROM traces t
        WHERE {where}
        GROUP BY grp
        ORDER BY n DESC, grp NULLS LAST
        """,
        [*group_params, *params],
    ).fetchall()
    return stat_groups(rows, is_json)


def _group_expression(by: str | None) -> tuple[str, list[Any], bool]:
    """(SQL over alias t, its params, whether the group value is JSON text)."""
    if by is None or not by.strip():
        return "NULL::VARCHAR", [], False
    field = by.strip()
    if field in GROUP_FIELDS:
        return f"t.{field}", [], False
    for prefix, column in _PREFIXES.items():
        if field.startswith(prefix) and len(field) > len(prefix):
            key = field[len(prefix) :].strip("`")
            if '"' in key or not key or (column == "metadata" and "" in key.split(".")):
                break  # a JSON path with an empty step is DuckDB's BinderException
            whole = f'$."{key}"'
            if column == "tags" or "." not in key:
                return f"json_extract(t.{column}, ?)::VARCHAR", [whole], True
            # metadata.a.b: the flat key "a.b" if a trace has it, else key a, path b.
            nested = "$." + ".".join(f'"{part}"' for part in key.split("."))
            return (
                f"coalesce(json_extract(t.{column}, ?), json_extract(t.{column}, ?))::VARCHAR",
                [whole, nested],
                True,
            )
    raise bad_group(by)
