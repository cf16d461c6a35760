"""The batch writer on every engine: whole traces, late parts merged, resends harmless, live
tags and metadata with their history, exclusive live tags within one batch."""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path
from typing import Any

import pytest

import traceduck as td
from _engines import ENGINES, new_store_name, write_traces
from traceduck.errors import StorageError
from traceduck.store._records import SpanRows, TraceRow, WriteBatch

TID = "ab" * 16


def _store(engine: str, tmp_path: Path) -> Any:
    if engine != "server-path":
        return td.TraceStore(new_store_name(engine, tmp_path))
    # A ClickHouse server's path (clickhouse-connect for every statement, no chdb shortcut),
    # taken on chdb: these machines run no server.
    store = td.TraceStore(new_store_name("chdb", tmp_path))
    store.conn.chdb_api = False
    return store


@pytest.fixture(params=[*ENGINES, "server-path"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return _store(request.param, tmp_path)


def _span(span_id: str, parent: str | None, name: str, start: int, end: int) -> tuple[Any, ...]:
    return (TID, span_id, parent, name, "CHAIN", "OK", None, start, end, (end - start) / 1e6,
            "INTERNAL", "svc", '{"k": 1}', '{"q": "hi"}', "plain text", None)  # fmt: skip


def _row(name: str, start: int, end: int, count: int, *, root: bool, **kw: Any) -> TraceRow:
    return TraceRow(TID, name, "OK", None, start, end, count, "svc", "r" * 16 if root else None,
                    root, root, **kw)  # fmt: skip


def test_a_trace_in_two_batches_ends_complete_and_the_root_wins(store: Any) -> None:
    child = _span("c" * 16, "r" * 16, "child", 2_000, 3_000)
    store.write_batch(
        WriteBatch(SpanRows([child]), [_row("child", 2_000, 3_000, 1, root=False)], "collector")
    )
    root = _span("r" * 16, None, "root", 1_000, 9_000)
    batch = WriteBatch(
        SpanRows([root]),
        [_row("root", 1_000, 9_000, 1, root=True, tags={"env": "prod"})],
        "collector",
    )
    store.write_batch(batch)
    store.write_batch(batch)  # an OTLP retry: nothing is written twice
    trace = store.get_trace(TID)
    assert (trace.info.name, trace.info.span_count, trace.info.timestamp_ms) == ("root", 2, 0)
    assert [s.name for s in trace.spans] == ["root", "child"]
    assert trace.spans[0].outputs == "plain text"  # plain text from another SDK, kept as JSON
    assert trace.info.tags == {"env": "prod"}
    history = [(e.key, e.operation, e.source) for e in store.tag_history(TID)]
    assert history == [("env", "set", "collector")]
    assert store.count_traces() == 1


def test_live_metadata_latest_shown_history_kept(store: Any) -> None:
    root = _span("r" * 16, None, "root", 1_000, 9_000)
    metadata = [("eval", {"score": 1}, 5_000_000_000), ("eval", {"score": 2}, 6_000_000_000)]
    row = _row("root", 1_000, 9_000, 1, root=True, metadata=metadata)
    store.write_batch(WriteBatch(SpanRows([root]), [row]))
    assert store.get_trace(TID).info.metadata == {"eval": {"score": 2}}
    history = [(e.key, e.value, e.source) for e in store.metadata_history(TID)]
    assert history == [("eval", {"score": 1}, "live"), ("eval", {"score": 2}, "live")]
    assert store.metadata_history(TID)[0].time.year == 1970
    assert store.search_traces("metadata.eval.score = 2")[0].info.trace_id == TID


def test_exclusive_live_tags_the_last_root_to_end_holds_it(store: Any) -> None:
    spec = ("deploy", {"current": True}, {"current": "name"})
    first = write_traces(store, [spec, spec, ("other", {"current": True}, {"current": "name"})])
    second = write_traces(store, [spec])
    holders = {t.info.trace_id for t in store.search_traces("tags.current = true")}
    assert holders == {first[2], second[0]}
    moved = [e.operation for e in store.tag_history(first[1])]
    assert moved == ["set", "moved"]
    assert store.tag_history(first[0])[-1].operation == "moved"


def test_an_unreachable_clickhouse_server_is_a_storage_error_for_the_writer() -> None:
    from traceduck.store.clickhouse import ClickHouseWriter

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    writer = ClickHouseWriter(f"clickhouse://127.0.0.1:{port}/db")
    batch = WriteBatch(SpanRows([_span("r" * 16, None, "root", 1, 2)]), [])
    with pytest.raises(StorageError):
        writer.write_batch(batch, timeout_s=1)


def test_plain_text_among_thousands_of_json_inputs_is_kept_as_text(store: Any) -> None:
    # A large batch (the exporter's are thousands of spans): the values that are not JSON, and
    # only those, become JSON strings; JSON of any depth is kept as it is.
    odd = {7: "plain text", 1_234: "1,2", 2_345: "{not json}", 4_000: '"unterminated'}
    deep = '{"a": [{"b": {"c": [1, {"d": "e\\n"}]}}]}'
    spans, rows = [], []
    for i in range(5_000):
        tid, sid = f"{i:032x}", f"{i:016x}"
        value = odd.get(i, deep if i % 2 else f'{{"n": {i}}}')
        spans.append((tid, sid, None, "root", "CHAIN", "OK", None, 1_000 + i, 2_000 + i, 0.001,
                      "INTERNAL", "svc", "{}", value, value, None))  # fmt: skip
        rows.append(TraceRow(tid, "root", "OK", None, 1_000 + i, 2_000 + i, 1, "svc", sid,
                             True, True))  # fmt: skip
    store.write_batch(WriteBatch(SpanRows(spans), rows))
    for i, text in odd.items():
        span = store.get_trace(f"{i:032x}").spans[0]
        assert (span.inputs, span.outputs) == (text, text)
    assert store.get_trace(f"{1:032x}").spans[0].outputs == {"a": [{"b": {"c": [1, {"d": "e\n"}]}}]}
    assert store.get_trace(f"{2:032x}").spans[0].inputs == {"n": 2}


def _whole_traces(n: int, *, prefix: str = "", context: str | None = None) -> WriteBatch:
    """``n`` whole new one-span traces as the exporter queues them (``WriteBatch.plain``: row
    tuples, no TraceRow), each with one live metadata entry logged at a known time: ``run``,
    or ``context`` holding the JSON text ``context`` (one text object for every trace, as the
    exporter shares a process's automatic context)."""
    from traceduck.store._records import TRACE_COLUMNS, PlainTrace

    key, text = ("context", context) if context is not None else ("run", "7")
    latest = "{" + f'"{key}":{text}' + "}"
    spans, plain = [], []
    for i in range(n):
        tid, sid = f"{prefix}{i}" if prefix else f"{i:032x}", f"{i:016x}"
        span = (tid, sid, None, "whole", "CHAIN", "OK", None, 1_000 + i, 2_000 + i, 0.001,
                "INTERNAL", "svc", "{}", '{"q": 1}', '"a"', None)  # fmt: skip
        row = dict.fromkeys(TRACE_COLUMNS)
        row.update(trace_id=tid, name="whole", status="OK", timestamp_ms=0,
                   execution_time_ms=0.001, start_time_ns=1_000 + i, end_time_ns=2_000 + i,
                   span_count=1, service_name="svc", root_span_id=sid, has_root=True,
                   experiment_id="0", experiment="Default", tags="{}",
                   metadata=latest)  # fmt: skip
        logged = ((5_000_000_000 + i, tid, key, text),)
        trace: PlainTrace = ((span,), tuple(row[c] for c in TRACE_COLUMNS), logged, 100)
        spans.append(span)
        plain.append(trace)
    return WriteBatch(SpanRows(spans), [], "live", plain)


def _count(store: Any, table: str) -> int:
    return store.sql(f"SELECT count(*) AS n FROM {table}").column("n")[0].as_py()


@pytest.mark.parametrize("engine", [*ENGINES, "server-path"])
@pytest.mark.parametrize("ids", ["hex", "other"])
def test_a_batch_of_ten_thousand_whole_traces_written_twice_repeats_nothing(
    tmp_path: Path, ids: str, engine: str
) -> None:
    # The exporter writes a batch again when its first write failed part way or its outcome
    # is unknown. ClickHouse parses at most 256 KiB of SQL: the lookups of 10,000 ids (what
    # is stored already) must not be one statement of literals.
    store = _store(engine, tmp_path)
    batch = _whole_traces(10_000, prefix="" if ids == "hex" else "trace-")
    store.write_batch(batch)
    store.write_batch(batch)
    assert store.count_traces() == 10_000
    assert _count(store, "spans") == 10_000
    assert store.count_traces("span_count = 1") == 10_000
    assert _count(store, "trace_metadata") == 10_000
    assert store.count_traces("metadata.run = 7") == 10_000


def test_a_whole_trace_of_which_a_part_is_stored_is_merged(store: Any) -> None:
    # Another process (a downstream service, a collector) stored a part of the trace first:
    # the whole trace arriving later is merged with it, not written over it.
    batch = _whole_traces(3)
    tid = batch.plain[1][1][0]
    late = (tid, "e" * 16, f"{1:016x}", "downstream", "TOOL", "OK", None, 1_500, 1_600, 0.0001,
            "SERVER", "other", "{}", None, None, None)  # fmt: skip
    part = TraceRow(tid, "downstream", "OK", None, 1_500, 1_600, 1, "other", None, False)
    store.write_batch(WriteBatch(SpanRows([late]), [part], "collector"))
    store.write_batch(batch)
    trace = store.get_trace(tid)
    assert (trace.info.name, trace.info.span_count) == ("whole", 2)
    assert sorted(s.name for s in trace.spans) == ["downstream", "whole"]
    assert store.count_traces() == 3
    assert store.count_traces("span_count = 1") == 2


def _refused_trace_rows(conn: Any, write: Any) -> None:
    """``write()`` with the engine refusing trace rows (a CHECK constraint, for this call): it
    fails after the spans, tag events and metadata went in, as a failure part way would."""
    conn.command("ALTER TABLE td_traces ADD CONSTRAINT refuse CHECK span_count < 0")
    try:
        with pytest.raises(StorageError, match="refuse"):
            write()
    finally:
        conn.command("ALTER TABLE td_traces DROP CONSTRAINT refuse")


@pytest.mark.parametrize("engine", ["chdb", "server-path"])
def test_a_batch_that_failed_after_its_spans_is_written_whole_once(
    tmp_path: Path, engine: str
) -> None:
    # Without transactions a failure can leave a batch's spans and metadata stored and its
    # trace rows not (here the engine refuses the trace rows): written again, the traces
    # appear with each span and metadata entry once.
    store = _store(engine, tmp_path)
    batch = _whole_traces(500)
    store.write_batch(_whole_traces(1, prefix="f" * 31))  # the tables exist
    _refused_trace_rows(store.conn, lambda: store.write_batch(batch))
    assert _count(store, "spans") == 501  # the spans went in, the trace rows did not
    assert store.count_traces() == 1
    store.write_batch(batch)
    assert store.count_traces("span_count = 1") == 501
    assert _count(store, "spans") == 501
    assert _count(store, "trace_metadata") == 501


def _exporter_writer(engine: str, tmp_path: Path) -> Any:
    """The exporter's writer into a new chdb store (on a server's path, or chdb's own)."""
    from traceduck.store.clickhouse._writer import ClickHouseWriter

    writer = ClickHouseWriter(new_store_name("chdb", tmp_path))
    writer.connection().chdb_api = engine != "server-path"
    return writer


def _downstream_part(tid: str, parent: int, tags: dict[str, Any] | None = None) -> WriteBatch:
    """A downstream service's part of trace ``tid``: one span under span ``parent`` of the
    caller's, without the root, as the collector receives it."""
    span = (tid, "e" * 16, f"{parent:016x}", "downstream", "TOOL", "OK", None, 1_500, 1_600,
            0.0001, "SERVER", "other", "{}", None, None, None)  # fmt: skip
    row = TraceRow(tid, "downstream", "OK", None, 1_500, 1_600, 1, "other", None, False,
                   tags=tags or {})  # fmt: skip
    return WriteBatch(SpanRows([span]), [row], "otlp")


@pytest.mark.parametrize("engine", ["chdb", "server-path"])
def test_the_exporters_whole_trace_merges_with_a_part_another_writer_stored_first(
    tmp_path: Path, engine: str
) -> None:
    # The exporter looks up its own new traces only among the trace rows stored without their
    # root: the part a downstream service's writer stored first is one.
    from traceduck.store.clickhouse._writer import ClickHouseWriter

    writer = _exporter_writer(engine, tmp_path)
    batch = _whole_traces(300)
    tid = batch.plain[7][1][0]
    ClickHouseWriter(writer.name).write_batch(_downstream_part(tid, 7))
    writer.write_batch(batch)
    store = td.TraceStore(writer.name.display)
    trace = store.get_trace(tid)
    assert (trace.info.name, trace.info.span_count) == ("whole", 2)
    assert sorted(s.name for s in trace.spans) == ["downstream", "whole"]
    assert store.count_traces() == 300
    assert store.count_traces("span_count = 1") == 299


def _tagged_traces(n: int, *, first: int = 0) -> WriteBatch:
    """``n`` whole new one-span traces with live tags, as the exporter hands them on (a
    TraceRow each, its true root in the batch)."""
    spans, rows = [], []
    for i in range(first, first + n):
        tid, sid = f"{i:032x}", f"{i:016x}"
        spans.append((tid, sid, None, "tagged", "CHAIN", "OK", None, 1_000 + i, 2_000 + i, 0.001,
                      "INTERNAL", "svc", "{}", None, None, None))  # fmt: skip
        rows.append(TraceRow(tid, "tagged", "OK", None, 1_000 + i, 2_000 + i, 1, "svc", sid,
                             True, True, tags={"env": "prod", "n": i}))  # fmt: skip
    return WriteBatch(SpanRows(spans), rows, "live")


@pytest.mark.parametrize("engine", ["chdb", "server-path"])
def test_the_exporters_tagged_trace_merges_with_a_part_another_writer_stored_first(
    tmp_path: Path, engine: str
) -> None:
    from traceduck.store.clickhouse._writer import ClickHouseWriter

    writer = _exporter_writer(engine, tmp_path)
    batch = _tagged_traces(300)
    tid = batch.traces[7].trace_id
    part = _downstream_part(tid, 7, tags={"region": "eu", "env": "dev"})
    ClickHouseWriter(writer.name).write_batch(part)
    writer.write_batch(batch)
    store = td.TraceStore(writer.name.display)
    trace = store.get_trace(tid)
    assert (trace.info.name, trace.info.span_count) == ("tagged", 2)
    assert trace.info.tags == {"region": "eu", "env": "prod", "n": 7}
    assert [
        (e.key, e.old_value, e.new_value) for e in store.tag_history(tid) if e.key == "env"
    ] == [("env", None, "dev"), ("env", "dev", "prod")]
    assert store.count_traces("tags.env = 'prod'") == 300
    assert store.count_traces("span_count = 1") == 299


@pytest.mark.parametrize("engine", ["chdb", "server-path"])
@pytest.mark.parametrize("source", ["live", "otlp"])
@pytest.mark.parametrize("tagged", [False, True], ids=["metadata", "tags"])
def test_a_batch_the_writer_failed_after_its_spans_is_written_whole_once(
    tmp_path: Path, engine: str, source: str, tagged: bool
) -> None:
    # Its first write stored the spans, tag events and metadata, not the trace rows: written
    # again (after another batch), its traces are looked up in full (their spans are stored,
    # their rows not) and repeat nothing. The tracing path's batches (live), the collector's
    # (otlp).
    def traces(n: int, first: int) -> WriteBatch:
        if tagged:
            return _tagged_traces(n, first=first)
        return _whole_traces(n, prefix=f"{first:x}" if first else "")

    writer = _exporter_writer(engine, tmp_path)
    writer.write_batch(traces(1, 10**6))  # the tables exist
    batch = dataclasses.replace(traces(500, 0), source=source)
    _refused_trace_rows(writer.connection(), lambda: writer.write_batch(batch))
    writer.write_batch(traces(20, 2 * 10**6))  # another batch between the two
    writer.write_batch(batch)
    store = td.TraceStore(writer.name.display)
    assert store.count_traces() == 521
    assert store.count_traces("span_count = 1") == 521
    assert _count(store, "spans") == 521
    if tagged:
        assert store.count_traces("tags.env = 'prod'") == 521
        assert _count(store, "tag_events") == 2 * 521  # env and n, once each
    else:
        assert store.count_traces("metadata.run = 7") == 521
        assert _count(store, "trace_metadata") == 521


@pytest.mark.parametrize("engine", ["chdb", "server-path"])
@pytest.mark.parametrize("tagged", [False, True])
def test_a_resend_to_a_restarted_collector_after_a_write_that_failed_part_way_is_stored_once(
    tmp_path: Path, engine: str, tagged: bool
) -> None:
    # The collector's write stored the spans (and tag events, metadata), not the trace rows;
    # the client got 503 and resends, to the collector restarted meanwhile (or to another
    # replica on the same server): a writer that never saw the failure. The store's promise
    # ("a retried request is stored once") holds: nothing is stored twice.
    from traceduck.store.clickhouse._writer import ClickHouseWriter

    writer = _exporter_writer(engine, tmp_path)
    writer.write_batch(_whole_traces(1, prefix="f" * 31))  # the tables exist
    made = _tagged_traces(400) if tagged else _whole_traces(400)
    delivery = dataclasses.replace(made, source="otlp")
    _refused_trace_rows(writer.connection(), lambda: writer.write_batch(delivery))
    restarted = ClickHouseWriter(writer.name)
    restarted.connection().chdb_api = engine != "server-path"
    restarted.write_batch(delivery)
    store = td.TraceStore(writer.name.display)
    assert store.count_traces("span_count = 1") == 401
    assert _count(store, "spans") == 401
    assert _count(store, "trace_metadata") == (1 if tagged else 401)
    assert _count(store, "tag_events") == (800 if tagged else 0)


@pytest.mark.parametrize("engine", ["chdb", "server-path"])
def test_a_root_ended_on_both_sides_of_a_fork_is_stored_once(tmp_path: Path, engine: str) -> None:
    # A traced function forks and the child leaves by sys.exit(), which unwinds the parent's
    # spans there too: both processes end the same true root and write the trace, each with
    # its own writer into one ClickHouse server (here two writers in one process that forked).
    import os
    import time

    from traceduck.store.clickhouse._writer import ClickHouseWriter

    child = _exporter_writer(engine, tmp_path)
    parent = ClickHouseWriter(child.name)
    parent.connection().chdb_api = engine != "server-path"
    tid, start = "ab" * 16, time.time_ns()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    for _ in range(600):  # the child leaves at once; never wait for ever
        if os.waitpid(pid, os.WNOHANG)[0]:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)

    def span(sid: str, parent_id: str | None, name: str, at: int) -> tuple[Any, ...]:
        return (tid, sid, parent_id, name, "CHAIN", "OK", None, at, at + 10, 0.00001,
                "INTERNAL", "svc", "{}", None, None, None)  # fmt: skip

    def part(*spans: tuple[Any, ...]) -> WriteBatch:
        row = TraceRow(tid, "main", "OK", None, start, start + 10, len(spans), "svc", "m" * 16,
                       True, True)  # fmt: skip
        return WriteBatch(SpanRows(list(spans)), [row], "live")

    main = span("m" * 16, None, "main", start)
    child.write_batch(part(main, span("c" * 16, "m" * 16, "in-child", start + 2)))
    before, after = (span(c * 16, "m" * 16, c, start + 1) for c in ("b", "a"))
    parent.write_batch(part(before, main, after))
    trace = td.TraceStore(child.name.display).get_trace(tid)
    assert sorted(s.name for s in trace.spans) == ["a", "b", "in-child", "main"]
    assert (trace.info.name, trace.info.span_count) == ("main", 4)


@pytest.mark.parametrize("engine", ["chdb", "server-path"])
@pytest.mark.parametrize("ids", ["hex", "other"])
def test_the_exporters_ten_thousand_traces_find_parts_stored_first_in_any_id_set(
    tmp_path: Path, engine: str, ids: str
) -> None:
    # The lookup of trace rows without their root names 10,000 ids: on a server's path in
    # sets of literals (hexadecimal ids) or one parameter (others); a part stored first is
    # found in the first set and in the last.
    from traceduck.store.clickhouse._writer import ClickHouseWriter

    writer = _exporter_writer(engine, tmp_path)
    batch = _whole_traces(10_000, prefix="" if ids == "hex" else "trace-")
    first = ClickHouseWriter(writer.name)
    for i in (7, 9_007):
        first.write_batch(_downstream_part(batch.plain[i][1][0], i))
    writer.write_batch(batch)
    store = td.TraceStore(writer.name.display)
    assert store.count_traces("span_count = 2 AND name = 'whole'") == 2
    assert store.count_traces("span_count = 1") == 9_998


@pytest.mark.parametrize("engine", ["chdb", "server-path"])
def test_the_collectors_batch_delivered_twice_is_stored_once(tmp_path: Path, engine: str) -> None:
    # An OTLP client that timed out while the first delivery was being written sends it again:
    # the collector's writer finds its trace rows, and stores no span, tag or entry twice.
    writer = _exporter_writer(engine, tmp_path)
    for batch in (_whole_traces(300), _tagged_traces(200, first=10**6)):
        delivery = dataclasses.replace(batch, source="otlp")
        writer.write_batch(delivery)
        writer.write_batch(delivery)
    store = td.TraceStore(writer.name.display)
    assert store.count_traces("span_count = 1") == 500
    assert _count(store, "spans") == 500
    assert _count(store, "trace_metadata") == 300
    assert _count(store, "tag_events") == 400


@pytest.mark.parametrize("engine", ["chdb", "server-path"])
def test_a_lookup_that_fails_beside_a_large_batch_fails_the_write_and_stores_nothing(
    tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A large batch's lookup of what is stored runs in a thread of its own, beside the Arrow
    # conversion: its failure must still reach the exporter (which writes the batch again),
    # and no span may go in without the lookup's answer.
    from traceduck.store.clickhouse import _writer

    store = _store(engine, tmp_path)
    store.write_batch(_whole_traces(1, prefix="f" * 31))  # the tables exist

    def refuse(conn: Any, ids: list[str], *tables: Any) -> set[str]:
        raise StorageError(f"lookup of {len(ids)} ids refused")

    monkeypatch.setattr(_writer, "_stored_traces", refuse)
    with pytest.raises(StorageError, match="lookup of 2000 ids refused"):
        store.write_batch(_whole_traces(2_000))
    monkeypatch.undo()
    assert _count(store, "spans") == 1
    assert store.count_traces() == 1


def test_metadata_every_trace_of_a_batch_shares_is_stored_whole_for_each(store: Any) -> None:
    # The automatic context is one JSON text for every trace of a process; DuckDB's writer
    # reads such a text once per batch. Each trace still holds it, quotes and all.
    context = json.dumps({"user": "O'Brien", "path": "C:\\tmp\\x", "note": "it's " * 20})
    batch = _whole_traces(300, context=context)
    store.write_batch(batch)
    expected = json.loads(context)
    for tid in (batch.plain[0][1][0], batch.plain[299][1][0]):
        assert store.get_trace(tid).info.metadata == {"context": expected}
        assert [(e.key, e.value) for e in store.metadata_history(tid)] == [("context", expected)]
    assert store.count_traces("metadata.context.user = 'O''Brien'") == 300
    assert _count(store, "trace_metadata") == 300
