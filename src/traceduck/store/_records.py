"""What the writers hand to the store: columnar span rows and per-trace rows with tags/metadata.

Both the in-process exporter and the OTLP collector build a ``WriteBatch``; the store writes it
in one transaction by Arrow.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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

# What a span without attributes or events holds, as the exporter and the collector write it:
# an import or a hand-made batch that leaves them out (or JSON null) gets the same, so that
# ``spans.attributes`` reads ``{}`` and never NULL on every engine.
EMPTY_JSON = {"attributes": "{}", "events": "[]"}


def fill_empty_json(spans: pa.Table, json_null: bool = False) -> pa.Table:
    """``spans`` with missing attributes and events as ``{}`` and ``[]`` (``EMPTY_JSON``);
    ``json_null``: JSON null text too (an import's ``"attributes": null``)."""
    for name, empty in EMPTY_JSON.items():
        if name not in spans.column_names:
            continue
        column = spans.column(name)
        if json_null and len(column):
            column = pc.if_else(pc.equal(column, "null"), pa.scalar(None, column.type), column)
        if column.null_count:
            index = spans.schema.get_field_index(name)
            spans = spans.set_column(index, name, pc.fill_null(column, empty))
    return spans


TRACE_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("name", pa.string()),
        ("status", pa.string()),
        ("status_message", pa.string()),
        ("timestamp_ms", pa.int64()),
        ("execution_time_ms", pa.float64()),
        ("start_time_ns", pa.int64()),
        ("end_time_ns", pa.int64()),
        ("span_count", pa.int64()),
        ("service_name", pa.string()),
        ("root_span_id", pa.string()),
        ("has_root", pa.bool_()),
        ("request_preview", pa.string()),
        ("response_preview", pa.string()),
        ("experiment_id", pa.string()),
        ("experiment", pa.string()),
        ("tags", pa.string()),
        ("metadata", pa.string()),
    ]
)
TRACE_COLUMNS = tuple(TRACE_SCHEMA.names)

# A whole new trace without tags in the Default experiment (most traces), as plain tuples of
# plain values: Python's cyclic GC stops tracking such tuples, so thousands of them waiting for
# the writer cost no collection time (a dataclass per trace made every full collection walk
# them all).
# (span rows, trace row in TRACE_COLUMNS order with tags and metadata as JSON text,
#  metadata rows (unix ns or 0 for "now", trace_id, key, JSON text), estimated bytes)
PlainTrace = tuple[tuple[tuple[Any, ...], ...], tuple[Any, ...], tuple[tuple[Any, ...], ...], int]


def rows_to_arrow(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    """Row tuples (in ``schema``'s column order) as one Arrow table.

    pyarrow reads the tuples as structs, in C, a quarter faster than building a Python list
    per column first and converting those."""
    return pa.Table.from_struct_array(pa.array(rows, type=pa.struct(list(schema))))


_NUMPY_DTYPES = {
    pa.string(): object,
    pa.int64(): np.int64,
    pa.float64(): np.float64,
    pa.bool_(): bool,
    pa.timestamp("us"): "datetime64[us]",  # from naive UTC datetimes
}


def rows_to_numpy(rows: list[tuple[Any, ...]], schema: pa.Schema) -> dict[str, np.ndarray]:
    """Row tuples (in ``schema``'s column order) as a dict of NumPy arrays, one per column,
    which DuckDB reads as a table (text as object arrays of str and None).

    The DuckDB writer uses this rather than Arrow: pyarrow imports pandas on its first
    conversion of Python values (a second of one core, and tens of thousands of objects for
    every later full GC collection, in every traced process); NumPy does not."""
    n = len(rows)
    return {
        f.name: np.fromiter(map(itemgetter(i), rows), dtype=_NUMPY_DTYPES[f.type], count=n)
        for i, f in enumerate(schema)
    }


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

    def to_numpy(self) -> dict[str, np.ndarray]:
        return rows_to_numpy(self.rows, SPAN_SCHEMA)

    def to_arrow(self) -> pa.Table:
        if not self.rows:
            return SPAN_SCHEMA.empty_table()
        return rows_to_arrow(self.rows, SPAN_SCHEMA)


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
    experiment: str | None = None  # the experiment's name; None: Default

    @property
    def timestamp_ms(self) -> int:
        return self.start_time_ns // 1_000_000

    @property
    def execution_time_ms(self) -> float:
        return (self.end_time_ns - self.start_time_ns) / 1e6


@dataclass
class WriteBatch:
    """Spans and traces to write in one transaction. ``traces`` describe traces (or parts of
    them) to insert or merge; ``plain`` whole new traces already in row form (their spans are
    in ``spans`` too)."""

    spans: SpanRows
    traces: list[TraceRow]
    source: str = "live"
    plain: list[PlainTrace] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.spans)

    def expanded(self) -> WriteBatch:
        """The same batch with its plain traces as TraceRows (for merging, and for writers
        that take TraceRows only)."""
        if not self.plain:
            return self
        rows = [plain_trace_row(trace, metadata) for _, trace, metadata, _ in self.plain]
        return WriteBatch(self.spans, [*self.traces, *rows], self.source)


def plain_trace_row(trace: tuple[Any, ...], metadata: tuple[tuple[Any, ...], ...]) -> TraceRow:
    """The TraceRow of a plain trace's row and metadata rows."""
    values = dict(zip(TRACE_COLUMNS, trace))
    return TraceRow(
        trace_id=values["trace_id"],
        name=values["name"],
        status=values["status"],
        status_message=values["status_message"],
        start_time_ns=values["start_time_ns"],
        end_time_ns=values["end_time_ns"],
        span_count=values["span_count"],
        service_name=values["service_name"],
        root_span_id=values["root_span_id"],
        has_root=True,
        from_root=True,
        request_preview=values["request_preview"],
        response_preview=values["response_preview"],
        metadata=[(key, json.loads(text), ts_ns) for ts_ns, _, key, text in metadata],
        experiment=values["experiment"] if values["experiment_id"] != "0" else None,
    )


def combine_parts(traces: list[TraceRow]) -> dict[str, TraceRow]:
    """One row per trace id: parts of one trace in the same batch (a span that ended after its
    root, or a long trace written in parts) become one row. The batch's own rows are left as
    they are (a batch that could not be written is retried, and must combine the same again)."""
    rows: dict[str, TraceRow] = {}
    copies: set[int] = set()  # ids of the rows made here, which may be changed
    for row in traces:
        seen = rows.get(row.trace_id)
        if seen is None:
            rows[row.trace_id] = row
            continue
        first, second = (seen, row) if _rank(seen) >= _rank(row) else (row, seen)
        if id(first) not in copies:
            first = dataclasses.replace(first)
            copies.add(id(first))
        first.span_count += second.span_count
        first.tags = {**second.tags, **first.tags}
        first.exclusive = {**second.exclusive, **first.exclusive}
        first.metadata = second.metadata + first.metadata
        rows[row.trace_id] = first
    return rows


def _rank(row: TraceRow) -> tuple[bool, bool, int]:
    """Which part describes the trace: the true root, then a local root, then the earliest."""
    return (row.has_root, row.from_root, -row.start_time_ns)


def merge_trace(
    row: TraceRow, old: dict[str, Any] | None, span_count: int, experiment: tuple[str, str]
) -> dict[str, Any]:
    """The trace columns (TRACE_COLUMNS but tags and metadata) of ``row`` merged into the
    stored ``old`` ones: the stored row stays when it describes the true root already, or
    started earlier than this stand-in. ``span_count``: the merged trace's (the engine counts);
    ``experiment``: the (id, name) ``row`` is filed under."""
    new = {column: getattr(row, column) for column in TRACE_COLUMNS[:-4]}
    new["experiment_id"], new["experiment"] = experiment
    if old is None:
        return new
    keep_old = old["has_root"] or (not row.has_root and old["start_time_ns"] <= row.start_time_ns)
    merged = dict(old) if keep_old else new
    merged["span_count"] = span_count
    return merged
