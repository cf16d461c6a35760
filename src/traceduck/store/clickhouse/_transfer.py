"""The export file format of a ClickHouse store, and the export into it.

The file is the one the DuckDB store writes and reads (``traceduck/_transfer.py``): one record
per trace with its ``spans``, ``tag_events`` and ``metadata_entries`` as nested lists and the
exclusive tag keys in the header, so a file moves traces between the engines either way (the
migration from a DuckDB file to a cluster is ``export`` there and ``import`` here).

The import is ``_import``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ... import _json
from .. import _transfer as _files
from .._transfer import (
    FORMAT_VERSION,
    Layout,
)
from ._events import (
    load_metadata,
    load_tags,
)

if TYPE_CHECKING:
    from ._client import Connection
    from ._store import ClickHouseStore

__all__ = ["RECORD_SCHEMA", "export_traces", "records"]

Progress = Callable[[int, int], None]

_TRACE_FIELDS = [
    pa.field("trace_id", pa.string()),
    pa.field("name", pa.string()),
    pa.field("status", pa.string()),
    pa.field("status_message", pa.string()),
    pa.field("timestamp_ms", pa.int64()),
    pa.field("execution_time_ms", pa.float64()),
    pa.field("start_time_ns", pa.int64()),
    pa.field("end_time_ns", pa.int64()),
    pa.field("span_count", pa.int32()),
    pa.field("service_name", pa.string()),
    pa.field("root_span_id", pa.string()),
    pa.field("has_root", pa.bool_()),
    pa.field("request_preview", pa.string()),
    pa.field("response_preview", pa.string()),
    pa.field("tags", pa.string()),
    pa.field("metadata", pa.string()),
    pa.field("experiment_id", pa.string()),
    pa.field("experiment", pa.string()),
]
SPAN_FIELDS = [
    pa.field("span_id", pa.string()),
    pa.field("parent_id", pa.string()),
    pa.field("name", pa.string()),
    pa.field("span_type", pa.string()),
    pa.field("status", pa.string()),
    pa.field("status_message", pa.string()),
    pa.field("start_time_ns", pa.int64()),
    pa.field("end_time_ns", pa.int64()),
    pa.field("duration_ms", pa.float64()),
    pa.field("kind", pa.string()),
    pa.field("service_name", pa.string()),
    pa.field("attributes", pa.string()),
    pa.field("inputs", pa.string()),
    pa.field("outputs", pa.string()),
    pa.field("events", pa.string()),
]
EVENT_FIELDS = [
    pa.field("ts", pa.timestamp("us")),
    pa.field("key", pa.string()),
    pa.field("old_value", pa.string()),
    pa.field("new_value", pa.string()),
    pa.field("operation", pa.string()),
    pa.field("source", pa.string()),
]
ENTRY_FIELDS = [
    pa.field("ts", pa.timestamp("us")),
    pa.field("key", pa.string()),
    pa.field("value", pa.string()),
    pa.field("source", pa.string()),
]
NESTED_FIELDS = {"spans": SPAN_FIELDS, "tag_events": EVENT_FIELDS, "metadata_entries": ENTRY_FIELDS}


def _list_of(fields: list[pa.Field]) -> pa.DataType:
    return pa.list_(pa.field("l", pa.struct(fields)))  # "l": the DuckDB export's item name


# The record of one trace: the DuckDB store's export layout, field for field (a test keeps the
# two the same), so files written by either engine import into either.
RECORD_SCHEMA = pa.schema(
    _TRACE_FIELDS + [pa.field(name, _list_of(f)) for name, f in NESTED_FIELDS.items()]
)
LAYOUT = Layout(
    columns={
        "traces": [f.name for f in _TRACE_FIELDS],
        "spans": ["trace_id", *(f.name for f in SPAN_FIELDS)],
        "tag_events": ["event_id", "trace_id", *(f.name for f in EVENT_FIELDS)],
        "trace_metadata": ["entry_id", "trace_id", *(f.name for f in ENTRY_FIELDS)],
    },
    json={
        "traces": {"tags", "metadata"},
        "spans": {"attributes", "inputs", "outputs", "events"},
        "tag_events": {"old_value", "new_value"},
        "trace_metadata": {"value"},
    },
)
_INFO_COLUMNS = [f.name for f in _TRACE_FIELDS if f.name not in ("tags", "metadata")]


# -- export -------------------------------------------------------------------------------------


def export_traces(
    store: ClickHouseStore,
    path: str,
    filter_string: str | None = None,
    *,
    progress: Progress | None = None,
) -> int:
    """Write the traces matching the filter to ``path`` (.parquet or .jsonl), oldest first;
    returns how many. The file is written next to ``path`` and renamed into place."""
    from ...query import compile_filter

    runner = store.runner
    conn = store.conn
    where, params = compile_filter(filter_string, runner)
    ids = [
        r[0]
        for r in runner.rows(
            f"SELECT t.trace_id FROM {runner.dialect.traces_from} WHERE {where} "
            "ORDER BY t.timestamp_ms, t.trace_id",
            params,
            filter_string or "",
        )
    ]
    header = {
        "traceduck_export": FORMAT_VERSION,
        "tag_keys": [
            {"key": k, "exclusive": bool(e), "scope": s}
            for k, e, s in conn.query("SELECT key, exclusive, scope FROM tag_keys ORDER BY key")
        ],
    }
    return _files.write_export(
        path, header, ids, lambda chunk: records(conn, chunk), LAYOUT, progress
    )


def records(conn: Connection, ids: list[str]) -> pa.Table:
    """One record per trace id (in the order given), in ``RECORD_SCHEMA``."""
    if not ids:
        return RECORD_SCHEMA.empty_table()
    wanted = pa.array(ids, pa.string())
    traces = conn.query_arrow(
        f"SELECT {', '.join(_INFO_COLUMNS)} FROM td_traces FINAL "
        "WHERE trace_id IN {ids:Array(String)}",
        {"ids": ids},
    )
    traces = _in_order(traces, wanted)
    found = traces.column("trace_id").to_pylist()
    tags = load_tags(conn, found)
    metadata = load_metadata(conn, found)
    columns: dict[str, Any] = {name: traces.column(name) for name in _INFO_COLUMNS}
    columns["tags"] = pa.array([_json.dumps(tags.get(t, {})) for t in found], pa.string())
    columns["metadata"] = pa.array([_json.dumps(metadata.get(t, {})) for t in found], pa.string())
    found_ids = pa.array(found, pa.string())
    nested = {
        "spans": (
            f"SELECT trace_id, {', '.join(f.name for f in SPAN_FIELDS)} FROM spans "
            "WHERE trace_id IN {ids:Array(String)} ORDER BY trace_id, start_time_ns, span_id"
        ),
        "tag_events": (
            f"SELECT trace_id, {', '.join(f.name for f in EVENT_FIELDS)} FROM td_tag_events "
            "WHERE kind = 'event' AND trace_id IN {ids:Array(String)} "
            "ORDER BY trace_id, version, edit_id, seq"
        ),
        "metadata_entries": (
            f"SELECT trace_id, {', '.join(f.name for f in ENTRY_FIELDS)} FROM td_metadata "
            "WHERE trace_id IN {ids:Array(String)} ORDER BY trace_id, version, edit_id, seq"
        ),
    }
    for name, query in nested.items():
        rows = conn.query_arrow(query, {"ids": found})
        columns[name] = _grouped(rows, found_ids, NESTED_FIELDS[name])
    table = pa.table(columns)
    return pa.Table.from_arrays(
        [table.column(f.name).cast(f.type) for f in RECORD_SCHEMA], schema=RECORD_SCHEMA
    )


def _in_order(table: pa.Table, ids: pa.Array) -> pa.Table:
    """The rows of ``table`` in the order of ``ids`` (ids not found are left out)."""
    position = pc.index_in(table.column("trace_id"), value_set=ids)
    return table.take(pc.sort_indices(position))


def _grouped(rows: pa.Table, ids: pa.Array, fields: list[pa.Field]) -> pa.Array:
    """A list per id of ``rows`` (sorted by trace id, each trace's rows in order) as structs."""
    position = pc.index_in(rows.column("trace_id"), value_set=ids)
    rows = rows.take(pc.sort_indices(position))  # a stable sort: each trace keeps its order
    counts = [0] * len(ids)
    for i in pc.index_in(rows.column("trace_id"), value_set=ids).to_pylist():
        counts[i] += 1
    offsets = [0]
    for n in counts:
        offsets.append(offsets[-1] + n)
    items = pa.StructArray.from_arrays(
        [rows.column(f.name).combine_chunks().cast(f.type) for f in fields], fields=fields
    )
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), items, type=_list_of(fields))
