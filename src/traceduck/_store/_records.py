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
    """Spans as row tuples in SPAN_COLUMNS order, turned into one Arrow table at write.

    Rows are kept as the tuples the exporter builds (no per-span copying into columns); the
    single transpose happens in ``to_arrow``, in C, on the writer thread.
    """

    __slots__ = ("rows",)

    def __init__(self, rows: list[tuple[Any, ...]] | None = None) -> None:
        self.rows: list[tuple[Any, ...]] = rows if rows is not None else []

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, row: tuple[Any, ...]) -> None:
        """Append one span given as a tuple in SPAN_COLUMNS order."""
        self.rows.append(row)

    def extend(self, other: SpanRows) -> None:
        self.rows.extend(other.rows)

    def to_arrow(self) -> pa.Table:
        if not self.rows:
            return SPAN_SCHEMA.empty_table()
        columns = zip(*self.rows)
        return pa.Table.from_arrays(
            [pa.array(values, type=field.type) for values, field in zip(columns, SPAN_SCHEMA)],
            schema=SPAN_SCHEMA,
        )


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
