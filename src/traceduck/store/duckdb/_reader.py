"""Read traces back: id prefix resolution, trace rows, spans in tree order, histories."""

from __future__ import annotations

from typing import Any

import duckdb

from ... import _json
from ...model import MetadataEvent, Span, TagEvent, Trace, TraceInfo
from .._rows import HEX, INFO_COLUMNS, SPAN_COLUMNS, id_prefix, one_trace, spans_by_trace


def lookup_id(cur: duckdb.DuckDBPyConnection, id_or_prefix: str) -> str:
    """The id to query by: a full id as it is (the caller's own query then tells whether it
    exists, saving a round trip; call ``resolve_id`` for the error if not), else the trace the
    prefix names."""
    if isinstance(id_or_prefix, str):
        candidate = id_or_prefix.strip().lower()
        if len(candidate) == 32 and HEX.match(candidate):
            return candidate
    return resolve_id(cur, id_or_prefix)


def resolve_id(cur: duckdb.DuckDBPyConnection, id_or_prefix: str) -> str:
    """The full trace id for an id or unique prefix (case-insensitive)."""
    prefix = id_prefix(id_or_prefix)
    if len(prefix) == 32:
        rows = cur.execute("SELECT trace_id FROM traces WHERE trace_id = ?", [prefix]).fetchall()
    else:
        rows = cur.execute(
            "SELECT trace_id FROM traces WHERE starts_with(trace_id, ?) ORDER BY trace_id LIMIT 11",
            [prefix],
        ).fetchall()
    return one_trace(prefix, [r[0] for r in rows])


def info_from_row(row: tuple[Any, ...]) -> TraceInfo:
    values = dict(zip(INFO_COLUMNS, row))
    values["tags"] = _json.loads(values["tags"]) or {}
    values["metadata"] = _json.loads(values["metadata"]) or {}
    return TraceInfo(**values)


def load_infos(cur: duckdb.DuckDBPyConnection, trace_ids: list[str]) -> list[TraceInfo]:
    """TraceInfo of each id, in the order given (ids not found are left out)."""
    if not trace_ids:
        return []
    placeholders = ", ".join("?" * len(trace_ids))
    rows = cur.execute(
        f"SELECT {', '.join(INFO_COLUMNS)} FROM traces WHERE trace_id IN ({placeholders})",
        trace_ids,
    ).fetchall()
    by_id = {r[0]: info_from_row(r) for r in rows}
    return [by_id[t] for t in trace_ids if t in by_id]


def load_spans(cur: duckdb.DuckDBPyConnection, trace_ids: list[str]) -> dict[str, list[Span]]:
    """Spans of each trace, parents before children, siblings by start time."""
    if not trace_ids:
        return {}
    placeholders = ", ".join("?" * len(trace_ids))
    return _spans(cur, f"trace_id IN ({placeholders})", trace_ids, trace_ids)


# A trace's spans start near its root: looking there first lets DuckDB skip the row groups
# whose start_time_ns range cannot hold them (a 3M-span store: ~60 ms -> a few ms).
_NEAR_NS = 3600 * 10**9


def load_trace_spans(cur: duckdb.DuckDBPyConnection, info: TraceInfo) -> list[Span]:
    """One trace's spans: first within an hour of its root, then (if the stored span count
    says some are missing: a span that started far from its root) over the whole table."""
    start = info.timestamp_ms * 1_000_000
    end = start + int(info.execution_time_ms * 1_000_000)
    near = _spans(
        cur,
        "trace_id = ? AND start_time_ns BETWEEN ? AND ?",
        [info.trace_id, start - _NEAR_NS, end + _NEAR_NS],
        [info.trace_id],
    )[info.trace_id]
    if len(near) == info.span_count:
        return near
    return load_spans(cur, [info.trace_id])[info.trace_id]


def _spans(
    cur: duckdb.DuckDBPyConnection, where: str, params: list[Any], trace_ids: list[str]
) -> dict[str, list[Span]]:
    rows = cur.execute(
        f"SELECT {', '.join(SPAN_COLUMNS)} FROM spans WHERE {where} "
        "ORDER BY start_time_ns, span_id",
        params,
    ).fetchall()
    return spans_by_trace(rows, trace_ids)


def get_trace(cur: duckdb.DuckDBPyConnection, id_or_prefix: str) -> Trace:
    trace_id = resolve_id(cur, id_or_prefix)
    info = load_infos(cur, [trace_id])[0]
    return Trace(info, load_trace_spans(cur, info))


def tag_history(cur: duckdb.DuckDBPyConnection, trace_id: str) -> list[TagEvent]:
    rows = cur.execute(
        "SELECT ts, trace_id, key, old_value, new_value, operation, source FROM tag_events "
        "WHERE trace_id = ? ORDER BY event_id",
        [trace_id],
    ).fetchall()
    return [TagEvent.from_row(r) for r in rows]


def metadata_history(cur: duckdb.DuckDBPyConnection, trace_id: str) -> list[MetadataEvent]:
    rows = cur.execute(
        "SELECT ts, trace_id, key, value, source FROM trace_metadata WHERE trace_id = ? "
        "ORDER BY entry_id",
        [trace_id],
    ).fetchall()
    return [MetadataEvent(r[0], r[1], r[2], _json.loads(r[3]), r[4]) for r in rows]
