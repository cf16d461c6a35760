"""Trace statistics per group: counts, error rate and latency percentiles, over a filter.

Used by ``TraceStore.stats`` (and so by ``traceduck stats`` and the web UI)::

    >>> TraceStore("traces.duckdb").stats("tags.env = 'prod'", by="name")
    [{'group': 'answer', 'count': 120, 'errors': 6, 'error_rate': 0.05,
      'p50_ms': 2.1, 'p95_ms': 8.4, 'p99_ms': 11.9, 'max_ms': 14.0}]
"""

from __future__ import annotations

from typing import Any

import duckdb

from ...query._dialect import Frag, sql
from .._stats import group_field, stat_groups
from ._runner import DuckDBRunner

__all__ = ["trace_stats"]


def trace_stats(
    cur: duckdb.DuckDBPyConnection, filter_string: str | None = None, by: str | None = None
) -> list[dict[str, Any]]:
    """One dict per group, largest group first: group, count, errors, error_rate, p50/p95/p99/max.

    ``by`` is None (one group, ``group`` = None), ``name``, ``status``, ``service_name``,
    ``tags.KEY`` or ``metadata.KEY`` (a dotted path into a metadata object works too), spelled
    as in a filter. Traces without the tag or metadata key form the group None. Latencies are
    trace execution times in milliseconds (``quantile_cont``, interpolated).
    """
    from ...query._compiler import compile_filter_frag

    runner = DuckDBRunner(cur)
    field = group_field(by)
    is_json = not isinstance(field, str) and field is not None
    if field is None:
        group = Frag("NULL::VARCHAR")
    elif isinstance(field, str):
        group = Frag(f"t.{field}")
    else:
        value, _ = runner.dialect.order_value(field, 0)
        group = sql("CAST({} AS VARCHAR)", value)
    where = compile_filter_frag(filter_string, runner)
    query, params = runner.dialect.render(
        sql(
            "SELECT {} AS grp, count(*) AS n, count(*) FILTER (WHERE t.status = 'ERROR'), "
            "quantile_cont(t.execution_time_ms, 0.5), quantile_cont(t.execution_time_ms, 0.95), "
            "quantile_cont(t.execution_time_ms, 0.99), max(t.execution_time_ms) "
            "FROM traces t WHERE {} GROUP BY grp",
            group,
            where,
        )
    )
    return stat_groups(cur.execute(query, params).fetchall(), is_json)
