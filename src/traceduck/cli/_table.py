"""The trace list as a terminal table that fits the terminal without breaking an id.

A trace id is never wrapped: when the full 32 characters do not fit, every row shows the
shortest prefix (8 characters at least, as git shows commits) that no other trace in the store
shares, so it can be copied into ``traceduck show``. Tags are never split across lines either:
they are packed into lines that fit the column, and a tag longer than the column is cut with "…".
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from rich.table import Table

from ._common import escape

if TYPE_CHECKING:
    from ..model import Trace
    from ..store import TraceStore

MIN_PREFIX = 8
FULL_ID = 32
_HEADERS = ("trace id", "name", "status", "time (UTC)", "latency ms", "spans", "tags")
_BORDERS = 3 * len(_HEADERS) + 1  # "│ " before each cell, " " after it, and the last "│"
_TAGS_WIDE = 30  # show full ids only when the tags still get this much room
_TAGS_MIN = 12


def unique_prefix_length(store: TraceStore | None, ids: list[str]) -> int:
    """The shortest prefix length (at least 8) that tells each of ``ids`` apart from every
    other trace in ``store`` (from each other alone, without a store)."""
    if not ids:
        return MIN_PREFIX
    others = set(ids)
    if store is not None:
        heads = sorted({i[:MIN_PREFIX] for i in ids})
        found = store.search_traces(
            " OR ".join(f"trace_id STARTSWITH '{h}'" for h in heads), max_results=None
        )
        others |= {t.info.trace_id for t in found}
    length = MIN_PREFIX
    for tid in ids:
        for other in others:
            if other != tid and other[:length] == tid[:length]:
                common = next((n for n, (a, b) in enumerate(zip(tid, other)) if a != b), FULL_ID)
                length = max(length, common + 1)
    return min(length, FULL_ID)


def traces_table(traces: list[Trace], width: int, store: TraceStore | None = None) -> Table:
    """The trace list laid out for a terminal ``width`` characters wide."""
    rows = [_cells(t) for t in traces]
    name_w = min(max([len("name"), *(len(r[1]) for r in rows)]), 30)
    latency_w = max((len(r[4]) for r in rows), default=0)
    fixed = _BORDERS + name_w + len("status") + max(latency_w, len("latency ms")) + len("spans")
    time_w = 19
    id_w = FULL_ID
    if width - fixed - time_w - id_w < _TAGS_WIDE:
        id_w = unique_prefix_length(store, [t.info.trace_id for t in traces])
        if width - fixed - time_w - id_w < _TAGS_MIN * 2:
            time_w = 10  # date above time of day: wraps at the space, nothing is cut
    tags_w = max(width - fixed - time_w - id_w, _TAGS_MIN)

    table = Table(show_lines=False)
    table.add_column(_HEADERS[0], no_wrap=True, min_width=id_w, overflow="ignore")
    table.add_column(_HEADERS[1], max_width=name_w, overflow="ellipsis")
    table.add_column(_HEADERS[2], no_wrap=True)
    table.add_column(_HEADERS[3], max_width=time_w, overflow="fold")
    table.add_column(_HEADERS[4], no_wrap=True)
    table.add_column(_HEADERS[5], no_wrap=True)
    table.add_column(_HEADERS[6], max_width=tags_w, no_wrap=True, overflow="ellipsis")
    for trace, (_, name, status, when, latency, spans, tags) in zip(traces, rows):
        table.add_row(
            trace.info.trace_id[:id_w],
            escape(name),
            status,
            when,
            latency,
            spans,
            escape("\n".join(_pack(tags, tags_w))),
        )
    return table


def _cells(trace: Trace) -> tuple[str, str, str, str, str, str, list[str]]:
    i = trace.info
    tags = [f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in i.tags.items()]
    return (
        i.trace_id,
        i.name or "",
        status_markup(i.status),
        when(i.timestamp_ms),
        f"{i.execution_time_ms:.1f}",
        str(i.span_count),
        tags,
    )


def _pack(items: list[str], width: int) -> list[str]:
    """``items`` joined by spaces into lines of at most ``width``; an item is never split (one
    longer than ``width`` gets a line of its own, which the table cuts with "…")."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 1 + len(item) <= width:
            lines[-1] += " " + item
        else:
            lines.append(item)
    return lines


def when(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def status_markup(status: str) -> str:
    return "[green]OK[/]" if status == "OK" else f"[red]{escape(status)}[/]"
