"""Counts, key lists, grouped stats and side-by-side comparison for the UI.

Stats come from ``TraceStore.stats`` when the store has it, else from the same SQL here.
Compare is built here from ``TraceInfo`` values, not from ``traceduck.compare_traces``: that
returns a pandas DataFrame (pandas is optional) while the page wants rows with a ``differs``
flag and typed values. Filters compile with the same ``compile_filter`` the search uses.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import FilterError
from ..query import compile_filter
from ..store import TraceStore

_BUILTIN_GROUPS = {"name": "t.name", "status": "t.status", "service_name": "t.service_name"}
_INFO_ROWS = ("name", "status", "execution_time_ms", "timestamp_ms", "span_count", "service_name")


def _json_path(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'$."{escaped}"'


def count(store: TraceStore, filter_string: str | None) -> int:
    with store._db.lease() as cur:
        where, params = compile_filter(filter_string or None, cur)
        return int(
            cur.execute(f"SELECT count(*) FROM traces t WHERE {where}", params).fetchall()[0][0]
        )


def exclusive_keys(store: TraceStore) -> dict[str, str]:
    return {r["key"]: r["scope"] for r in store.sql(
        "SELECT key, scope FROM tag_keys WHERE exclusive ORDER BY key").to_pylist()}  # fmt: skip


def keys(store: TraceStore, sample: int = 10_000) -> dict[str, list[str]]:
    """Tag and metadata keys of the newest ``sample`` traces (a full scan would not scale)."""
    out: dict[str, list[str]] = {}
    for column in ("tags", "metadata"):
        rows = store.sql(
            f"SELECT DISTINCT unnest(json_keys({column})) AS k FROM (SELECT {column} FROM traces "
            f"ORDER BY timestamp_ms DESC LIMIT {int(sample)}) ORDER BY k"
        ).to_pylist()
        out[column] = [r["k"] for r in rows]
    return out


def _group_expr(by: str) -> tuple[str, list[Any]]:
    if by in _BUILTIN_GROUPS:
        return _BUILTIN_GROUPS[by], []
    for prefix, column in (("tags.", "t.tags"), ("metadata.", "t.metadata")):
        if by.startswith(prefix) and len(by) > len(prefix):
            return f"json_extract_string({column}, ?)", [_json_path(by[len(prefix) :])]
    raise FilterError(
        f"cannot group by {by!r}: use name, status, service_name, tags.<key> or metadata.<key>"
    )


def stats(store: TraceStore, filter_string: str | None, by: str, limit: int = 50) -> list[dict]:
    """Per group: count, errors, error rate, latency p50/p95/p99/max (ms); biggest first.

    ``TraceStore.stats`` when the store has it (the same numbers as ``traceduck stats``),
    else the same query here.
    """
    native = getattr(store, "stats", None)
    if native is not None:
        return list(native(filter_string, by=by))[:limit]
    group, group_params = _group_expr(by)
    with store._db.lease() as cur:
        where, params = compile_filter(filter_string, cur)
        rows = cur.execute(
            f"""
            SELECT grp, count(*) AS n, count(*) FILTER (WHERE status = 'ERROR') AS errors,
                   quantile_cont(ms, [0.5, 0.95, 0.99]) AS q, max(ms) AS top
            FROM (SELECT {group} AS grp, t.status, t.execution_time_ms AS ms
                  FROM traces t WHERE {where})
            GROUP BY grp ORDER BY n DESC, grp NULLS LAST LIMIT {int(limit)}
            """,
            group_params + params,
        ).fetchall()
    return [
        {
            "group": grp,
            "count": n,
            "errors": errors,
            "error_rate": errors / n if n else 0.0,
            "p50_ms": q[0] if q else None,
            "p95_ms": q[1] if q else None,
            "p99_ms": q[2] if q else None,
            "max_ms": top,
        }
        for grp, n, errors, q, top in rows
    ]


def compare(
    store: TraceStore, ids: list[str], filter_string: str | None, limit: int
) -> dict[str, Any]:
    """Rows of fields (info, then tags.*, then metadata.*), one value per trace, with
    ``differs`` set when the traces do not all hold the same value."""
    if ids:
        infos = [store.get_trace(i).info for i in ids[:limit]]
    else:
        infos = [t.info for t in store.search_traces(filter_string, max_results=limit)]
    rows: list[dict[str, Any]] = []

    def add(field: str, values: list[Any], present: list[bool]) -> None:
        texts = {
            json.dumps(v, sort_keys=True, default=str) if p else "\0"
            for v, p in zip(values, present)
        }
        rows.append(
            {"field": field, "values": values, "present": present, "differs": len(texts) > 1}
        )

    for name in _INFO_ROWS:
        values = [getattr(i, name) for i in infos]
        add(name, values, [True] * len(infos))
    for column in ("tags", "metadata"):
        seen: dict[str, None] = {}
        for info in infos:
            seen.update(dict.fromkeys(getattr(info, column)))
        for key in sorted(seen):
            maps = [getattr(i, column) for i in infos]
            add(f"{column}.{key}", [m.get(key) for m in maps], [key in m for m in maps])
    return {"trace_ids": [i.trace_id for i in infos], "rows": rows}


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
