"""Write a WriteBatch into ClickHouse by Arrow: spans, live tags, metadata, then the traces.

The same records and the same semantics as the DuckDB writer (``store/duckdb/_writer.py``): whole
traces are inserted; a trace already stored (late spans of a long or distributed trace, an
OTLP retry) is merged (duplicate spans skipped, span count recounted, the true root's fields
win over a stand-in's, tags and metadata combined); live tags make history events; exclusive
live tags move to the trace whose root ended last, also within one batch.

Without transactions, the order of the inserts is what keeps readers right: spans, tag events
(one insert for the batch) and metadata (one insert) go first and the trace rows last, and
every read goes through the trace rows, so a trace shows up with its spans, tags and metadata
already there. A batch that fails part way is written again by the exporter: spans already
stored are skipped then, and tag events repeat nothing the trace already has.
"""

from __future__ import annotations

import json
import operator
import os
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from ... import _json
from ..._constants import DEFAULT_EXPERIMENT, DEFAULT_EXPERIMENT_ID
from ...errors import StorageError
from .._records import TRACE_SCHEMA as _BASE_SCHEMA
from .._records import (
    TraceRow,
    WriteBatch,
    combine_parts,
    fill_empty_json,
    merge_trace,
    plain_trace_row,
    rows_to_arrow,
)
from .._sink import TurnError
from .._tagrules import apply, removal, scope_value, set_changes
from ._client import Connection, connect
from ._clock import stamp
from ._events import EditRows, MetadataRows, exclusive_keys, holders, load_tags, register
from ._experiments import ensure as ensure_experiments
from ._schema import migrate

__all__ = ["BusyError", "ClickHouseWriter", "write_batch"]

# The trace rows as DuckDB's, but tags and metadata (events here), and a version.
TRACE_SCHEMA = pa.schema([*list(_BASE_SCHEMA)[:-2], ("version", pa.uint64())])
TRACE_COLUMNS = tuple(TRACE_SCHEMA.names[:-1])
# A TraceRow's own columns of those (all but its experiment's id and name).
_ROW_INFO = operator.attrgetter(*TRACE_COLUMNS[:-2])
_START = TRACE_COLUMNS.index("start_time_ns")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


class BusyError(TurnError):
    """The server is busy (too many parts, a timeout, memory): retry the batch later."""


# Where ``write_batch`` looks for what is stored of a batch's traces (see there).
Lookup = Literal["full", "roots"]

# Trace ids kept from failed writes (a few MB); more, and every later write is looked up in full.
_SUSPECTS_MAX = 100_000

# When this process last forked (unix ns; 0: never), in the parent and the child alike. A
# root started before it may be ended on both sides (a child that leaves by sys.exit() unwinds
# its parent's spans): each process then writes that trace with its true root.
_FORKED_AT_NS = [0]


def _forking() -> None:
    _FORKED_AT_NS[0] = time.time_ns()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_forking)

_BUSY_CODES = ("Code: 252.", "Code: 159.", "Code: 241.", "Code: 202.", "Code: 209.", "Code: 210.")


class ClickHouseWriter:
    """The exporter's handle on a ClickHouse store: ``write_batch(batch, timeout_s)``.

    Raises ``StorageError`` when the store cannot be used (unreachable, bad credentials, a
    chdb directory held by another process) and ``BusyError`` (a StorageError) when the server
    asks to be tried again later; anything else is a problem with the batch's data.
    """

    def __init__(self, name: Any) -> None:
        from .._names import parse_store_name

        self.name = parse_store_name(name)
        self._conn: Connection | None = None
        # Trace ids of writes that failed, perhaps part way (spans stored, trace rows not):
        # written again, they are looked up in full. Past _SUSPECTS_MAX, every write is.
        self._suspects: set[str] = set()
        self._always_full = False

    def connection(self) -> Connection:
        if self._conn is None:
            conn = connect(self.name)
            migrate(conn)
            self._conn = conn
        return self._conn

    def write_batch(self, batch: WriteBatch, timeout_s: float | None = None) -> None:
        """Write ``batch``, looking up what is stored of its traces as narrowly as is safe
        (``write_batch``'s ``lookup``): ``roots`` for the tracing path's batches (source
        ``live``); ``full`` for any other (a collector's batch may be a client's resend of what
        another writer, the collector before a restart or another replica, stored part way:
        only spans show it), and for a batch with a trace that may have been written before
        (``_written_before``)."""
        ids = [trace[0] for _, trace, _, _ in batch.plain]
        ids += [row.trace_id for row in batch.traces]
        live = batch.source == "live"
        lookup: Lookup = "roots" if live and not self._written_before(batch, ids) else "full"
        try:
            write_batch(self.connection(), batch, lookup=lookup)
        except BaseException as exc:
            self._suspect(ids)
            busy = any(code in str(exc) for code in _BUSY_CODES)
            if isinstance(exc, StorageError) and not isinstance(exc, BusyError) and busy:
                raise BusyError(str(exc)) from exc
            raise
        if self._suspects:
            self._suspects.difference_update(ids)

    def _written_before(self, batch: WriteBatch, ids: list[str]) -> bool:
        """Whether a trace of ``batch`` may have been written, perhaps part way, before: by
        this writer (a write that failed: it writes the batch again, or its traces one by one)
        or by the other side of a fork (a root started before it, which a child that leaves by
        sys.exit() ends too: parent and child each write that trace with its root)."""
        if self._always_full or (self._suspects and not self._suspects.isdisjoint(ids)):
            return True
        forked = _FORKED_AT_NS[0]
        return bool(forked) and _started_by(batch) <= forked

    def _suspect(self, ids: list[str]) -> None:
        self._suspects.update(ids)
        if len(self._suspects) > _SUSPECTS_MAX:
            self._suspects.clear()
            self._always_full = True  # safe, and only slower


def write_batch(conn: Connection, batch: WriteBatch, *, lookup: Lookup = "full") -> None:
    """Write every span and trace of ``batch`` (see the module docstring for the order).

    One lookup first: which of the batch's traces have something stored already (a late part, a
    part another process or host wrote, or this batch written before in part); in a large
    batch it runs beside the spans' conversion to Arrow (``_Lookup``).
    Only those are merged and have their stored spans, trace rows and metadata looked up: a
    trace with nothing stored can have nothing of this batch stored either, since spans go in
    before anything else of a trace. The rest, most traces, are written as they came; a whole
    new trace (``batch.plain``) straight from its row, without a TraceRow.

    ``lookup`` says where something of a trace can be stored, and so what is read (times for
    1,730 new ids in stores of 1,000,000 and 10,000,000 traces: ``profile_chdb_lookup.py``):

    - ``full``: anywhere. The ids of the spans and trace rows stored are read (93 ms, 251 ms:
      both tables mark every 1,024 rows, so a lookup reads at most that many small granules).
    - ``roots``: the batch is the tracing path's, written for the first time, and the traces
      whose true root is in it are this process's own (not a root started before a fork,
      which the child may end too). The caller writes each batch whole or, where a write
      failed (perhaps part way: spans stored, trace rows not), looks its traces up in ``full``
      when it writes them again, so the spans of a trace without a row are no other batch's of
      its: a part without the root is looked up in the trace rows only (37 ms, 138 ms). The
      root of the others was made here, so the only parts of such a trace stored can be parts
      without it (spans of a downstream service or a forked child, or the trace's own spans
      released early to bound memory): for them only the trace rows without their root are
      read, the rest passed over on one byte each (4 ms, 4 ms, in stores whose every trace
      has its root: each row stored without it is read).

    A concurrent writer's part of the same trace, stored between this lookup and these
    inserts, is not merged in any of them (ClickHouse has no transactions)."""
    if lookup not in ("full", "roots"):
        raise ValueError(f"lookup must be full or roots, not {lookup!r}")
    if not batch.traces and not batch.plain and not len(batch.spans):
        return
    plain = batch.plain
    if plain and _plain_collide(batch):
        batch, plain = batch.expanded(), []  # parts of one trace: combined below
    rows = combine_parts(batch.traces)
    plain_ids = [trace[0] for _, trace, _, _ in plain]
    if lookup == "roots":
        roots = plain_ids + [tid for tid, row in rows.items() if row.has_root]
        parts = [tid for tid, row in rows.items() if not row.has_root]
        found = _Lookup(conn, parts, roots, _ROWS)
    else:
        found = _Lookup(conn, [*rows, *plain_ids], [], _SPANS_AND_ROWS)
    # while the engine looks up, in another thread; a hand-made batch's None attributes would
    # be '' in the String column: {} as the exporter writes them (and DuckDB stores them)
    spans = fill_empty_json(batch.spans.to_arrow())
    stored = found.result()
    if stored and plain:  # whole traces of which something is stored: merged as TraceRows
        for _, trace, logged, _ in plain:
            if trace[0] in stored:
                rows[trace[0]] = plain_trace_row(trace, logged)
        plain = [p for p in plain if p[1][0] not in stored]
    ids = list(rows)
    existing = _existing(conn, [t for t in ids if t in stored]) if stored else {}
    added: dict[str, int] = {}
    if stored:
        stored_spans = _stored_span_ids(conn, sorted(stored))
        trace_ids = spans.column("trace_id").to_pylist()
        if stored_spans:
            keep = [
                (t, s) not in stored_spans
                for t, s in zip(trace_ids, spans.column("span_id").to_pylist())
            ]
            spans = spans.filter(pa.array(keep, pa.bool_()))
            trace_ids = [t for t, k in zip(trace_ids, keep) if k]
        for tid in trace_ids:
            if tid in existing:
                added[tid] = added.get(tid, 0) + 1

    when = stamp()
    edit = EditRows(batch.source, when)
    metadata = MetadataRows(batch.source, when)
    tagged = any(r.tags for r in rows.values())
    exclusive = exclusive_keys(conn) if tagged else {}
    # Tags stored of the traces with something stored (a retried batch repeats no event); a
    # trace with nothing stored has no tag stored either: its events go in after its spans.
    old_tags = load_tags(conn, [t for t in ids if t in stored]) if tagged and stored else {}
    claims: list[tuple[int, str, str, str | None, str]] = []
    for tid, row in rows.items():
        changes = set_changes(old_tags.get(tid, {}), row.tags)
        edit.changes(tid, changes)
        for change in changes:
            scope = row.exclusive.get(change.key) or exclusive.get(change.key)
            if scope:
                claims.append((row.end_time_ns, tid, change.key, row.name, scope))
        for key, value, ts_ns in row.metadata:
            metadata.add(tid, key, _json.dumps(value), _logged_at(ts_ns))
    for _, _, logged, _ in plain:
        for ts_ns, tid, key, text in logged:
            metadata.add(tid, key, text, _logged_at(ts_ns))
    if claims:
        _claim(conn, edit, claims, exclusive, rows)
    if stored and metadata.rows:
        metadata.rows = _not_stored(conn, metadata.rows, stored)

    named = [r.experiment for r in rows.values() if r.experiment]
    experiment_ids = ensure_experiments(conn, named) if named else {}
    version = when.version
    trace_rows = [(*trace[:-2], version) for _, trace, _, _ in plain]
    for tid, row in rows.items():
        name = row.experiment or DEFAULT_EXPERIMENT
        experiment = (experiment_ids.get(name, DEFAULT_EXPERIMENT_ID), name)
        old = existing.get(tid)
        if old is None:  # most: nothing stored to merge with (merge_trace's row, in C)
            trace_rows.append((*_ROW_INFO(row), *experiment, version))
            continue
        merged = merge_trace(row, old, old["span_count"] + added.get(tid, 0), experiment)
        trace_rows.append((*(merged[c] for c in TRACE_COLUMNS), version))
    # Inputs/outputs that are not JSON become JSON strings: on chdb by the engine as it
    # inserts them (no Python per value); on a server here.
    inserts = [("spans", spans if conn.chdb_api else _fix_json_columns(spans))]
    if edit.rows:
        inserts.append(("td_tag_events", edit.table()))
    if metadata.rows:
        inserts.append(("td_metadata", metadata.table()))
    inserts.append(("td_traces", rows_to_arrow(trace_rows, TRACE_SCHEMA)))
    conn.insert_arrow_tables(inserts, {"spans": _AS_JSON} if conn.chdb_api else None)  # in order


def _started_by(batch: WriteBatch) -> int:
    """When the earliest trace of ``batch`` started (unix ns)."""
    starts = [trace[_START] for _, trace, _, _ in batch.plain]
    starts += [row.start_time_ns for row in batch.traces]
    return min(starts, default=0)


def _plain_collide(batch: WriteBatch) -> bool:
    """Whether a whole trace of ``batch.plain`` shares its id with another part of the batch
    (the exporter makes none such; a batch built by hand may)."""
    ids = [trace[0] for _, trace, _, _ in batch.plain]
    parts = {row.trace_id for row in batch.traces}
    return len(set(ids) | parts) < len(ids) + len(parts)


def _logged_at(ts_ns: int) -> datetime | None:
    """A metadata entry's time (unix ns; 0: not known, the write's time is used)."""
    return _EPOCH + timedelta(microseconds=ts_ns // 1000) if ts_ns else None


def _claim(
    conn: Connection,
    edit: EditRows,
    claims: list[tuple[int, str, str, str | None, str]],
    exclusive: dict[str, str],
    rows: dict[str, TraceRow],
) -> None:
    """Exclusive live tags: in order of root end time, each claim takes the key from the holder
    before it (stored, or earlier in this batch); the holder loses the tag (``moved``)."""
    for _, _, key, _, scope in claims:
        if key not in exclusive:  # set exclusive once: it stays exclusive
            register(conn, key, True, scope)
            exclusive[key] = scope
    pairs = [(key, scope_value(exclusive[key], name)) for _, _, key, name, _ in claims]
    holder = holders(conn, pairs)
    held_tags = load_tags(conn, sorted(set(holder.values()) - set(rows)))
    batch_tags = {tid: dict(r.tags) for tid, r in rows.items()}
    for _, tid, key, name, _ in sorted(claims):
        where = scope_value(exclusive[key], name)
        old = holder.get((key, where))
        if old is not None and old != tid:
            tags = batch_tags.get(old) if old in batch_tags else held_tags.get(old, {})
            if tags is not None and key in tags:
                moved = [removal(tags, key, "moved")]
                edit.changes(old, moved)
                apply(tags, moved)
        edit.claim(tid, key, where)
        holder[(key, where)] = tid


def _not_stored(
    conn: Connection, entries: list[tuple[str, str, str, Any]], stored: set[str]
) -> list[Any]:
    """The live metadata entries not stored yet: a batch written again after a failure (its
    entries carry the times they were logged) adds none twice. Only traces in ``stored`` (with
    spans or a row stored) can have entries stored: spans go in before metadata."""
    ids = sorted({e[0] for e in entries if e[0] in stored})
    if not ids:
        return entries
    query = (
        "SELECT trace_id, key, value, toUnixTimestamp64Micro(ts) FROM td_metadata "
        "WHERE trace_id IN {ids} AND source != 'api'"
    )
    seen = {tuple(r) for r in _id_rows(conn, query, ids)}
    return [
        e for e in entries
        if e[3] is None or (e[0], e[1], e[2], (e[3] - _EPOCH) // _MICRO) not in seen
    ]  # fmt: skip


_HEX_ID = re.compile(r"[0-9a-f]{1,64}")


# Ids written out as literals per statement: ClickHouse parses at most ``max_query_size``
# bytes of SQL (256 KiB by default), and a statement may name the set twice (34 bytes an id).
_LITERAL_IDS = 3_000


def _id_sets(ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(SQL of a set of ids, its parameters) for each part of ``ids``. Hexadecimal ids (the
    OpenTelemetry SDK's, and the collector's) are written out as literals, which need no
    quoting, ``_LITERAL_IDS`` at a time: binding thousands of them as a parameter costs
    clickhouse-connect ~8 µs an id of Python (it escapes each character), some 80 ms of the
    writer thread's GIL for a batch of 10,000 traces. Other ids go in one parameter."""
    if not all(_HEX_ID.fullmatch(t) for t in ids):
        return [("{ids:Array(String)}", {"ids": ids})]
    return [
        ("('" + "', '".join(ids[i : i + _LITERAL_IDS]) + "')", {})
        for i in range(0, len(ids), _LITERAL_IDS)
    ]


def _id_rows(conn: Connection, query: str, ids: list[str]) -> list[tuple[Any, ...]]:
    """The rows of ``query`` over ``ids``, one statement per part of them (``_id_sets``; none
    for no ids); ``{ids}`` in ``query`` stands for the part's set."""
    return [
        r for chosen, params in _id_sets(ids) for r in conn.query(query.format(ids=chosen), params)
    ]


_SPANS_AND_ROWS = ("spans", "td_traces")
_ROWS = ("td_traces",)


def _stored_traces(
    conn: Connection, ids: list[str], tables: tuple[str, ...] = _SPANS_AND_ROWS
) -> set[str]:
    """Those of ``ids`` with a row stored in any of ``tables`` (one query; usually none). The
    trace rows count too: a trace part way through a delete (spans gone first) has its row
    still."""
    if not ids:
        return set()
    if conn.chdb_api and all(_HEX_ID.fullmatch(t) for t in ids):
        return conn.stored_trace_ids(tables, ids)
    query = " UNION DISTINCT ".join(
        f"SELECT trace_id FROM {table} WHERE trace_id IN {{ids}}" for table in tables
    )
    return {r[0] for r in _id_rows(conn, query, ids)}


def _rootless_traces(conn: Connection, ids: list[str]) -> set[str]:
    """Those of ``ids`` with a trace row stored that lacks the root (a part stored without it):
    the whole traces stored are passed over on their ``has_root`` column, their ids not read."""
    if not ids:
        return set()
    if conn.chdb_api and all(_HEX_ID.fullmatch(t) for t in ids):
        return conn.stored_trace_ids(("td_traces",), ids, condition="NOT has_root")
    query = "SELECT trace_id FROM td_traces WHERE NOT has_root AND trace_id IN {ids}"
    return {r[0] for r in _id_rows(conn, query, ids)}


class _Lookup:
    """What is stored of a batch's traces: ``_stored_traces`` of ``ids`` in ``tables`` and
    ``_rootless_traces`` of ``roots`` (see ``write_batch``), run in a thread of its own for a
    large batch: the engine looks them up (without the GIL) while the writer turns the spans
    into Arrow."""

    def __init__(
        self, conn: Connection, ids: list[str], roots: list[str], tables: tuple[str, ...]
    ) -> None:
        self._found: set[str] | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        args = (conn, ids, roots, tables)
        if len(ids) + len(roots) < _LOOKUP_THREAD_FROM:
            self._run(*args)
            if self._error is not None:
                raise self._error
            return
        self._thread = threading.Thread(
            target=self._run, args=args, name="traceduck-lookup", daemon=True
        )
        self._thread.start()

    def _run(
        self, conn: Connection, ids: list[str], roots: list[str], tables: tuple[str, ...]
    ) -> None:
        try:
            self._found = _stored_traces(conn, ids, tables) | _rootless_traces(conn, roots)
        except BaseException as exc:
            self._error = exc

    def result(self) -> set[str]:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._found is not None
        return self._found


# From this many traces on, the lookup runs beside the Arrow conversion (a thread costs ~0.1 ms).
_LOOKUP_THREAD_FROM = 256


def _existing(conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    query = f"SELECT {', '.join(TRACE_COLUMNS)} FROM td_traces FINAL WHERE trace_id IN {{ids}}"
    return {r[0]: dict(zip(TRACE_COLUMNS, r)) for r in _id_rows(conn, query, ids)}


def _stored_span_ids(conn: Connection, ids: list[str]) -> set[tuple[str, str]]:
    query = "SELECT trace_id, span_id FROM spans WHERE trace_id IN {ids}"
    return {(r[0], r[1]) for r in _id_rows(conn, query, ids)}


# The engine's JSON check (what ``_fix_json_columns`` does in Python): NULL stays NULL.
_AS_JSON = {
    c: f"if({c} IS NULL OR isValidJSON({c}), {c}, toJSONString({c}))" for c in ("inputs", "outputs")
}


def _json_pattern() -> str:
    """A regular expression that only valid JSON text matches: a scalar, or objects and arrays
    nested up to three deep (the JSON grammar, written out to that depth). What traceduck's
    own spans carry matches it; anything else is checked by the JSON parser."""
    ws = r"[ \t\n\r]*"
    string = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
    number = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
    scalar = f"(?:{string}|{number}|true|false|null)"
    value = scalar
    for _ in range(3):
        member = f"{string}{ws}:{ws}{value}{ws}"
        obj = r"\{" + ws + f"(?:{member}(?:,{ws}{member})*)?" + r"\}"
        arr = r"\[" + ws + f"(?:{value}{ws}(?:,{ws}{value}{ws})*)?" + r"\]"
        value = f"(?:{scalar}|{obj}|{arr})"
    return f"^{ws}{value}{ws}$"


_SURELY_JSON = _json_pattern()


# From this many spans on, the pattern sorts the values first: compiling it costs pyarrow
# ~10 ms a call, the JSON parser ~3 µs a value (each column of 30,000 spans: 12 ms, not 60).
_PATTERN_FROM = 4_096


def _fix_json_columns(spans: pa.Table) -> pa.Table:
    """Inputs/outputs that arrived as plain text from another SDK become JSON strings (as the
    DuckDB writer does): the columns hold JSON text only. In a large batch, the values the
    pattern proves JSON are not parsed one by one in Python."""
    for name in ("inputs", "outputs"):
        column = spans.column(name)
        if len(column) >= _PATTERN_FROM:
            sure = pc.fill_null(pc.match_substring_regex(column, _SURELY_JSON), True)
            if pc.all(sure).as_py():
                continue
            doubtful = pc.invert(sure).to_pylist()
        else:
            doubtful = [True] * len(column)
        values = column.to_pylist()
        fixed = [
            _json.dumps(v) if doubt and v is not None and not _is_json(v) else v
            for v, doubt in zip(values, doubtful, strict=True)
        ]
        if fixed != values:
            index = spans.schema.get_field_index(name)
            spans = spans.set_column(index, name, pa.array(fixed, pa.string()))
    return spans


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
