"""The DuckDB store: big traces and many traces read back complete, id prefixes, schema and
migration, empty / 0-byte / corrupt files."""

from __future__ import annotations

import contextvars
import os
import random
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

import traceduck as td
from traceduck.store.duckdb._schema import SCHEMA_VERSION, migrate

from ._helpers import PYTHON, count, flush, last_trace, span, subprocess_env, user_metadata

# -- big and many -------------------------------------------------------------------------------


def test_a_trace_with_1000_spans_is_read_back_complete_in_tree_order() -> None:
    expected_parent: dict[str, str | None] = {}

    def note(parent: str | None) -> str:
        current = td.get_current_span()
        expected_parent[current.span_id] = parent
        return current.span_id

    @td.trace
    def leaf(i, parent):
        note(parent)
        return i

    @td.trace
    def group(g, parent):
        me = note(parent)
        with td.start_span(f"block-{g}") as block:
            expected_parent[block.span_id] = me
            for i in range(97):
                leaf(i, block.span_id)
        return g

    @td.trace
    def root():
        me = note(None)
        for g in range(10):
            group(g, me)
        for i in range(9):
            leaf(-i, me)
        return "ok"

    assert root() == "ok"
    assert len(expected_parent) == 1 + 10 * (1 + 1 + 97) + 9 == 1000
    trace = last_trace()
    assert trace.info.span_count == len(expected_parent)
    assert len(trace.spans) == len(expected_parent)
    assert {s.span_id: s.parent_id for s in trace.spans} == expected_parent
    seen: set[str] = set()
    for s in trace.spans:  # parents before children
        assert s.parent_id is None or s.parent_id in seen
        seen.add(s.span_id)
    assert trace.spans[0].name == "root"
    assert count("spans") == len(expected_parent)


def test_10000_traces_are_all_written_and_read_back() -> None:
    @td.trace
    def child(i):
        return i

    @td.trace
    def request(i):
        return child(i)

    ids = set()
    for i in range(10_000):
        request(i)
        if i % 1000 == 0:
            ids.add(td.get_last_trace_id())
    flush()
    assert count("traces") == 10_000
    assert count("spans") == 20_000
    assert count("traces", "WHERE span_count = 2 AND status = 'OK'") == 10_000
    assert td.sql("SELECT count(DISTINCT trace_id) AS n FROM spans").to_pylist() == [{"n": 10_000}]
    stats = td.stats()
    assert stats["written_traces"] == 10_000
    assert stats["dropped_traces"] == 0
    for trace_id in ids:
        trace = td.get_trace(trace_id)
        assert [s.name for s in trace.spans] == ["request", "child"]
        assert trace.spans[0].inputs == trace.spans[1].inputs


def test_a_trace_whose_spans_arrive_over_several_batches_ends_complete() -> None:
    @td.trace
    def part(i):
        return i

    @td.trace
    def long_job():
        for i in range(5):
            part(i)
            assert td.flush(timeout_s=10)  # the finished children are exported before the root
        return "done"

    assert long_job() == "done"
    trace = last_trace()
    assert trace.info.name == "long_job"
    assert trace.info.span_count == 6
    assert [s.name for s in trace.spans] == ["long_job"] + ["part"] * 5
    assert count("traces") == 1


def _late_child_trace(flush_between: bool) -> tuple[str, td.Trace]:
    release = threading.Event()

    @td.trace
    def background():
        release.wait(10)
        return "late"

    @td.trace
    def request():
        td.update_current_trace(tags={"env": "prod"}, metadata={"user": "u1"})
        ctx = contextvars.copy_context()
        worker = threading.Thread(target=ctx.run, args=(background,))
        worker.start()
        return td.get_current_trace_id(), worker

    trace_id, worker = request()
    if flush_between:
        flush()
    release.set()
    worker.join(10)
    flush()
    return trace_id, td.get_trace(trace_id)


def test_a_span_that_ends_after_its_root_in_a_later_batch_joins_the_trace() -> None:
    trace_id, trace = _late_child_trace(flush_between=True)
    assert trace.info.trace_id == trace_id
    assert trace.info.name == "request"
    assert trace.info.span_count == 2
    assert trace.info.tags == {"env": "prod"}
    assert user_metadata(trace.info) == {"user": "u1"}
    assert [s.name for s in trace.spans] == ["request", "background"]
    assert count("traces") == 1


def test_a_span_that_ends_after_its_root_in_the_same_batch_joins_the_trace() -> None:
    # A background span ending right after the root lands in the same write batch.
    trace_id, trace = _late_child_trace(flush_between=False)
    assert {s.trace_id for s in trace.spans} == {trace_id}
    assert [s.name for s in trace.spans] == ["request", "background"]
    assert trace.info.name == "request"
    assert trace.info.span_count == 2
    assert trace.info.tags == {"env": "prod"}
    assert user_metadata(trace.info) == {"user": "u1"}
    assert count("traces") == 1


def test_trace_info_fields() -> None:
    @td.trace
    def work(x):
        time.sleep(0.02)
        return {"answer": x}

    before_ms = time.time() * 1000
    work(42)
    after_ms = time.time() * 1000
    trace = last_trace()
    info = trace.info
    assert len(info.trace_id) == 32
    assert info.request_id == info.trace_id
    assert before_ms - 1 <= info.timestamp_ms <= after_ms
    assert 15 <= info.execution_time_ms <= (after_ms - before_ms) + 1
    assert info.span_count == 1
    assert info.status == "OK"
    assert info.status_message is None
    assert info.service_name
    root = trace.spans[0]
    assert root.duration_ms == pytest.approx(info.execution_time_ms, abs=0.01)
    assert trace.root == root
    assert trace.to_dict()["info"]["trace_id"] == info.trace_id


# -- id prefixes --------------------------------------------------------------------------------


def test_get_trace_by_unique_ambiguous_and_unknown_prefix() -> None:
    @td.trace
    def f(i):
        return i

    for i in range(40):
        f(i)
    flush()
    ids = [r["trace_id"] for r in td.sql("SELECT trace_id FROM traces").to_pylist()]
    assert len(ids) == 40

    # a unique prefix resolves to its trace (any case)
    target = ids[0]
    n = 1
    while sum(i.startswith(target[:n]) for i in ids) > 1:
        n += 1
    assert td.get_trace(target[:n]).info.trace_id == target
    assert td.get_trace(target[: n + 3].upper()).info.trace_id == target
    assert td.get_trace(target).info.trace_id == target

    # 40 ids over 16 first characters: some first character is shared
    first_chars = [i[0] for i in ids]
    shared = next(c for c in first_chars if first_chars.count(c) > 1)
    with pytest.raises(td.AmbiguousTraceIdError) as info:
        td.get_trace(shared)
    assert isinstance(info.value, LookupError)
    sharing = sorted(i for i in ids if i.startswith(shared))
    assert sorted(info.value.candidates) == sharing[: len(info.value.candidates)]
    assert len(info.value.candidates) >= 2
    for candidate in info.value.candidates[:2]:
        assert candidate in str(info.value)

    unknown = next(
        p for p in (f"{n:08x}" for n in range(1000)) if not any(i.startswith(p) for i in ids)
    )
    with pytest.raises(td.TraceNotFoundError):
        td.get_trace(unknown)
    with pytest.raises(td.TraceNotFoundError):
        td.get_trace("f" * 31 + "0" if "f" * 31 + "0" not in ids else "0" * 32)
    with pytest.raises(td.TraceNotFoundError):
        td.get_trace("not-hex!")
    with pytest.raises(td.TraceNotFoundError):
        td.get_trace("")


def test_trace_store_reads_the_same_file(db_path: str) -> None:
    @td.trace
    def f():
        return 1

    f()
    trace_id = last_trace().info.trace_id
    store = td.TraceStore(db_path)
    assert store.get_trace(trace_id[:12]).info.trace_id == trace_id
    assert store.sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 1}]


def test_a_read_only_store_and_a_writing_one_on_the_same_file_in_one_process(
    tmp_path: Path,
) -> None:
    # DuckDB refuses two differently configured connections to one file in a process; a
    # script that first browses read-only, then tags, must not hit that.
    path = str(tmp_path / "other.duckdb")
    code = (
        "import traceduck as td\n"
        f"td.configure(db={path!r})\n"
        "@td.trace\ndef f():\n    return 1\n"
        "f()\nassert td.flush(timeout_s=30)\nprint(td.get_last_trace_id())\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=60
    )
    assert done.returncode == 0, done.stderr
    trace_id = done.stdout.strip()
    reader = td.TraceStore(path, read_only=True)
    assert reader.get_trace(trace_id).info.trace_id == trace_id
    editor = td.TraceStore(path)  # the reader's connection is still open and warm
    editor.set_trace_tag(trace_id, "reviewed", True)
    assert reader.get_trace(trace_id).info.tags == {"reviewed": True}
    assert editor.get_trace(trace_id).info.tags == {"reviewed": True}


# -- schema and files ---------------------------------------------------------------------------


def test_schema_version_is_recorded_and_reopening_an_existing_file_works(db_path: str) -> None:
    @td.trace
    def first():
        td.update_current_trace(tags={"k": "v"})

    first()
    first_id = last_trace().info.trace_id
    td.shutdown()  # lets go of the file

    con = duckdb.connect(db_path)
    try:
        version = con.execute(
            "SELECT value FROM traceduck_meta WHERE key = 'schema_version'"
        ).fetchone()
        assert version == (str(SCHEMA_VERSION),)
        assert migrate(con) == SCHEMA_VERSION  # idempotent on a current store
        assert migrate(con) == SCHEMA_VERSION
        assert con.execute("SELECT count(*) FROM traces").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM tag_events").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM traceduck_meta").fetchone() == (1,)
    finally:
        con.close()

    td.configure(db=db_path)

    @td.trace
    def second():
        return 2

    second()
    second_id = last_trace().info.trace_id
    assert count("traces") == 2
    assert td.get_trace(first_id).info.tags == {"k": "v"}
    assert td.get_trace(second_id).info.name == "second"


def test_a_plain_duckdb_file_without_schema_is_migrated_in_place(db_path: str) -> None:
    con = duckdb.connect(db_path)
    con.execute("CREATE TABLE user_notes (note VARCHAR)")
    con.execute("INSERT INTO user_notes VALUES ('keep me')")
    con.close()

    @td.trace
    def f():
        return 1

    f()
    assert last_trace().info.name == "f"
    assert td.sql("SELECT note FROM user_notes").to_pylist() == [{"note": "keep me"}]
    rows = td.sql("SELECT value FROM traceduck_meta WHERE key = 'schema_version'").to_pylist()
    assert rows == [{"value": str(SCHEMA_VERSION)}]


def test_a_path_with_no_file_is_an_empty_store_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.duckdb"
    store = td.TraceStore(path)
    assert store.sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 0}]
    with pytest.raises(td.TraceNotFoundError):
        store.get_trace("abc")
    assert not path.exists()
    # the configured default store, before anything was traced, likewise
    assert count("traces") == 0
    with pytest.raises(td.TraceNotFoundError):
        td.get_trace("abc")
    assert not (tmp_path / "t.duckdb").exists()


def test_a_zero_byte_file_counts_as_new_when_reading(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    path.touch()
    store = td.TraceStore(path)
    assert store.sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 0}]
    with pytest.raises(td.TraceNotFoundError):
        store.get_trace("abc")


def test_a_zero_byte_file_counts_as_new_when_writing(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    path.touch()
    td.configure(db=str(path))

    @td.trace
    def f():
        return "written"

    f()
    trace = last_trace()
    assert trace.spans[0].outputs == "written"
    assert path.stat().st_size > 0


def _corrupt(path: Path) -> bytes:
    data = b"not a duckdb file\n" + random.Random(7).randbytes(64 * 1024)
    path.write_bytes(data)
    return data


def test_a_corrupt_file_raises_storage_error_and_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.duckdb"
    data = _corrupt(path)
    store = td.TraceStore(path)
    with pytest.raises(td.StorageError) as info:
        store.sql("SELECT count(*) FROM traces")
    assert str(path) in str(info.value)
    with pytest.raises(td.StorageError):
        store.get_trace("abc")
    with pytest.raises(td.StorageError):
        td.TraceStore(path, read_only=True).get_trace("abc")
    assert path.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["corrupt.duckdb"]


def test_configure_on_a_corrupt_file_never_raises_and_flush_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.duckdb"
    data = _corrupt(path)
    started = time.monotonic()
    td.configure(db=str(path))
    assert time.monotonic() - started < 2

    @td.trace
    def f(x):
        return x + 1

    assert [f(i) for i in range(5)] == [1, 2, 3, 4, 5]
    started = time.monotonic()
    assert td.flush(timeout_s=10) is False
    assert time.monotonic() - started < 5
    error = td.stats()["last_error"]
    assert error and str(path) in error
    assert "DuckDB" in error or "corrupt" in error.lower()
    assert path.read_bytes() == data
    # reads through the module API say the same
    with pytest.raises(td.StorageError):
        td.get_trace("abc")
    td.shutdown()
    assert path.read_bytes() == data


def test_span_rows_have_documented_defaults() -> None:
    with td.start_span("plain"):
        pass
    root = span(last_trace(), "plain")
    assert root.span_type == "UNKNOWN"
    assert root.status == "OK"
    assert root.status_message is None
    assert root.attributes == {}
    assert root.events == []
    (row,) = td.sql("SELECT kind, status FROM spans").to_pylist()
    assert row == {"kind": "INTERNAL", "status": "OK"}


def test_a_distributed_trace_arriving_in_parts_ends_complete() -> None:
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    trace_id = 0x0DDBA11CAFE0000000000000000F00D5
    remote = NonRecordingSpan(
        SpanContext(trace_id, 0xABC, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    )

    @td.trace
    def handler(part):
        td.update_current_trace(tags={f"part_{part}": True})
        return part

    for part in (1, 2):  # e.g. two services handling requests of one upstream trace
        token = otel_context.attach(otel_trace.set_span_in_context(remote))
        try:
            assert handler(part) == part
        finally:
            otel_context.detach(token)
        flush()

    trace = td.get_trace(format(trace_id, "032x"))
    assert trace.info.span_count == 2
    assert [s.inputs for s in trace.spans] == [{"part": 1}, {"part": 2}]
    assert all(s.parent_id == format(0xABC, "016x") for s in trace.spans)
    assert trace.info.tags == {"part_1": True, "part_2": True}
    assert trace.info.name == "handler"
    assert count("traces") == 1


def test_one_trace_with_an_unencodable_string_costs_no_other_trace() -> None:
    # A file name that is not valid UTF-8 decodes to a lone surrogate (PEP 383), as
    # os.listdir, sys.argv and os.environ give them on Linux.
    odd_name = os.fsdecode(b"report-\xff.csv")

    @td.trace
    def load(path):
        td.update_current_trace(tags={"file": path})
        td.get_current_span().set_attribute("path", path)
        return path

    @td.trace
    def fine(i):
        return i

    assert fine(1) == 1
    assert load(odd_name) == odd_name
    assert fine(2) == 2
    flush()
    assert td.stats()["dropped_traces"] == 0
    assert count("traces") == 3
    names = sorted(r["name"] for r in td.sql("SELECT name FROM traces").to_pylist())
    assert names == ["fine", "fine", "load"]
    (row,) = td.sql("SELECT inputs FROM spans WHERE name = 'load'").to_pylist()
    assert "report-" in row["inputs"]


def test_a_finished_trace_becomes_visible_without_flush() -> None:
    @td.trace
    def f():
        return 1

    f()
    started = time.monotonic()
    while count("traces") == 0:
        assert time.monotonic() - started < 3, "not visible 3 s after the trace finished"
        time.sleep(0.05)


def test_flush_returns_while_another_thread_keeps_tracing() -> None:
    # A request handler that flushes its own trace in a busy server: it waits for what was
    # finished before it asked, not for a queue that other threads keep filling.
    @td.trace
    def work(i: int) -> int:
        return i

    stop, busy = threading.Event(), threading.Event()

    def keep_tracing() -> None:
        i = 0
        while not stop.is_set():
            work(i)
            i += 1
            if i == 200:
                busy.set()
            time.sleep(0.001)  # a steady stream: the queue is never empty for long

    thread = threading.Thread(target=keep_tracing, daemon=True)
    thread.start()
    try:
        assert busy.wait(60)
        for _ in range(3):
            with td.start_span("mine"):
                mine = td.get_current_trace_id()
            assert td.flush(timeout_s=10), td.stats()
            assert td.sql(f"SELECT count(*) AS n FROM traces WHERE trace_id = '{mine}'")[
                "n"
            ].to_pylist() == [1]
    finally:
        stop.set()
        thread.join(10)


def test_inputs_outputs_and_type_set_as_plain_attributes_by_another_sdk() -> None:
    # What an app in another language (or plain OTel) sends: text that may or may not be JSON.
    from opentelemetry import trace as otel_trace

    tracer = otel_trace.get_tracer("other-sdk")
    with tracer.start_as_current_span("root") as root:
        root.set_attribute("traceduck.span_type", "CHAIN")
        root.set_attribute("traceduck.inputs", '{"question": "why?"}')  # JSON text
        root.set_attribute("traceduck.outputs", "because <not json>")  # plain text
        root.set_attribute("user.id", "u7")
        with tracer.start_as_current_span("child") as child:
            child.set_attribute("traceduck.inputs", "[1, 2")  # truncated JSON: kept as text
            child.set_attribute("traceduck.outputs", 42)
            child.set_attribute("traceduck.tag.not_a_root_tag", "x")
    flush()
    trace = td.get_trace(format(root.get_span_context().trace_id, "032x"))
    top, below = span(trace, "root"), span(trace, "child")
    assert (top.span_type, top.inputs) == ("CHAIN", {"question": "why?"})
    assert top.outputs == "because <not json>"
    assert top.attributes == {"user.id": "u7"}
    assert (below.span_type, below.inputs, below.outputs) == ("UNKNOWN", "[1, 2", 42)
    assert trace.info.request_preview == '{"question": "why?"}'
    assert trace.info.tags == {}


def test_a_half_read_result_does_not_break_the_threads_next_query(db_path: str) -> None:
    @td.trace
    def f(i):
        return i

    for i in range(3000):  # more rows than one fetch chunk
        f(i)
    flush()
    store = td.TraceStore(db_path)
    with store._db.lease() as cur:
        cur.execute("SELECT * FROM spans").fetchone()  # left unfinished, as scripts do
    assert store.sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 3000}]


def test_get_trace_finds_a_span_that_started_hours_before_its_root(db_path: str) -> None:
    # get_trace looks near the root first; a span far outside that window (a clock-skewed
    # service, a part that started long before) must still come back.
    from opentelemetry import trace as otel_trace

    tracer = otel_trace.get_tracer("skewed")
    hours_ago = time.time_ns() - 5 * 3600 * 10**9
    with tracer.start_as_current_span("root") as root:
        tracer.start_span("early", start_time=hours_ago).end(end_time=hours_ago + 1000)
        with tracer.start_as_current_span("near"):
            pass
    flush()
    trace = td.get_trace(format(root.get_span_context().trace_id, "032x"))
    assert trace.info.span_count == 3
    assert sorted(s.name for s in trace.spans) == ["early", "near", "root"]


def test_the_assembler_remembers_the_last_written_traces_for_their_late_spans() -> None:
    """A span that ends after its root extends the stored trace (a part, not a pending trace
    waiting for a root that already came) for at least the last ``remember`` traces, and the
    memory of written traces stays bounded."""
    from traceduck._export._assembler import Assembler

    def span(trace: int, span_id: int, parent: int | None) -> tuple[Any, ...]:
        parent_id = None if parent is None else f"{parent:016x}"
        ids = (f"{trace:032x}", f"{span_id:016x}", parent_id, "f", "UNKNOWN", "OK", None)
        return (*ids, 1, 2, 1e-6, "INTERNAL", None, "{}", None, None, "[]")

    assembler = Assembler(remember=100)
    for trace in range(1, 1001):
        assert assembler.add(span(trace, 1, None), True) is not None
    for trace in range(901, 1001):  # the last 100 roots: late spans become parts at once
        assert assembler.add(span(trace, 2, 1), False) is not None
    assert assembler.pending == {}
    assert assembler.add(span(1, 2, 1), False) is None  # long forgotten: waits as pending
    assert len(assembler._written) + len(assembler._written_before) <= 200


def test_a_plain_root_is_assembled_as_the_general_path_assembles_it() -> None:
    """The exporter's shortcut for a true root carrying only the automatic metadata
    (``add_plain_root``) hands on what ``add`` with those labels does: alone, after children
    that were pending, with no metadata, and with metadata JSON cannot hold (then a Bundle)."""
    from traceduck._export._assembler import Assembler, Bundle, RootLabels
    from traceduck.store._records import SPAN_COLUMNS

    def span(trace: int, span_id: int, parent: int | None, **cols: Any) -> tuple[Any, ...]:
        row = dict(zip(SPAN_COLUMNS, (
            f"{trace:032x}", f"{span_id:016x}", None if parent is None else f"{parent:016x}",
            "f", "UNKNOWN", "OK", None, 10**18 + span_id, 10**18 + 5_000 + span_id, 5e-3,
            "INTERNAL", "svc", "{}", '{"x":1}', "2", "[]",
        )))  # fmt: skip
        row.update(cols)
        return tuple(row.values())

    context = {"host": "h", "pid": 1}
    cases = [
        ([], span(1, 1, None), [("context", context, 10**18)]),
        ([span(2, 2, 1), span(2, 3, 1)], span(2, 1, None), [("context", context, 10**18)]),
        ([], span(3, 1, None, status="ERROR", status_message="boom"), []),
        ([], span(4, 1, None, inputs=None, outputs=None), [("a", 1, 0), ("b", [1, 2], 5)]),
        ([], span(5, 1, None), [("bad", float("nan"), 0)]),
    ]
    for children, root, metadata in cases:
        general, shortcut = Assembler(), Assembler()
        for child in children:
            assert general.add(child, False) is None and shortcut.add(child, False) is None
        expected = general.add(root, True, RootLabels({}, {}, list(metadata)))
        got = shortcut.add_plain_root(root, list(metadata))
        if isinstance(expected, Bundle):
            assert isinstance(got, Bundle)
            assert (got.row, got.spans.rows, got.nbytes) == (
                expected.row,
                expected.spans.rows,
                expected.nbytes,
            )
        else:
            assert got == expected
        assert shortcut.pending == general.pending == {}
        assert shortcut._written == general._written


def test_a_process_that_traces_leaves_duckdb_one_core_fewer_than_it_has() -> None:
    """DuckDB's writes run beside the app's Python: in a tracing process DuckDB's threads leave
    a core to the app (on 2 cores, 1 thread)."""

    @td.trace
    def call() -> int:
        return 1

    call()
    flush()
    default = duckdb.connect().execute("SELECT current_setting('threads')").fetchone()[0]
    threads = td.sql("SELECT current_setting('threads') AS n").to_pylist()[0]["n"]
    assert int(threads) == max(int(default) - 1, 1)


def test_a_process_that_traces_checkpoints_duckdb_less_often_than_its_default() -> None:
    """A checkpoint costs a tracing process a few hundred ms whatever it carries: its connection
    checkpoints at a 64MiB WAL, not DuckDB's default 16MiB."""

    @td.trace
    def call() -> int:
        return 1

    call()
    flush()
    query = "SELECT current_setting('checkpoint_threshold') AS t"
    default = duckdb.connect().execute(query).fetchone()[0]
    threshold = td.sql(query).to_pylist()[0]["t"]
    assert (default, threshold) == ("16.0 MiB", "64.0 MiB")
