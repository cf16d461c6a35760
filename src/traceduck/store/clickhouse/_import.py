"""Import an export file (``_transfer``'s format, either engine's) into a ClickHouse store.

Without transactions: a file is read through once before anything is written, so a bad record
imports nothing. Then, per chunk, the new traces' spans, their tag history (the current tags
are derived from it, see ``_schema``), their metadata entries and last their trace rows are
inserted, one insert each, so a trace shows up whole. The history keeps its times and its
order; an imported row carries edit id 0 and its place in the trace's history, so an import
cut short and run again adds nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ... import _json
from ..._constants import DEFAULT_EXPERIMENT, DEFAULT_EXPERIMENT_ID
from ...errors import TraceduckError
from .._records import fill_empty_json
from .._tagrules import scope_value
from .._transfer import ImportResult, check_header, read_jsonl, read_parquet
from ._clock import stamp
from ._events import (
    METADATA_SCHEMA,
    TAG_EVENT_SCHEMA,
    exclusive_keys,
    holders,
    register,
    typed,
)
from ._experiments import ensure as ensure_experiments
from ._transfer import (
    LAYOUT,
    NESTED_FIELDS,
    RECORD_SCHEMA,
    SPAN_FIELDS,
    Progress,
)
from ._writer import TRACE_SCHEMA

if TYPE_CHECKING:
    from ._client import Connection
    from ._store import ClickHouseStore


__all__ = ["import_traces"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)
IMPORT_EDIT_ID = 0  # the edit id of imported history rows (edits get random 63-bit ids)


def import_traces(
    store: ClickHouseStore,
    path: str,
    fmt: str,
    *,
    progress: Progress | None = None,
    source: str = "api",
) -> ImportResult:
    """Add the traces of an export file (either engine's) to the store.

    Traces already in the store are skipped (counted in ``skipped``), never overwritten.
    Exclusive tag keys of the file are registered unless the store already defines them; an
    imported trace holding an exclusive tag whose scope already has a holder gives it up (a
    ``moved`` event in its history), so each scope keeps one holder, as on DuckDB. The events
    the import adds itself have ``source``.
    """
    conn = store.write_conn

    def read() -> tuple[dict[str, Any], int, Iterator[pa.Table]]:
        if fmt == "parquet":
            return read_parquet(path)
        return read_jsonl(path, RECORD_SCHEMA, LAYOUT)

    _, _, chunks = read()
    for table in chunks:  # read once before writing: a bad record imports nothing
        _conformed(table)
    header, total, chunks = read()
    check_header(path, header)
    known = {r[0] for r in conn.query("SELECT key FROM tag_keys")}
    for item in header.get("tag_keys") or []:
        if item["key"] not in known:
            register(conn, item["key"], bool(item.get("exclusive")), item.get("scope") or "name")
    exclusive = exclusive_keys(conn)
    imported = skipped = done = 0
    claimed: dict[tuple[str, str], str] = {}
    for table in chunks:
        added = _insert_chunk(conn, _conformed(table), exclusive, claimed, source)
        imported += added
        skipped += table.num_rows - added
        done += table.num_rows
        if progress is not None:
            progress(done, total)
    return ImportResult(imported, skipped)


def _conformed(table: pa.Table) -> pa.Table:
    """The chunk in ``RECORD_SCHEMA`` (columns missing from an older file are null)."""
    if "trace_id" not in table.column_names:
        raise TraceduckError("the file is not a traceduck export (no trace_id column)")
    arrays = []
    for field in RECORD_SCHEMA:
        if field.name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if field.name in NESTED_FIELDS:
            column = _conformed_list(field.name, column, field.type)
        try:
            arrays.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise TraceduckError(
                f"the file's {field.name!r} column does not fit the trace layout ({exc})"
            ) from None
    return pa.Table.from_arrays(arrays, schema=RECORD_SCHEMA)


def _conformed_list(name: str, column: pa.ChunkedArray, want: pa.DataType) -> pa.ChunkedArray:
    """A nested column with the fields of ``want`` (a field the file lacks is null)."""
    kind = column.type
    if not pa.types.is_list(kind) or not pa.types.is_struct(kind.value_type):
        raise TraceduckError(f"the file's {name!r} column is not a list of records")
    have = {kind.value_type.field(i).name for i in range(kind.value_type.num_fields)}
    if have == {f.name for f in want.value_type}:
        return column
    chunks = []
    for chunk in column.chunks:
        values = chunk.flatten()
        arrays = [
            values.field(f.name) if f.name in have else pa.nulls(len(values), f.type)
            for f in want.value_type
        ]
        items = pa.StructArray.from_arrays(arrays, fields=list(want.value_type))
        chunks.append(pa.ListArray.from_arrays(chunk.offsets, items, mask=chunk.is_null()))
    return pa.chunked_array(chunks)


def _insert_chunk(
    conn: Connection,
    table: pa.Table,
    exclusive: dict[str, str],
    claimed: dict[tuple[str, str], str],
    source: str,
) -> int:
    """Insert the chunk's new traces; returns how many."""
    ids = table.column("trace_id").to_pylist()
    # Traces stored, and what an import cut short left of others (their rows but no trace row).
    found: dict[str, set[str]] = {"traces": set(), "spans": set(), "events": set(),
                                  "metadata": set()}  # fmt: skip
    for part, tid in conn.query(
        "SELECT 'traces', trace_id FROM td_traces WHERE trace_id IN {ids:Array(String)} "
        "UNION ALL SELECT DISTINCT 'spans', trace_id FROM spans "
        "WHERE trace_id IN {ids:Array(String)} "
        "UNION ALL SELECT DISTINCT 'events', trace_id FROM td_tag_events "
        f"WHERE edit_id = {IMPORT_EDIT_ID} AND trace_id IN {{ids:Array(String)}} "
        "UNION ALL SELECT DISTINCT 'metadata', trace_id FROM td_metadata "
        f"WHERE edit_id = {IMPORT_EDIT_ID} AND trace_id IN {{ids:Array(String)}}",
        {"ids": [i for i in ids if i is not None]},
    ):
        found[part].add(tid)
    keep, seen = [], set(found["traces"])
    for tid in ids:
        keep.append(tid is not None and tid not in seen)
        seen.add(tid)
    table = table.filter(pa.array(keep, pa.bool_()))
    if table.num_rows == 0:
        return 0
    now = stamp()
    records = table.to_pylist()
    spans = _span_rows(table, found["spans"])
    if spans.num_rows:
        conn.insert_arrow("spans", spans)
    events = _event_rows(records, found["events"], exclusive, claimed, conn, now.version, source)
    if events.num_rows:
        conn.insert_arrow("td_tag_events", events)
    entries = _metadata_rows(records, found["metadata"], now.version, source)
    if entries.num_rows:
        conn.insert_arrow("td_metadata", entries)
    # Experiment ids are this store's own: the name says which experiment, the id follows.
    names = [r.get("experiment") or DEFAULT_EXPERIMENT for r in records]
    experiment_ids = ensure_experiments(conn, names)
    conn.insert_arrow("td_traces", _trace_rows(records, now.version, experiment_ids))
    return table.num_rows


def _span_rows(table: pa.Table, skip: set[str]) -> pa.Table:
    lists = table.column("spans").combine_chunks()
    counts = pc.fill_null(pc.list_value_length(lists), 0).to_pylist()
    trace_ids = [t for t, n in zip(table.column("trace_id").to_pylist(), counts) for _ in range(n)]
    items = lists.flatten()
    columns = {"trace_id": pa.array(trace_ids, pa.string())}
    for f in SPAN_FIELDS:
        columns[f.name] = items.field(f.name)
    spans = pa.table(columns)
    spans = fill_empty_json(spans, json_null=True)
    if skip:
        spans = spans.filter(pc.invert(pc.is_in(spans.column("trace_id"), pa.array(list(skip)))))
    return spans


def _nanos(ts: datetime | None, default: int) -> int:
    if ts is None:
        return default
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return (ts - _EPOCH) // _MICRO * 1000


def _event_rows(
    records: list[dict[str, Any]],
    skip: set[str],
    exclusive: dict[str, str],
    claimed: dict[tuple[str, str], str],
    conn: Connection,
    now: int,
    source: str,
) -> pa.Table:
    """Each new trace's tag history, then what makes its current tags the file's: a claim (or a
    ``moved`` event) for an exclusive tag, and an event where the history does not end in the
    tags the file gives (a hand-made file)."""
    cols: dict[str, list[Any]] = {name: [] for name in TAG_EVENT_SCHEMA.names}

    def add(tid: str, key: str, version: int, seq: int, kind: str, ts: Any, op: str,
            source: str, old: str | None, new: str | None, scope: str = "") -> None:  # fmt: skip
        value = typed(json.loads(new)) if new is not None else ("", "", 0.0, False)
        for name, v in (
            ("trace_id", tid), ("key", key), ("version", version), ("edit_id", IMPORT_EDIT_ID),
            ("seq", seq), ("kind", kind), ("ts", ts), ("operation", op), ("source", source),
            ("old_value", old), ("new_value", new), ("value_type", value[0]),
            ("value_str", value[1]), ("value_num", value[2]), ("value_bool", value[3]),
            ("claim_scope", scope),
        ):  # fmt: skip
            cols[name].append(v)

    now_ts = datetime.fromtimestamp(now / 1e9, timezone.utc)
    # exclusive tags: the newest imported trace of a free scope holds it (as on DuckDB)
    wanted: list[tuple[str, str]] = []
    for r in records:
        tags = json.loads(r["tags"]) if r["tags"] else {}
        wanted += [(k, scope_value(s, r["name"])) for k, s in exclusive.items() if k in tags]
    current = holders(conn, wanted)
    taken = {**current, **claimed}
    outcome: dict[tuple[str, str], str] = {}  # (trace, key) -> "claim" or "moved"
    for r in sorted(records, key=lambda r: -(r["timestamp_ms"] or 0)):
        tags = json.loads(r["tags"]) if r["tags"] else {}
        for key, scope in exclusive.items():
            if key not in tags:
                continue
            where = scope_value(scope, r["name"])
            if (key, where) in taken and taken[(key, where)] != r["trace_id"]:
                outcome[(r["trace_id"], key)] = "moved"
            else:
                outcome[(r["trace_id"], key)] = "claim"
                taken[(key, where)] = claimed[(key, where)] = r["trace_id"]

    for r in records:
        tid = r["trace_id"]
        if tid in skip:
            continue
        version = 0
        seq = 0
        folded: dict[str, str] = {}
        for e in r["tag_events"] or []:
            version = max(min(_nanos(e["ts"], now), now), version + 1)
            ts = e["ts"] if e["ts"] is not None else now_ts
            add(tid, e["key"], version, seq, "event", ts, e["operation"] or "set",
                e["source"] or "api", e["old_value"], e["new_value"])  # fmt: skip
            seq += 1
            if e["new_value"] is None:
                folded.pop(e["key"], None)
            else:
                folded[e["key"]] = _json.dumps(json.loads(e["new_value"]))
        tags = json.loads(r["tags"]) if r["tags"] else {}
        version = max(now, version + 1)
        for key in sorted(set(tags) | set(folded)):
            want = _json.dumps(tags[key]) if key in tags else None
            if folded.get(key) != want:
                op = "delete" if want is None else ("update" if key in folded else "set")
                add(tid, key, version, seq, "event", now_ts, op, source, folded.get(key), want)
                seq += 1
        for key in sorted(k for k in tags if (tid, k) in outcome):
            where = scope_value(exclusive[key], r["name"])
            if outcome[(tid, key)] == "claim":
                add(tid, key, version, seq, "claim", now_ts, "", source, None, None, where)
            else:
                add(tid, key, version, seq, "event", now_ts, "moved", source,
                    _json.dumps(tags[key]), None)  # fmt: skip
            seq += 1
    return pa.table(cols, schema=TAG_EVENT_SCHEMA)


def _metadata_rows(
    records: list[dict[str, Any]], skip: set[str], now: int, source: str
) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [] for name in METADATA_SCHEMA.names}
    now_ts = datetime.fromtimestamp(now / 1e9, timezone.utc)
    for r in records:
        tid = r["trace_id"]
        if tid in skip:
            continue
        version = 0
        latest: dict[str, str] = {}
        entries = [
            (e["ts"], e["key"], e["value"], e["source"]) for e in r["metadata_entries"] or []
        ]
        for _, key, value, _ in entries:
            latest[key] = _json.dumps(json.loads(value)) if value is not None else "null"
        shown = json.loads(r["metadata"]) if r["metadata"] else {}
        entries += [
            (now_ts, k, _json.dumps(v), source)
            for k, v in shown.items()
            if latest.get(k) != _json.dumps(v)
        ]  # a hand-made file whose entries do not end in its metadata
        for seq, (ts, key, value, source) in enumerate(entries):
            version = max(min(_nanos(ts, now), now), version + 1)
            for name, v in (
                ("trace_id", tid), ("key", key), ("version", version),
                ("edit_id", IMPORT_EDIT_ID), ("seq", seq), ("ts", ts or now_ts),
                ("value", value if value is not None else "null"), ("source", source or "api"),
            ):  # fmt: skip
                cols[name].append(v)
    return pa.table(cols, schema=METADATA_SCHEMA)


def _trace_rows(
    records: list[dict[str, Any]], version: int, experiment_ids: dict[str, str]
) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [] for name in TRACE_SCHEMA.names}
    for r in records:
        experiment = r.get("experiment") or DEFAULT_EXPERIMENT
        for name in TRACE_SCHEMA.names[:-1]:
            value = r.get(name)
            if name == "experiment":
                value = experiment
            elif name == "experiment_id":
                value = experiment_ids.get(experiment, DEFAULT_EXPERIMENT_ID)
            if name in ("timestamp_ms", "start_time_ns", "end_time_ns", "span_count"):
                value = value or 0
            elif name == "execution_time_ms":
                value = value or 0.0
            elif name == "has_root":
                value = bool(value)
            elif name == "status":
                value = value or "OK"
            cols[name].append(value)
        cols["version"].append(version)
    return pa.table(cols, schema=TRACE_SCHEMA)
