"""What the writers hand to the store: columnar span rows and per-trace rows with tags/metadata.

Both the in-process exporter and the OTLP collector build a ``WriteBatch``; the store writes it
in one transaction by Arrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

SPAN_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_id", pa.string()),
        ("name", pa.string()),
        ("span_type", pa.string()),
        ("status", pa.string()),
        ("status_message", pa.string()),
        ("start_time_ns", pa.int64()),
        ("end_time_ns", pa.int64()),
        ("duration_ms", pa.float64()),
        ("kind", pa.string()),
        ("service_name", pa.string()),
        ("attributes", pa.string()),
        ("inputs", pa.string()),
        ("outputs", pa.string()),
        ("events", pa.string()),
    ]
)
SPAN_COLUMNS = tuple(SPAN_SCHEMA.names)


class SpanRows:
    """Spans as columns (one Python list per column), turned into one Arrow table at write."""

    __slots__ = ("columns",)

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in SPAN_COLUMNS}

    def __len__(self) -> int:
        return len(self.columns["span_id"])

    def append(self, row: tuple[Any, ...]) -> None:
        """Append one span given as a tuple in SPAN_COLUMNS order."""
        for values, value in zip(self.columns.values(), row):
            values.append(value)

    def extend(self, other: SpanRows) -> None:
        for name, values in self.columns.items():
            values.extend(other.columns[name])

    def to_arrow(self) -> pa.Table:
        return pa.table(self.columns, schema=SPAN_SCHEMA)


@dataclass
class TraceRow:
    """A trace's summary as computed from the spans in one batch (its root, or a stand-in)."""

    trace_id: str
    name: str | None
    status: str
    status_message: str | None
    start_time_ns: int
    end_time_ns: int
    span_count: int
    service_name: str | None
    root_span_id: str | None
    has_root: bool
    from_root: bool = False  # made from the trace's local root (not a stand-in span)
    request_preview: str | None = None
    response_preview: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    # key -> scope ('name' or 'global') for tags set as exclusive while the trace ran
    exclusive: dict[str, str] = field(default_factory=dict)
    # (key, value, unix time ns) in the order they were logged
    metadata: list[tuple[str, Any, int]] = field(default_factory=list)

    @property
    def timestamp_ms(self) -> int:
        return self.start_time_ns // 1_000_000

    @property
    def execution_time_ms(self) -> float:
        return (self.end_time_ns - self.start_time_ns) / 1e6


@dataclass
class WriteBatch:
    spans: SpanRows
    traces: list[TraceRow]
    source: str = "live"

    def __len__(self) -> int:
        return len(self.spans)
