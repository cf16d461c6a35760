"""Counts, key lists, grouped stats and side-by-side comparison for the UI.

Stats are ``TraceStore.stats`` (the same numbers as ``traceduck stats``).
Compare is built here from ``TraceInfo`` values, not from ``traceduck.compare_traces``: that
returns a pandas DataFrame (pandas is optional) while the page wants rows with a ``differs``
flag and typed values.
"""

from __future__ import annotations

import json
from typing import Any

from .._compare import resolve_infos
from ..store import TraceStore

_INFO_ROWS = ("name", "status", "execution_time_ms", "timestamp_ms", "span_count", "service_name")


def exclusive_keys(store: TraceStore) -> dict[str, str]:
    return store.exclusive_tag_keys()


def keys(store: TraceStore, sample: int = 10_000) -> dict[str, list[str]]:
    """Tag and metadata keys of the newest ``sample`` traces (a full scan would not scale)."""
    return store.keys_in_use(sample)


def stats(store: TraceStore, filter_string: str | None, by: str, limit: int = 50) -> list[dict]:
    """Per group: count, errors, error rate, latency p50/p95/p99/max (ms); biggest first."""
    return store.stats(filter_string, by=by)[:limit]


def compare(
    store: TraceStore, ids: list[str], filter_string: str | None, limit: int
) -> dict[str, Any]:
    """Rows of fields (info, then tags.*, then metadata.*), one value per trace, with
    ``differs`` set when the traces do not all hold the same value."""
    if ids:
        # one query for the infos (no spans), where get_trace per id loaded every span
        infos = resolve_infos(store, ids[:limit])
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
