"""Tracing never breaks the app: a store locked by another process, an unwritable path, and a
bounded queue while the store is unusable."""

from __future__ import annotations

import ast
import os
import selectors
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import traceduck as td

from ._helpers import PYTHON, count, subprocess_env

_HOLD_LOCK = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS holder_was_here (x INTEGER)")
print("LOCKED", flush=True)
sys.stdin.read()  # hold the file until the test closes our stdin (or dies)
con.close()
"""


class LockHolder:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=15)


@contextmanager
def locked_by_another_process(path: Path) -> Iterator[LockHolder]:
    """A child process holds ``path`` open with DuckDB until released (killed in any case)."""
    proc = subprocess.Popen(
        [PYTHON, "-c", _HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    holder = LockHolder(proc)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=30):
                pytest.fail("the lock-holding process did not start within 30 s")
        line = proc.stdout.readline()
        assert line.strip() == "LOCKED", (line, proc.stderr.read() if proc.poll() else "")
        yield holder
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=15)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()


@td.trace
def double(i: int) -> int:
    return i * 2


@td.trace
def request(i: int) -> int:
    td.update_current_trace(tags={"i": i})
    return double(i) + 1


def test_store_locked_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "locked.duckdb"
    with locked_by_another_process(path) as holder:
        started = time.monotonic()
        td.configure(db=str(path))
        assert time.monotonic() - started < 2

        assert [request(i) for i in range(20)] == [i * 2 + 1 for i in range(20)]

        started = time.monotonic()
        assert td.flush(timeout_s=1) is False
        assert time.monotonic() - started < 3
        stats = td.stats()
        assert "lock" in (stats["last_error"] or "").lower()
        assert stats["written_traces"] == 0
        assert stats["dropped_traces"] == 0

        assert request(100) == 201  # still tracing while locked
        holder.release()

    assert td.flush(timeout_s=10) is True
    assert count("traces") == 21
    assert count("spans") == 42
    assert count("trace_tags") == 21
    assert td.stats()["last_error"] is None
    assert td.stats()["written_traces"] == 21
    # the other process's own work is intact
    assert td.sql("SELECT count(*) AS n FROM holder_was_here").to_pylist() == [{"n": 0}]


@pytest.mark.parametrize("where", ["missing directory", "path is a directory"])
def test_unwritable_path_leaves_the_app_unaffected(tmp_path: Path, where: str) -> None:
    if where == "missing directory":
        path = tmp_path / "no" / "such" / "dir" / "t.duckdb"
    else:
        path = tmp_path / "a_directory"
        path.mkdir()
    started = time.monotonic()
    td.configure(db=str(path))
    assert time.monotonic() - started < 2

    assert [request(i) for i in range(10)] == [i * 2 + 1 for i in range(10)]
    with td.start_span("block") as s:
        s.set_outputs("x")

    started = time.monotonic()
    assert td.flush(timeout_s=10) is False
    assert time.monotonic() - started < 5
    error = td.stats()["last_error"]
    assert error and str(path) in error
    if where == "missing directory":
        assert "does not exist" in error
        assert not (tmp_path / "no").exists()
    else:
        assert path.is_dir() and os.listdir(path) == []
    store = td.TraceStore(path)
    if where == "missing directory":
        # nothing to read yet: an empty store; changing it is what fails, clearly
        assert store.sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 0}]
        with pytest.raises(td.StorageError, match="does not exist"):
            store.set_trace_tag("0" * 32, "k", "v")
    else:
        with pytest.raises(td.StorageError):
            store.get_trace("abc")
    assert td.stats()["written_traces"] == 0


def test_store_becomes_writable_later_and_queued_traces_are_written(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    path = folder / "t.duckdb"
    td.configure(db=str(path))
    assert [double(i) for i in range(5)] == [0, 2, 4, 6, 8]
    assert td.flush(timeout_s=5) is False
    folder.mkdir()
    assert td.flush(timeout_s=10) is True
    assert count("traces") == 5


@td.trace
def _tagged(i: int) -> int:
    td.update_current_trace(tags={"i": i}, metadata={"payload": "x" * 100})
    return i


def _held_state() -> tuple[int, int]:
    """(live tag/metadata states, stashed span records) held in this process right now."""
    from traceduck import _context, _runtime

    return len(_context.REGISTRY.states), len(_runtime.STASH)


def test_sampled_out_traces_hold_no_live_tag_state(db_path: str) -> None:
    td.configure(db=db_path, sample_ratio=0.0)
    registry_before, stash_before = _held_state()
    assert [_tagged(i) for i in range(500)] == list(range(500))
    registry_after, stash_after = _held_state()
    # tags of a trace that is never exported must not pile up in memory
    growth = {
        "live states": registry_after - registry_before,
        "span records": stash_after - stash_before,
    }
    assert all(n < 5 for n in growth.values()), growth


@pytest.mark.parametrize("how", ["db=None", "after shutdown"])
def test_tracing_without_an_exporter_holds_no_per_call_state(db_path: str, how: str) -> None:
    if how == "db=None":
        td.configure(db=None)
    else:
        td.shutdown()
    registry_before, stash_before = _held_state()
    assert [_tagged(i) for i in range(500)] == list(range(500))
    with td.start_span("block") as s:
        s.set_outputs("x" * 100)
    registry_after, stash_after = _held_state()
    growth = {
        "live states": registry_after - registry_before,
        "span records": stash_after - stash_before,
    }
    assert all(n < 5 for n in growth.values()), growth


_READ_COUNT = """
import sys, time, duckdb
deadline = time.monotonic() + 10
while True:
    try:
        con = duckdb.connect(sys.argv[1], read_only=True)
        break
    except duckdb.IOException:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
print(con.execute("SELECT count(*) FROM traces").fetchone()[0])
print(round(10 - (deadline - time.monotonic()), 2))
"""


def test_the_app_lets_go_of_the_file_when_idle(db_path: str) -> None:
    assert [request(i) for i in range(3)] == [1, 3, 5]
    assert td.flush(timeout_s=10)
    # while the app stays alive, another process (CLI, notebook) can open the file
    proc = subprocess.run(
        [PYTHON, "-c", _READ_COUNT, db_path],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
    )
    assert proc.returncode == 0, proc.stderr
    traces, waited_s = proc.stdout.split()
    assert int(traces) == 3
    assert float(waited_s) < 5
    # and the app keeps tracing into it afterwards
    assert request(9) == 19
    assert td.flush(timeout_s=10)
    assert count("traces") == 4


def test_a_span_the_exporter_cannot_read_costs_only_that_span(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult

    from traceduck import DuckDBSpanExporter

    finished = []

    class Keep(SpanProcessor):
        def on_end(self, span):
            finished.append(span)

    provider = TracerProvider()
    provider.add_span_processor(Keep())
    tracer = provider.get_tracer("t")
    for name in ("good-1", "bad", "good-2"):
        with tracer.start_as_current_span(name):
            pass

    class Unreadable:  # what a buggy SDK or wrapper might hand an exporter
        def __getattr__(self, name):
            raise RuntimeError("cannot read this span")

    exporter = DuckDBSpanExporter(str(tmp_path / "e.duckdb"))
    try:
        spans = [finished[0], Unreadable(), finished[2]]
        assert exporter.export(spans) is SpanExportResult.FAILURE  # the SDK logs that
        assert exporter.flush(10) is False  # a span was dropped: the flush says so, once
        assert exporter.flush(10) is True
        assert exporter.written_traces == 2
        assert exporter.dropped_spans == 1
    finally:
        exporter.shutdown()
    names = td.TraceStore(str(tmp_path / "e.duckdb")).sql("SELECT name FROM traces ORDER BY name")
    assert names.column("name").to_pylist() == ["good-1", "good-2"]


def test_a_slow_exporter_makes_the_tracing_thread_wait_not_drop() -> None:
    """A program that ends spans faster than they are exported: the span processor's full
    queue makes ``on_end`` wait for room while the exporter takes batches; nothing is dropped."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from traceduck._export._processor import BlockingSpanProcessor

    exported: list[str] = []

    class Slow(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            time.sleep(0.02)
            exported.extend(s.name for s in spans)
            return SpanExportResult.SUCCESS

    processor = BlockingSpanProcessor(
        Slow(), max_queue_spans=20, max_batch_spans=5, schedule_delay_s=0.001
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("slow")
    for i in range(200):
        with tracer.start_as_current_span(f"s{i}"):
            pass
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert processor.losses.spans == 0
    assert exported == [f"s{i}" for i in range(200)]


def test_an_exporter_stuck_past_the_bound_costs_drops_not_a_hang(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An export that hangs: each call waits at most ``block_timeout_s`` for room, once; then
    spans are dropped, counted and reported, and every span is either exported or counted."""
    import threading

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from traceduck._export._processor import BlockingSpanProcessor

    release = threading.Event()
    exported: list[str] = []

    class Stuck(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            release.wait(30)
            exported.extend(s.name for s in spans)
            return SpanExportResult.SUCCESS

    processor = BlockingSpanProcessor(
        Stuck(), max_queue_spans=20, max_batch_spans=5, schedule_delay_s=0.001, block_timeout_s=0.3
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("drops")
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="traceduck"):
        for i in range(200):
            with tracer.start_as_current_span(f"s{i}"):
                pass
        assert time.monotonic() - started < 0.3 + 5
        release.set()
        assert provider.force_flush(10_000)
        provider.shutdown()
    assert processor.losses.spans > 0
    assert len(exported) + processor.losses.spans == 200
    assert len(set(exported)) == len(exported)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("dropping traces" in m for m in messages) == 1, messages
    assert sum("were dropped" in m for m in messages) == 1, messages


def test_stats_counts_what_the_span_queue_turned_away(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter hangs past ``block_timeout_s``: the span processor's queue turns spans
    away, and ``stats()`` and ``flush()`` report them."""
    import threading

    from traceduck._export import _convert

    gate = threading.Event()
    convert = _convert.row_of

    def stuck(span):  # type: ignore[no-untyped-def]
        gate.wait(60)
        return convert(span)

    td.configure(db=td.stats()["db"], block_timeout_s=0.2)
    monkeypatch.setattr(_convert, "row_of", stuck)
    ended = 10_000  # more than the span queue (4,096) plus the batch under export
    for _ in range(ended):
        with td.start_span("busy"):
            pass
    gate.set()
    assert td.flush(30) is False  # spans were dropped
    stats = td.stats()
    assert stats["dropped_spans"] > 0
    assert stats["written_spans"] + stats["dropped_spans"] == ended
    assert count("spans") == stats["written_spans"]
    assert td.flush(30) is True


def test_a_slow_store_makes_export_wait_not_drop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store writes slowly but writes: ``export()`` waits for room in the full queue
    instead of dropping the oldest traces, and the flush finds every trace written."""
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from traceduck import DuckDBSpanExporter

    finished = []

    class Keep(SpanProcessor):
        def on_end(self, span):  # type: ignore[no-untyped-def]
            finished.append(span)

    provider = TracerProvider()
    provider.add_span_processor(Keep())
    tracer = provider.get_tracer("t")
    for i in range(30):
        with tracer.start_as_current_span(f"trace-{i}"):
            pass

    from traceduck.store.duckdb import _sink

    write = _sink.write_batch

    def slow_write(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.1)
        return write(*args, **kwargs)

    monkeypatch.setattr(_sink, "write_batch", slow_write)
    exporter = DuckDBSpanExporter(str(tmp_path / "q.duckdb"), max_queue_traces=5)
    try:
        for span in finished:
            exporter.export([span])  # waits whenever five traces are already queued
            assert exporter.queued_traces <= 6
        assert exporter.flush(30) is True
        assert exporter.dropped_traces == 0
        assert exporter.written_traces == 30
    finally:
        exporter.shutdown()


def test_the_otlp_queue_counts_what_its_full_queue_turns_away() -> None:
    """OTLP's own queue (a collector that falls behind): the SDK's batch processor drops what
    its full queue cannot hold, and every span is either exported or counted."""
    import threading

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from traceduck._export._batch import CountingBatchSpanProcessor

    release = threading.Event()
    exported: list[str] = []

    class Stuck(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            release.wait(10)
            exported.extend(s.name for s in spans)
            return SpanExportResult.SUCCESS

    processor = CountingBatchSpanProcessor(
        Stuck(), max_queue_size=20, max_export_batch_size=5, schedule_delay_millis=1
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("drops")
    for i in range(200):
        with tracer.start_as_current_span(f"s{i}"):
            pass
    release.set()
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert processor.dropped_spans > 0
    assert len(exported) + processor.dropped_spans == 200


def test_the_otlp_queue_counts_no_drop_while_spans_flow_to_a_working_exporter() -> None:
    """stats()' otlp_dropped_spans and flush() read the OTLP queue's drop count while other
    threads end spans: it read a span on its way into the queue (or a batch on its way to the
    exporter) as dropped, so flush() said False, twice, with nothing lost."""
    import threading

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from traceduck._export._batch import CountingBatchSpanProcessor

    class Working(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            return SpanExportResult.SUCCESS

    processor = CountingBatchSpanProcessor(
        Working(), max_queue_size=65_536, max_export_batch_size=64, schedule_delay_millis=1
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("flow")
    stop = threading.Event()

    def trace_until_stopped() -> None:
        while not stop.is_set():
            with tracer.start_as_current_span("s"):
                pass

    worker = threading.Thread(target=trace_until_stopped)
    worker.start()
    phantom: list[int] = []
    try:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and len(phantom) < 10:
            if processor.dropped_spans:
                phantom.append(processor.dropped_spans)
    finally:
        stop.set()
        worker.join(10)
    provider.shutdown()
    assert processor._received > 0
    assert phantom == []
    assert processor.dropped_spans == 0


def test_a_batch_whose_retries_exit_ends_is_counted_once() -> None:
    """At exit the exporter's shutdown ends a batch's retries: the worker counts that batch as
    failed while shutdown counts what was not sent. Where the worker had its batch counted as
    failed but not yet as lost when shutdown counted, both counted it: the exit warning said
    twice the spans that were lost."""
    import threading

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from traceduck._export._batch import CountingBatchSpanProcessor

    release = threading.Event()

    class Unreachable(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            release.wait(10)  # retrying, until shutdown ends it
            return SpanExportResult.FAILURE

        def shutdown(self) -> None:
            release.set()
            time.sleep(0.1)  # the worker answers before shutdown goes on

    processor = CountingBatchSpanProcessor(
        Unreachable(), max_queue_size=100, max_export_batch_size=10, schedule_delay_millis=1
    )
    counted = processor.losses.dropped

    def slow_to_count(traces: int, spans: int, cause: str) -> None:
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.3)  # the worker is slow to count its batch: shutdown runs meanwhile
        counted(traces, spans, cause)

    processor.losses.dropped = slow_to_count  # type: ignore[method-assign]
    provider = TracerProvider()
    provider.add_span_processor(processor)
    for i in range(5):
        with provider.get_tracer("exit").start_as_current_span(f"s{i}"):
            pass
    deadline = time.monotonic() + 10
    while processor._passed < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    processor.shutdown(timeout_s=0.2)
    time.sleep(0.5)  # the worker has counted by now, whichever way
    assert processor.dropped_spans == 5
    assert (processor.losses.traces, processor.losses.spans) == (5, 5)


def _whole_trace(i: int) -> tuple:
    """A one-span trace as the exporter queues it for the writer."""
    from traceduck._export._assembler import make_bundle

    row = (f"{i:032x}", f"{i + 1:016x}", None, "job", "UNKNOWN", "OK", None, 1, 2, 1e-6,
           "INTERNAL", "svc", "{}", None, None, "[]")  # fmt: skip
    return make_bundle([row], root=row, labels=None)  # type: ignore[return-value]


def test_a_write_that_failed_before_the_flush_began_does_not_fail_the_flush(
    tmp_path: Path,
) -> None:
    """A write under way when ``flush()`` is called fails (the store was not there yet); the
    retry the flush asks for succeeds: the flush says True, since everything got written."""
    import threading

    from traceduck import DuckDBSpanExporter
    from traceduck.errors import StorageError
    from traceduck.store._records import WriteBatch

    exporter = DuckDBSpanExporter(str(tmp_path / "later.duckdb"))
    in_write = threading.Event()
    flushing = threading.Event()
    calls: list[int] = []
    write = exporter.sink.write

    def first_fails_late(batch: WriteBatch, timeout_s: float) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            in_write.set()
            flushing.wait(10)
            time.sleep(0.2)  # the flush has begun: now this write fails
            raise StorageError("not there yet")
        write(batch, timeout_s)

    exporter.sink.write = first_fails_late  # type: ignore[method-assign]
    try:
        exporter.enqueue([_whole_trace(0)])
        assert in_write.wait(10)
        result: list[bool] = []
        flusher = threading.Thread(target=lambda: result.append(exporter.flush(10)))
        flusher.start()
        time.sleep(0.05)
        flushing.set()
        flusher.join(15)
        assert result == [True] and len(calls) >= 2
    finally:
        exporter.shutdown()


def test_a_batch_retried_after_a_partial_write_counts_each_trace_once(tmp_path: Path) -> None:
    """A batch DuckDB refuses is written trace by trace; when another process takes its turn
    half way, the traces not written yet go back to the queue and are written later: every
    trace is stored once and counted once."""
    from traceduck import DuckDBSpanExporter
    from traceduck.store._sink import TurnError

    exporter = DuckDBSpanExporter(str(tmp_path / "partial.duckdb"))
    write = exporter.sink.write
    calls: list[int] = []

    def refused_then_interrupted(batch, timeout_s):  # type: ignore[no-untyped-def]
        calls.append(len(batch))
        if len(calls) == 1:
            raise ValueError("data DuckDB refuses")  # the batch: written trace by trace next
        if len(calls) == 3:
            raise TurnError("another process's turn")  # the second trace of the three
        write(batch, timeout_s)

    exporter.sink.write = refused_then_interrupted  # type: ignore[method-assign]
    try:
        exporter.enqueue([_whole_trace(i) for i in range(3)])
        assert exporter.flush(10) is True
        assert calls == [3, 1, 1, 2]  # the first trace is stored: only the other two again
        assert exporter.stats()["written_traces"] == 3
        assert exporter.stats()["dropped_traces"] == 0
    finally:
        exporter.shutdown()
    assert td.TraceStore(str(tmp_path / "partial.duckdb")).count_traces() == 3


def test_a_refused_trace_in_a_batch_cut_short_is_dropped_and_counted_once(tmp_path: Path) -> None:
    """A batch with one trace DuckDB refuses is written trace by trace: the bad one is dropped
    and counted, and when another process takes its turn after it, only the traces not
    written yet go back to the queue (the dropped one is not dropped, nor counted, again)."""
    from traceduck import DuckDBSpanExporter
    from traceduck.store._sink import TurnError

    exporter = DuckDBSpanExporter(str(tmp_path / "bad.duckdb"))
    write = exporter.sink.write
    bad = f"{0:032x}"
    turns = 0

    def one_bad_then_interrupted(batch, timeout_s):  # type: ignore[no-untyped-def]
        nonlocal turns
        ids = [plain[1][0] for plain in batch.plain]
        if bad in ids:
            raise ValueError("data DuckDB refuses")
        if len(ids) == 1 and turns == 0:
            turns += 1
            raise TurnError("another process's turn")
        write(batch, timeout_s)

    exporter.sink.write = one_bad_then_interrupted  # type: ignore[method-assign]
    try:
        exporter.enqueue([_whole_trace(i) for i in range(3)])
        assert exporter.flush(10) is False  # a trace was dropped: flush says so
        assert exporter.stats()["written_traces"] == 2
        assert exporter.stats()["dropped_traces"] == 1
    finally:
        exporter.shutdown()
    assert td.TraceStore(str(tmp_path / "bad.duckdb")).count_traces() == 2


_FLUSH_IN_OUR_THREAD = """
import sys, threading, time
import traceduck as td
seen = []
def redact(path, value):
    if value == "flush here" and not seen:
        started = time.monotonic()
        flushed = td.flush()
        seen.append((threading.current_thread().name, flushed, time.monotonic() - started))
    return value
td.configure(db=sys.argv[1], redact=redact, auto_context=False)
@td.trace
def f(x):
    return x
f("flush here")
for i in range(20):
    f(i)
print(td.flush(timeout_s=30), seen)
"""


def test_flush_called_by_user_code_that_an_export_runs_returns_at_once(tmp_path: Path) -> None:
    # traceduck runs user code while it exports: a redact callable, or a __del__ the GC runs in
    # its threads (cyclic garbage is collected by whichever thread allocates next). A flush()
    # there waited for the export it was part of: forever (a child process bounds the test).
    db = str(tmp_path / "t.duckdb")
    done = subprocess.run(
        [PYTHON, "-c", _FLUSH_IN_OUR_THREAD, db],
        capture_output=True, text=True, timeout=30, env=subprocess_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ok, seen = done.stdout.strip().split(" ", 1)
    assert ok == "True", done.stderr
    ((_thread, flushed, took),) = ast.literal_eval(seen)
    assert flushed is False and took < 1.0  # it cannot say its own queue is written
    assert td.TraceStore(db).sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 21}]
