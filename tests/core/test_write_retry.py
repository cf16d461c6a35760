"""A batch is written the same however often it is tried (the exporter retries a batch that a
locked store refused), and a trace already stored, e.g. by another process, is merged."""

from __future__ import annotations

from pathlib import Path

from traceduck.store._records import SpanRows, TraceRow, WriteBatch
from traceduck.store.duckdb._connection import Database
from traceduck.store.duckdb._writer import write_batch

TRACE = "ab" * 16


def _span(span_id: str, parent: str | None, start: int) -> tuple:
    return (TRACE, span_id, parent, "step", "UNKNOWN", "OK", None, start, start + 10, 1e-5,
            "INTERNAL", "svc", "{}", None, None, "[]")  # fmt: skip


def _batch() -> WriteBatch:
    """The root part of a trace and a late span of it (ended after the root) in one batch."""
    root = TraceRow(TRACE, "root", "OK", None, 100, 200, 1, "svc", "r" * 16, True, True,
                    tags={"env": "prod"}, metadata=[("user", "u1", 0)])  # fmt: skip
    late = TraceRow(TRACE, "step", "OK", None, 150, 260, 1, "svc", "c" * 16, False, False,
                    metadata=[("late", True, 0)])  # fmt: skip
    spans = SpanRows([_span("r" * 16, None, 100), _span("c" * 16, "r" * 16, 150)])
    return WriteBatch(spans=spans, traces=[root, late])


def _stored(db: Database) -> tuple:
    with db.lease() as cur:
        return cur.execute(
            "SELECT span_count, tags, metadata, (SELECT count(*) FROM trace_metadata) "
            "FROM traces WHERE trace_id = ?",
            [TRACE],
        ).fetchone()


def test_a_batch_written_twice_into_fresh_stores_is_stored_the_same(tmp_path: Path) -> None:
    batch = _batch()
    first, second = Database(str(tmp_path / "a.duckdb")), Database(str(tmp_path / "b.duckdb"))
    try:
        write_batch(first, batch)
        write_batch(second, batch)  # as a retry after a refused write would
        assert _stored(first) == _stored(second)
        assert _stored(first)[0] == 2
        assert [t.span_count for t in batch.traces] == [1, 1]  # the batch's rows untouched
    finally:
        first.shutdown()
        second.shutdown()


def test_a_whole_trace_already_stored_is_merged_not_refused(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "c.duckdb"))
    try:
        batch = _batch()
        write_batch(db, batch)
        root_only = WriteBatch(spans=SpanRows([batch.spans.rows[0]]), traces=[batch.traces[0]])
        write_batch(db, root_only)  # the same root again (a resent request): nothing doubles
        span_count, *_ = _stored(db)
        assert span_count == 2
        with db.lease() as cur:
            assert cur.execute("SELECT count(*) FROM spans").fetchone()[0] == 2
    finally:
        db.shutdown()
