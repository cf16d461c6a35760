"""Stored rows as model objects, the same on every engine: the columns of a trace's info and of
a span, spans in tree order, and how a trace id or unique prefix names one trace."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from .. import _json
from ..errors import AmbiguousTraceIdError, TraceNotFoundError
from ..model import Span

__all__ = [
    "HEX",
    "INFO_COLUMNS",
    "SPAN_COLUMNS",
    "TRACE_ID",
    "id_prefix",
    "one_trace",
    "span_from_row",
    "spans_by_trace",
    "tree_order",
]

INFO_COLUMNS = (
    "trace_id", "name", "status", "timestamp_ms", "execution_time_ms", "span_count", "tags",
    "metadata", "service_name", "request_preview", "response_preview", "status_message",
    "experiment_id", "experiment",
)  # fmt: skip
SPAN_COLUMNS = (
    "span_id", "parent_id", "name", "span_type", "status", "status_message", "start_time_ns",
    "end_time_ns", "attributes", "inputs", "outputs", "events", "trace_id", "service_name",
)  # fmt: skip
HEX = re.compile(r"^[0-9a-f]{1,32}$")
TRACE_ID = r"^[0-9a-f]{32}$"  # a stored trace id: 32 lower-case hex characters


def id_prefix(id_or_prefix: Any) -> str:
    """The lower-case hex id (or prefix) a user's id names; TraceNotFoundError if none."""
    if not isinstance(id_or_prefix, str) or not id_or_prefix.strip():
        raise TraceNotFoundError(f"a trace id or prefix is required, got {id_or_prefix!r}")
    prefix = id_or_prefix.strip().lower()
    if prefix.startswith("tr-"):  # MLflow-style request ids
        prefix = prefix[3:]
    if not HEX.match(prefix):
        raise TraceNotFoundError(
            f"{id_or_prefix!r} is not a trace id: ids are up to 32 hexadecimal characters"
        )
    return prefix


def one_trace(prefix: str, found: list[str]) -> str:
    """The one trace id ``prefix`` names among the (up to 11) ids found for it."""
    if not found:
        if len(prefix) == 32:
            raise TraceNotFoundError(f"no trace with id {prefix}")
        raise TraceNotFoundError(f"no trace id starts with {prefix!r}")
    if len(found) > 1:
        raise AmbiguousTraceIdError(prefix, list(found))
    return str(found[0])


def span_from_row(values: dict[str, Any]) -> Span:
    """A Span from a row of ``SPAN_COLUMNS`` (the JSON columns as text)."""
    for key in ("attributes", "inputs", "outputs", "events"):
        values[key] = _json.loads(values[key])
    values["attributes"] = values["attributes"] or {}
    values["events"] = values["events"] or []
    return Span(**values)


def spans_by_trace(rows: Iterable[Sequence[Any]], trace_ids: list[str]) -> dict[str, list[Span]]:
    """Rows of ``SPAN_COLUMNS`` (sorted by start time) as each of ``trace_ids``' spans, in tree
    order (a trace without spans: an empty list)."""
    grouped: dict[str, list[Span]] = {t: [] for t in trace_ids}
    for r in rows:
        span = span_from_row(dict(zip(SPAN_COLUMNS, r)))
        grouped[span.trace_id].append(span)
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
