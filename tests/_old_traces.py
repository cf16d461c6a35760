"""Traces that started at a chosen time, written through the real tracing path (an
OpenTelemetry span with an explicit start time under traceduck's provider): for deletion by age,
prune and retention."""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace as otel_trace

import traceduck as td

HOUR_MS = 3600 * 1000


def trace_at(
    name: str,
    start_ms: float,
    *,
    tags: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    children: int = 1,
) -> str:
    """One trace (a root and ``children`` child spans) whose root started at ``start_ms``;
    returns its id. traceduck must be configured; call ``td.flush()`` before reading."""
    tracer = otel_trace.get_tracer("traceduck-tests")
    start = int(start_ms * 1_000_000)
    with tracer.start_as_current_span(name, start_time=start, end_on_exit=False) as root:
        if tags or metadata:
            td.update_current_trace(tags=tags, metadata=metadata)
        for i in range(children):
            with tracer.start_as_current_span(
                f"{name}-step{i}", start_time=start + (i + 1) * 1_000_000, end_on_exit=False
            ) as child:
                child.end(end_time=start + (i + 2) * 1_000_000)
        root.end(end_time=start + (children + 2) * 1_000_000)
    return format(root.get_span_context().trace_id, "032x")


def hours_ago(hours: float) -> float:
    return time.time() * 1000 - hours * HOUR_MS
