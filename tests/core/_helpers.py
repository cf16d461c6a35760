"""Small helpers shared by the core tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace.export import SpanExportResult

import traceduck as td
from _support import PYTHON, SRC, child_env, last_trace  # noqa: F401 - shared by this folder's tests

subprocess_env = child_env


def flush() -> None:
    assert td.flush(timeout_s=10), td.stats()


def user_metadata(info: td.TraceInfo) -> dict[str, Any]:
    """The trace's metadata without ``context`` (what configure(auto_context=True) adds)."""
    return {k: v for k, v in info.metadata.items() if k != "context"}


def span(trace: td.Trace, name: str) -> td.Span:
    """The one span of ``trace`` called ``name``."""
    found = [s for s in trace.spans if s.name == name]
    assert len(found) == 1, [s.name for s in trace.spans]
    return found[0]


def exception_event(span_: td.Span) -> dict[str, Any]:
    events = [e for e in span_.events if e["name"] == "exception"]
    assert len(events) == 1, span_.events
    return events[0]["attributes"]


def count(table: str, where: str = "") -> int:
    rows = td.sql(f"SELECT count(*) AS n FROM {table} {where}").to_pylist()
    return int(rows[0]["n"])


class KeepingExporter:
    """An exporter that takes ended spans, as traceduck's store exporter does, and keeps them."""

    takes_rows = True

    def __init__(self) -> None:
        self.items: list[Any] = []

    def export_rows(self, spans: Sequence[Any]) -> SpanExportResult:
        self.items.extend(spans)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        pass
