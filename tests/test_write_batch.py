"""The batch writer on every engine: whole traces, late parts merged, resends harmless, live
tags and metadata with their history, exclusive live tags within one batch."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

import traceduck as td
from _engines import ENGINES, new_store_name, write_traces
from traceduck.errors import StorageError
from traceduck.store._records import SpanRows, TraceRow, WriteBatch

TID = "ab" * 16


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return td.TraceStore(new_store_name(request.param, tmp_path))


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
