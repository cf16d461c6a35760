"""Read traces back: id prefix resolution, trace rows, spans in tree order, histories."""

from __future__ import annotations

import re
from typing import Any

import duckdb

from ... import _json
from ...errors import AmbiguousTraceIdError, TraceNotFoundError
from ...model import MetadataEvent, Span, TagEvent, Trace, TraceInfo

INFO_COLUMNS = (
    "trace_id", "name", "status", "timestamp_ms", "execution_time_ms", "span_count", "tags",
    "metadata", "service_name", "request_preview", "response_preview", "status_message",
    "experiment_id", "experiment",
)  # fmt: skip
SPAN_COLUMNS = (
    "span_id", "parent_id", "name", "span_type", "status", "status_message", "start_time_ns",
    "end_time_ns", "attributes", "inputs", "outputs", "events", "trace_id", "service_name",
)  # fmt: skip
_HEX = re.compile(r"^[0-9a-f]{1,32}$")


def lookup_id(cur: duckdb.DuckDBPyConnection, id_or_prefix: str) -> str:
    """The id to query by: a full id as it is (the caller's own query then tells whether it
    exists, saving a round trip; call ``resolve_id`` for the error if not), else the trace the
    prefix names."""
    if isinstance(id_or_prefix, str):
        candidate = id_or_prefix.strip().lower()
        if len(candidate) == 32 and _HEX.match(candidate):
            return candidate
    return resolve_id(cur, id_or_prefix)


def resolve_id(cur: duckdb.DuckDBPyConnection, id_or_prefix: str) -> str:
    """The full trace id for an id or unique prefix (case-insensitive)."""
    if not isinstance(id_or_prefix, str) or not id_or_prefix.strip():
        raise TraceNotFoundError(f"a trace id or prefix is required, got {id_or_prefix!r}")
    prefix = id_or_prefix.strip().lower()
    if prefix.startswith("tr-"):  # MLflow-style request ids
        prefix = prefix[3:]
    if not _HEX.match(prefix):
        raise TraceNotFoundError(
            f"{id_or_prefix!r} is not a trace id: ids are up to 32 hexadecimal characters"
        )
    if len(prefix) == 32:
        row = cur.execute("SELECT trace_id FROM traces WHERE trace_id = ?", [prefix]).fetchone()
        if row is None:
            raise TraceNotFoundError(f"no trace with id {prefix}")
        return str(row[0])
    rows = cur.execute(
        "SELECT trace_id FROM traces WHERE starts_with(trace_id, ?) ORDER BY trace_id LIMIT 11",
        [prefix],
    ).fetchall()
    if not rows:
        raise TraceNotFoundError(f"no trace id starts with {prefix!r}")
    if len(rows) > 1:
        raise AmbiguousTraceIdError(prefix, [r[0] for r in rows])
    return str(rows[0][0])


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
    grouped: dict[str, list[Span]] = {t: [] for t in trace_ids}
    for r in rows:
        values = dict(zip(SPAN_COLUMNS, r))
        for key in ("attributes", "inputs", "outputs", "events"):
            values[key] = _json.loads(values[key])
        values["attributes"] = values["attributes"] or {}
        values["events"] = values["events"] or []
        grouped[values["trace_id"]].append(Span(**values))
    return {t: tree_order(spans) for t, spans in grouped.items()}


def tree_order(spans: list[Span]) -> list[Span]:
    """Depth-first order: each span followed by its children (spans arrive sorted by start)."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Span]] = {}
    for s in spans:
        children.setdefault(s.parent_id if s.parent_id in ids else None, []).append(s)
    out: list[Span] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        span = stack.pop()
        out.append(span)
        stack.extend(reversed(children.get(span.span_id, [])))
    return out


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
