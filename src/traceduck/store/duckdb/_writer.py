"""Write a WriteBatch in one transaction, by Arrow: spans, trace rows, tags, metadata, history.

New traces (the common case) are plain Arrow inserts. A trace already in the store (late spans of
a long or distributed trace, or an OTLP retry) is merged: duplicate spans are skipped, the span
count recounted, the true root's fields win over a stand-in's, and tags/metadata are combined.
"""

from __future__ import annotations

from datetime import timezone
from operator import attrgetter
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ... import _json
from ..._constants import DEFAULT_EXPERIMENT, DEFAULT_EXPERIMENT_ID
from .._records import (
    EMPTY_JSON,
    SPAN_COLUMNS,
    TRACE_SCHEMA,
    TraceRow,
    WriteBatch,
    combine_parts,
    merge_trace,
    rows_to_numpy,
)
from .._tagrules import apply, scope_value, set_changes
from . import _experiments, _tags
from ._connection import Database

_TRACE_SCHEMA = TRACE_SCHEMA
_TRACE_COLUMNS = tuple(_TRACE_SCHEMA.names)
# A new trace without tags or metadata (most of them): its row straight from the TraceRow,
# then its experiment (id, name) and the empty tags and metadata.
_PLAIN_TRACE = attrgetter(*_TRACE_COLUMNS[:-4])
_NO_LABELS = ("{}", "{}")
_DEFAULT_EXPERIMENT = (DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT)
# Inputs/outputs that arrived as span attributes from another SDK may be plain text: kept when
# they are JSON, stored as a JSON string otherwise (checked here, vectorised, not per span).
_SPAN_SELECT = ", ".join(
    f"CASE WHEN b.{c} IS NULL THEN NULL ELSE COALESCE(TRY_CAST(b.{c} AS JSON), to_json(b.{c})) END"
    if c in ("inputs", "outputs")
    else f"COALESCE(b.{c}, '{EMPTY_JSON[c]}')"  # a hand-made batch's None, as ClickHouse stores it
    if c in EMPTY_JSON
    else f"b.{c}"
    for c in SPAN_COLUMNS
)
_METADATA_SCHEMA = pa.schema(
    [
        ("ts", pa.int64()),  # unix ns
        ("trace_id", pa.string()),
        ("key", pa.string()),
        ("value", pa.string()),
        ("source", pa.string()),
    ]
)


def write_batch(db: Database, batch: WriteBatch, *, timeout_s: float | None = None) -> None:
    """Write every span and trace of ``batch`` atomically (all or nothing).

    A batch of whole traces (each with its local root) is written as new: looking its ids up
    first costs a scan of ``traces.trace_id`` (~40 ms per 1,000 ids on 1M traces), while the
    primary key refuses a trace that is already stored. Then (another process wrote part of
    it, or a resent request) the transaction is rolled back and the batch merged instead.
    """
    if not batch.traces and not batch.plain and not len(batch.spans):
        return
    rows = combine_parts(batch.traces)
    if all(row.from_root for row in rows.values()) and not any(
        plain[1][0] in rows for plain in batch.plain
    ):
        try:
            with db.lease(write=True, timeout_s=timeout_s) as cur:
                _Transaction(cur).write(batch, rows, merge=False)
            return
        except duckdb.ConstraintException:
            pass  # a trace of the batch is stored already: merge it below
    batch = batch.expanded()
    rows = combine_parts(batch.traces)
    with db.lease(write=True, timeout_s=timeout_s) as cur:
        _Transaction(cur).write(batch, rows, merge=True)


# What a statement reads by name: an Arrow table, or a dict of NumPy arrays (``rows_to_numpy``).
Table = pa.Table | dict[str, np.ndarray]


def _ids(trace_ids: list[str]) -> dict[str, np.ndarray]:
    return {"trace_id": np.array(trace_ids, dtype=object)}


class _Transaction:
    """One write transaction in as few calls into DuckDB as the batch allows.

    Each call costs the writer thread several waits for the GIL (DuckDB's Python client
    releases it and takes it back between a statement's steps); beside a busy Python thread
    each wait lasts up to the interpreter's switch interval (5 ms). So BEGIN goes out with the
    first statement, COMMIT with the last, and the inserts read their Arrow tables without a
    register/unregister call apiece: DuckDB's replacement scan finds a table name it does not
    know among the local variables of the Python function that calls ``execute`` (``run``).
    A new batch without tags is one call.
    """

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.cur = cur
        self.begun = False

    def begin(self) -> duckdb.DuckDBPyConnection:
        """The cursor, inside the transaction (for statements that need their own call)."""
        self.run([])
        return self.cur

    def run(
        self,
        statements: list[str],
        *,
        commit: bool = False,
        _td_spans: Table | None = None,
        _td_traces: Table | None = None,
        _td_events: Table | None = None,
        _td_metadata: Table | None = None,
        _td_existing: Table | None = None,
        _td_updates: Table | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run ``statements`` (reading the tables passed by name) in one call; the last one's
        rows. ``commit`` ends the transaction with them."""
        sql = list(statements)
        if not self.begun:
            sql.insert(0, "BEGIN TRANSACTION")
            self.begun = True
        if commit:
            sql.append("COMMIT")
        if not sql:
            return []
        result = self.cur.execute(";\n".join(sql))
        return [] if commit else result.fetchall()

    def _existing(self, trace_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Stored rows of those of ``trace_ids`` already in the store."""
        found = self.run(
            [
                f"SELECT {', '.join(_TRACE_COLUMNS)} FROM traces "
                "WHERE trace_id IN (SELECT trace_id FROM _td_existing)"
            ],
            _td_existing=_ids(trace_ids),
        )
        return {r[0]: dict(zip(_TRACE_COLUMNS, r)) for r in found}

    def _stored_entries(self, trace_ids: list[str]) -> set[tuple[str, str, str, int]]:
        """(trace id, key, value, unix µs) of the live metadata entries stored for
        ``trace_ids``: a batch written again (a retry, an OTLP resend) logs none twice."""
        found = self.run(
            [
                "SELECT trace_id, key, value, epoch_us(ts) FROM trace_metadata "
                "WHERE trace_id IN (SELECT trace_id FROM _td_existing) AND source != 'api'"
            ],
            _td_existing=_ids(trace_ids),
        )
        return {(t, k, v, us) for t, k, v, us in found}

    def rollback(self) -> None:
        try:
            self.cur.execute("ROLLBACK")
        except duckdb.Error:
            pass  # none under way (the failed call never began one, or COMMIT ended it)

    def write(self, batch: WriteBatch, rows: dict[str, TraceRow], *, merge: bool) -> None:
        try:
            self._write(batch, rows, merge)
        except BaseException:
            self.rollback()
            raise

    def _write(self, batch: WriteBatch, rows: dict[str, TraceRow], merge: bool) -> None:
        """Write ``batch`` (its traces combined into ``rows``); ``merge``: some of those traces
        may be stored already, and are merged with the new parts."""
        now = _tags.utcnow()
        spans = batch.spans.to_numpy()
        existing = self._existing(list(rows)) if merge else {}
        counts: dict[str, int] = {}
        inserts: list[str] = []
        if existing:
            stored = _ids(list(existing))
            self.run(
                [
                    f"INSERT INTO spans SELECT {_SPAN_SELECT} FROM _td_spans b "
                    "WHERE b.trace_id NOT IN (SELECT trace_id FROM _td_existing) "
                    "OR NOT EXISTS (SELECT 1 FROM spans s "
                    "WHERE s.trace_id = b.trace_id AND s.span_id = b.span_id)"
                ],
                _td_spans=spans,
                _td_existing=stored,
            )
            counts = dict(
                self.run(
                    [
                        "SELECT trace_id, count(*) FROM spans WHERE trace_id IN "
                        "(SELECT trace_id FROM _td_existing) GROUP BY trace_id"
                    ],
                    _td_existing=stored,
                )
            )
        else:
            inserts.append(f"INSERT INTO spans SELECT {_SPAN_SELECT} FROM _td_spans b")

        stored_entries = self._stored_entries(list(existing)) if existing else set()
        tagged = any(t.tags for t in rows.values())
        exclusive = _tags.exclusive_keys(self.begin()) if tagged else {}
        named = [r.experiment for r in rows.values() if r.experiment]
        experiment_ids = _experiments.ensure(self.begin(), named, now) if named else {}

        def experiment_of(row: TraceRow) -> tuple[str, str]:
            name = row.experiment
            return (experiment_ids[name], name) if name else _DEFAULT_EXPERIMENT

        new_rows: list[tuple[Any, ...]] = []
        updated: list[tuple[Any, ...]] = []  # stored traces, merged with this batch's parts
        events: list[_tags.Event] = []
        metadata: list[tuple[Any, ...]] = []
        claims: list[tuple[int, str, str, str | None, str]] = []
        encode = _SharedEncoder()
        now_ns = int(now.replace(tzinfo=timezone.utc).timestamp() * 1e9)
        source = batch.source
        for _, trace, logged_rows, _ in batch.plain:  # whole new traces, already rows
            new_rows.append(trace)
            for ts_ns, *entry in logged_rows:
                metadata.append((ts_ns or now_ns, *entry, source))
        for trace_id, row in rows.items():
            old = existing.get(trace_id)
            if old is None and not row.tags:  # a new trace: its row straight from the TraceRow
                if not row.metadata:
                    new_rows.append(_PLAIN_TRACE(row) + experiment_of(row) + _NO_LABELS)
                    continue
                latest: dict[str, Any] = {}
                for key, value, ts_ns in row.metadata:
                    latest[key] = value
                    metadata.append((ts_ns or now_ns, trace_id, key, encode(value), batch.source))
                new_rows.append(
                    (*_PLAIN_TRACE(row), *experiment_of(row), "{}", encode.object(latest))
                )
                continue
            old_tags = (_json.loads(old["tags"]) or {}) if old else {}
            changes = set_changes(old_tags, row.tags)
            tags = apply(dict(old_tags), changes)
            events += _tags.events_of(now, trace_id, changes, batch.source)
            for change in changes:
                scope = row.exclusive.get(change.key) or exclusive.get(change.key)
                if scope:
                    claims.append((row.end_time_ns, trace_id, change.key, row.name, scope))
            latest = (_json.loads(old["metadata"]) or {}) if old else {}
            for key, value, ts_ns in row.metadata:
                latest[key] = value
                text = encode(value)
                if ts_ns and (trace_id, key, text, ts_ns // 1000) in stored_entries:
                    continue  # a batch written again: this entry is stored already
                metadata.append((ts_ns or now_ns, trace_id, key, text, batch.source))
            merged = merge_trace(
                row,
                old,
                counts.get(trace_id, old["span_count"] if old else row.span_count),
                experiment_of(row),
            )
            merged["tags"] = _json.dumps(tags) if tags else "{}"
            merged["metadata"] = encode.object(latest)
            (new_rows if old is None else updated).append(tuple(merged[c] for c in _TRACE_COLUMNS))
        if updated:  # before the claims below, which read and change stored rows
            self.run([_UPDATE_SQL], _td_updates=rows_to_numpy(updated, _TRACE_SCHEMA))

        traces = None
        if new_rows:
            traces = rows_to_numpy(new_rows, _TRACE_SCHEMA)
            shared = _shared_text(traces, "metadata")
            inserts.append(
                f"INSERT INTO traces ({', '.join(_TRACE_COLUMNS)}) SELECT "
                f"{_TRACE_SELECT_HEAD}, COALESCE(metadata::JSON, {shared}::JSON) FROM _td_traces"
                if shared
                else f"INSERT INTO traces ({', '.join(_TRACE_COLUMNS)}) SELECT * FROM _td_traces"
            )
        if claims:
            # An exclusive claim may take the tag from a trace of this very batch: the traces
            # are stored first. The trace whose root ended last wins, also within one batch.
            self.run(inserts, _td_spans=spans, _td_traces=traces)
            inserts = []
            cur = self.begin()
            ordered = []
            for _, trace_id, key, name, scope in sorted(claims):
                if key not in exclusive:  # set exclusive once: it stays exclusive (in tag_keys)
                    _tags.register(cur, key, True, scope)
                    exclusive[key] = scope
                ordered.append((trace_id, key, scope_value(exclusive[key], name)))
            events.extend(_tags.claim_all(cur, ordered, source=batch.source, now=now))
        history = None
        if events:
            history = _tags.events_table(events)
            inserts.append(_tags.INSERT_EVENTS_SQL)
        logged = None
        if metadata:
            logged = rows_to_numpy(metadata, _METADATA_SCHEMA)
            shared = _shared_text(logged, "value")
            value = f"COALESCE(value::JSON, {shared}::JSON)" if shared else "value"
            inserts.append(
                "INSERT INTO trace_metadata (ts, trace_id, key, value, source) "
                f"SELECT make_timestamp(ts // 1000), trace_id, key, {value}, source "
                "FROM _td_metadata"
            )
        self.run(
            inserts,
            commit=True,
            _td_spans=spans,
            _td_traces=traces,
            _td_events=history,
            _td_metadata=logged,
        )


# Every trace column but the last (metadata), in order, for an insert that fills that one in.
assert _TRACE_COLUMNS[-1] == "metadata"
_TRACE_SELECT_HEAD = ", ".join(_TRACE_COLUMNS[:-1])
# From this long on, a JSON text that most rows of a column share is read and checked once.
_SHARED_FROM = 64


def _shared_text(columns: dict[str, np.ndarray], name: str) -> str | None:
    """The JSON text most rows of column ``name`` hold, as a SQL literal, with those rows set
    to NULL; None (nothing changed) when there is no such text.

    The automatic context is the same metadata for every trace of a process: a row each in
    ``trace_metadata`` and in ``traces.metadata``. DuckDB copies a text value out of Python and
    checks that it is JSON row by row (about 1 us a trace for those two columns); a NULL in
    its place with the text once in the statement (``COALESCE``) costs neither. No stored
    value is NULL: traceduck's JSON null is the text 'null'."""
    column = columns[name]
    if len(column) < 2:
        return None
    first = column[0]
    if not isinstance(first, str) or len(first) < _SHARED_FROM:
        return None
    same = column == first
    if int(same.sum()) * 2 < len(column):
        return None
    column[same] = None
    return "'" + first.replace("'", "''") + "'"


class _SharedEncoder:
    """JSON text of metadata values, each object encoded once per batch: the automatic context
    is one dict shared by every trace of a process (and encoding it is most of a plain trace's
    write cost). The batch's rows keep the objects alive, so their ids are not reused."""

    def __init__(self) -> None:
        self._done: dict[int, str] = {}
        self._keys: dict[str, str] = {}  # key -> its JSON text and the colon

    def __call__(self, value: Any) -> str:
        if not isinstance(value, (dict, list)):
            return _json.dumps(value)
        text = self._done.get(id(value))
        if text is None:
            text = self._done[id(value)] = _json.dumps(value)
        return text

    def object(self, values: dict[str, Any]) -> str:
        """``_json.dumps(values)``, from the values' own encodings."""
        if not values:
            return "{}"
        keys = self._keys
        parts = []
        for key, value in values.items():
            prefix = keys.get(key)
            if prefix is None:
                prefix = keys[key] = _json.dumps(key) + ":"
            parts.append(prefix + self(value))
        return "{" + ",".join(parts) + "}"


# Stored traces merged with a batch's parts, all in one statement (one per trace took ~1 ms).
_UPDATE_SQL = (
    "UPDATE traces SET "
    + ", ".join(f"{c} = u.{c}" for c in _TRACE_COLUMNS if c != "trace_id")
    + " FROM _td_updates u WHERE traces.trace_id = u.trace_id"
)
