"""Tracing into ClickHouse: ``configure(db="chdb:///dir")`` (the suite's ClickHouse) and a
server that cannot be reached. The same exporter, queue and no-loss rules as DuckDB."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import traceduck as td
from _engines import new_store_name


@td.trace(span_type="TOOL")
def lookup(q: str) -> str:
    return q.upper()


@td.trace
def answer(i: int) -> str:
    td.update_current_trace(tags={"i": i, "env": "prod"}, metadata={"user": f"u{i % 3}"})
    return lookup(f"q{i}")


@td.trace
def plain(i: int) -> int:
    return i + 1


def test_traces_go_into_chdb_with_tags_metadata_and_spans(tmp_path: Path) -> None:
    name = new_store_name("chdb", tmp_path)
    td.configure(db=name)
    assert [answer(i) for i in range(20)] == [f"Q{i}" for i in range(20)]
    assert [plain(i) for i in range(30)] == list(range(1, 31))
    assert td.flush(timeout_s=60) is True, td.stats()
    store = td.TraceStore(name)
    assert store.count_traces() == 50
    found = store.search_traces("tags.i >= 18 AND tags.env = 'prod'", max_results=None)
    assert sorted(t.info.tags["i"] for t in found) == [18, 19]
    trace = store.get_trace(found[0].info.trace_id)
    assert [s.name for s in trace.spans] == ["answer", "lookup"]
    assert trace.spans[1].span_type == "TOOL"
    assert trace.info.metadata["user"] in ("u0", "u1", "u2")
    assert trace.info.metadata["context"]["pid"] > 0  # the automatic context, as on DuckDB
    assert store.count_traces("name = 'plain'") == 30
    assert td.stats()["dropped_traces"] == 0


def test_a_tight_loop_overfilling_the_queue_stores_every_trace_in_chdb(tmp_path: Path) -> None:
    name = new_store_name("chdb", tmp_path)
    td.configure(db=name, max_queue_traces=50)
    for i in range(3_000):
        plain(i)
    assert td.flush(timeout_s=60) is True, td.stats()
    assert td.TraceStore(name).count_traces() == 3_000


def test_an_unreachable_server_never_reaches_the_app(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listens on port 1: calls return at once, the flush says False without hanging,
    stats() names the problem, and the drops are said once."""
    td.configure(db="clickhouse://127.0.0.1:1/traceduck", max_queue_traces=20, block_timeout_s=1)
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="traceduck"):
        assert [plain(i) for i in range(200)] == list(range(1, 201))
        assert time.monotonic() - started < 1 + 10
        assert td.flush(timeout_s=5) is False
        deadline = time.monotonic() + 30
        while not td.stats()["last_error"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert "127.0.0.1" in td.stats()["last_error"]
    assert td.stats()["written_traces"] == 0


def test_shutdown_does_not_wait_out_a_server_that_never_answers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that takes the connection and never answers (hung, or behind a black hole):
    shutdown (at exit too) waits the exit timeout, not the HTTP client's read timeout (30 s),
    and counts the traces of the write under way as dropped, since nothing confirmed them."""
    from traceduck._export import _duckdb

    monkeypatch.setattr(_duckdb, "EXIT_TIMEOUT_S", 1.0)
    with _server_that_never_answers() as (url, _):
        td.configure(db=url)
        assert [plain(i) for i in range(50)] == list(range(1, 51))
        assert td.flush(timeout_s=0.5) is False
        exporter = td._config._S.exporter
        assert exporter is not None
        started = time.monotonic()
        with caplog.at_level("WARNING", logger="traceduck"):
            td.shutdown()
        assert time.monotonic() - started < 1 + 2 + 2  # the exit timeout, the writer's 2 s
        assert exporter.dropped_traces == 50
        assert exporter.written_traces == 0
        assert "not confirmed before shutdown" in caplog.text


def test_spans_handed_over_after_such_a_shutdown_are_dropped_and_counted_at_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A span processor that shuts down after the exporter (a provider made before traceduck
    was imported, at exit) hands over its last spans: with a write still left to a server that
    never answers, they are not written to it (that would wait out the read timeout) but
    dropped, counted and said at once."""
    from traceduck import DuckDBSpanExporter
    from traceduck._export import _duckdb

    monkeypatch.setattr(_duckdb, "EXIT_TIMEOUT_S", 1.0)

    def two_traces(tracer: Any) -> None:
        for name in ("first", "late"):
            with tracer.start_as_current_span(name):
                pass

    ended = _sdk_spans(two_traces)
    with _server_that_never_answers() as (url, _):
        exporter = DuckDBSpanExporter(url)
        exporter.export(ended[:1])
        assert exporter.force_flush(500) is False
        exporter.shutdown()  # the first trace's write left to its thread, counted dropped
        assert exporter._thread.is_alive()
        started = time.monotonic()
        with caplog.at_level("WARNING", logger="traceduck"):
            exporter.export(ended[1:])
            exporter.shutdown()
        assert time.monotonic() - started < 2
        assert (exporter.written_traces, exporter.dropped_traces) == (0, 2)
        assert exporter.queued_traces == 0
        assert "not written after shutdown" in caplog.text


def _sdk_spans(make: Callable[[Any], None]) -> list[Any]:
    """The spans ``make(tracer)`` ends with a plain SDK provider, in the order they ended."""
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

    ended: list[ReadableSpan] = []

    class Keep(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            ended.append(span)

    provider = TracerProvider()
    provider.add_span_processor(Keep())
    make(provider.get_tracer("test"))
    return ended


@contextmanager
def _server_that_never_answers() -> Iterator[tuple[str, Callable[[], None]]]:
    """A ClickHouse URL on 127.0.0.1 whose server takes connections and never answers, and
    a function that closes it (the connections taken too: a request waiting there fails)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    taken: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                taken.append(server.accept()[0])  # read nothing, answer nothing
            except OSError:
                return

    def close() -> None:
        try:
            server.shutdown(socket.SHUT_RDWR)  # wakes accept(): nothing listens any more
        except OSError:
            pass
        server.close()
        for conn in taken:
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"clickhouse://127.0.0.1:{server.getsockname()[1]}/traceduck", close
    finally:
        close()


def test_a_write_left_to_a_silent_server_holds_up_no_other_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write that shutdown left to its thread (a server that never answers) keeps nothing
    another store needs: tracing into chdb right after is written at once, not once the
    server's read timeout (30 s) has let the old write go."""
    from traceduck._export import _duckdb

    monkeypatch.setattr(_duckdb, "EXIT_TIMEOUT_S", 1.0)
    with _server_that_never_answers() as (url, _):
        td.configure(db=url)
        plain(1)
        assert td.flush(timeout_s=0.5) is False
        td.shutdown()
        name = new_store_name("chdb", tmp_path)
        td.configure(db=name)
        plain(2)
        started = time.monotonic()
        assert td.flush(timeout_s=10) is True, td.stats()
        assert time.monotonic() - started < 10
        assert td.TraceStore(name).count_traces() == 1


def test_a_write_left_to_its_thread_says_nothing_more_when_it_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Shutdown has counted the write it left to its thread as dropped, and said so: when that
    write fails later (the server goes away), no warning about a store no longer traced into
    follows, and the counts stay what shutdown said."""
    from traceduck._export import _duckdb

    monkeypatch.setattr(_duckdb, "EXIT_TIMEOUT_S", 1.0)
    with _server_that_never_answers() as (url, close):
        td.configure(db=url)
        plain(1)
        assert td.flush(timeout_s=0.5) is False
        exporter = td._config._S.exporter
        assert exporter is not None
        td.shutdown()
        assert exporter._thread.is_alive()  # left to its network call
        with caplog.at_level("WARNING", logger="traceduck"):
            close()
            exporter._thread.join(30)
        assert not exporter._thread.is_alive()
        assert "cannot write traces" not in caplog.text
        assert (exporter.written_traces, exporter.dropped_traces) == (0, 1)


def test_a_big_export_reaches_clickhouse_in_few_large_inserts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each insert is a part ClickHouse merges later and a fixed cost for chdb: 20,000 spans
    exported in quick succession go in as one batch (DuckDB's writer starts at 8,192 spans,
    which here would be two or three)."""
    from traceduck import DuckDBSpanExporter
    from traceduck.store.clickhouse._sink import ClickHouseSink

    def big(tracer: Any) -> None:
        for _ in range(2_000):
            with tracer.start_as_current_span("root"):
                for _ in range(9):
                    with tracer.start_as_current_span("child"):
                        pass

    ended = _sdk_spans(big)
    writes: list[int] = []
    write = ClickHouseSink.write

    def counted(self: ClickHouseSink, batch: Any, timeout_s: float) -> None:
        writes.append(len(batch))
        write(self, batch, timeout_s)

    monkeypatch.setattr(ClickHouseSink, "write", counted)
    name = new_store_name("chdb", tmp_path)
    exporter = DuckDBSpanExporter(name, interval_s=60)  # no write for want of time
    try:
        for i in range(0, len(ended), 2_000):
            exporter.export(ended[i : i + 2_000])
            time.sleep(0.05)  # the writer would start here if it had enough spans
        assert exporter.force_flush(60_000)
    finally:
        exporter.shutdown()
    assert writes == [20_000]
    assert td.TraceStore(name).count_traces("span_count = 10") == 2_000


def test_a_trace_whose_downstream_part_was_stored_first_ends_complete(tmp_path: Path) -> None:
    """A service called with the trace's context writes its spans first (its own exporter:
    another process in production); the root's part, written later, merges with them."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from traceduck import DuckDBSpanExporter

    name = new_store_name("chdb", tmp_path)
    td.configure(db=name)
    downstream = DuckDBSpanExporter(name)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(downstream))
    tracer = provider.get_tracer("downstream")
    propagator = TraceContextTextMapPropagator()

    @td.trace
    def handle(i: int) -> int:
        headers: dict[str, str] = {}
        propagator.inject(headers)  # the request to the downstream service
        with tracer.start_as_current_span("serve", context=propagator.extract(headers)):
            pass
        assert downstream.force_flush(30_000)  # its part is stored before this trace ends
        return i

    try:
        assert [handle(i) for i in range(3)] == [0, 1, 2]
        assert td.flush(timeout_s=60) is True, td.stats()
    finally:
        provider.shutdown()
    found = td.TraceStore(name).search_traces(max_results=None)
    assert len(found) == 3
    assert {(t.info.name, t.info.span_count) for t in found} == {("handle", 2)}


_READ_FIRST = """
import sys
import traceduck as td

td.configure(db=sys.argv[1])
assert td.search_traces() == []
assert td.sql("SELECT count() AS n FROM traces").column("n").to_pylist() == [0]
try:
    td.get_trace("0" * 32)
except td.TraceNotFoundError:
    pass
else:
    raise AssertionError("found a trace in an empty store")

@td.trace
def plain(i):
    return i + 1

assert plain(1) == 2
assert td.flush(timeout_s=60) is True, td.stats()
print([t.info.name for t in td.search_traces()])
"""


def test_the_configured_store_reads_as_empty_before_its_first_trace(tmp_path: Path) -> None:
    """As a DuckDB file not written yet: the calls that read the configured store answer
    (nothing) instead of saying there is no store; the first trace then shows up. In a
    process of its own: chdb runs one directory per process, this one is the suite's."""
    import subprocess

    from ._helpers import PYTHON, child_env

    name = f"chdb://{tmp_path / 'not-yet'}"
    done = subprocess.run(
        [PYTHON, "-c", _READ_FIRST, name], env=child_env(), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['plain']"


@pytest.mark.parametrize("moment", ["written", "same-batch", "failed-part-way"])
def test_a_trace_released_in_parts_to_bound_memory_ends_complete(
    tmp_path: Path, moment: str
) -> None:
    """The assembler lets go of a long trace's early spans (its memory budget, here 5 spans)
    before the root ends: the root's part, written later, merges with them wherever they are
    (stored, in the same batch, or in a write that failed after its spans and is retried)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from traceduck import DuckDBSpanExporter

    name = new_store_name("chdb", tmp_path)
    exporter = DuckDBSpanExporter(name, interval_s=0.05)
    exporter._assembler.max_pending_spans = 5
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("long")
    conn = exporter.sink._writer.connection()
    conn.command("SELECT 1")
    try:
        with tracer.start_as_current_span("root"):
            if moment == "failed-part-way":
                conn.command("ALTER TABLE td_traces ADD CONSTRAINT refuse CHECK span_count < 0")
            for i in range(8):
                with tracer.start_as_current_span(f"step-{i}"):
                    pass
            assert exporter._assembler.pending_spans <= 5  # some went as a part
            if moment == "written":
                assert exporter.force_flush(30_000)
            elif moment == "failed-part-way":
                assert not exporter.force_flush(1_000)  # the part's trace row is refused
                conn.command("ALTER TABLE td_traces DROP CONSTRAINT refuse")
        assert exporter.force_flush(30_000)
    finally:
        provider.shutdown()
    store = td.TraceStore(name)
    (found,) = store.search_traces(max_results=None)
    trace = store.get_trace(found.info.trace_id)
    assert (trace.info.name, trace.info.span_count) == ("root", 9)
    assert sorted(s.name for s in trace.spans) == ["root", *(f"step-{i}" for i in range(8))]
    assert exporter.dropped_spans == 0
