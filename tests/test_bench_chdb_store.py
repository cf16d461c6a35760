"""The benchmarks' chdb stores are built from Arrow (benchmarks/suites/_chdb_stores.py,
``write_chunk``) instead of through the engine's batch writer, which is ~20x slower. Their
figures hold only if both give the same store: the same rows in every table (the versions,
edit ids and stamp times are the clock's, so they are compared by their order) and the same
answers to every query of the search suite, through traceduck and by hand-written SQL.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from _engines import new_store_name
from traceduck import TraceStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from suites import _chdb_stores, _stores
from suites.search import CH_WHERE, QUERIES, _ch_sql

TRACES = 2_000
BATCH = 700  # three batches, the last one short: seq numbering restarts per batch

# Columns that hold the writer's stamp of a batch (the clock's, and a random edit id): compared
# by the order of the batches; test_a_batch_shares_one_stamp checks they go together.
STAMPED = {"version", "edit_id"}
STAMP_TIME = {"td_tag_events": "ts"}  # td_metadata's ts is the entry's, from the generator


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[TraceStore, TraceStore]:
    """(written by the batch writer, built from Arrow), the same 2,000 generated traces."""
    tmp = tmp_path_factory.mktemp("bench-chdb")
    patch = pytest.MonkeyPatch()
    patch.setattr(_chdb_stores, "BATCH", BATCH)
    try:
        written = TraceStore(new_store_name("chdb", tmp))
        chunk = _stores.generate_chunk(0, TRACES, TRACES)
        for batch in _chdb_stores.batches(chunk):
            written.write_batch(batch)
        built = TraceStore(new_store_name("chdb", tmp))
        _chdb_stores.fill(built.conn, TRACES)
    finally:
        patch.undo()
    return written, built


def _rows(store: TraceStore, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table``, its stamp replaced by the batch's place among the batches,
    sorted."""
    columns = [r[0] for r in store.conn.query(f"DESCRIBE TABLE {table}") if r[0] != "ord"]
    if table == "td_experiments":  # the migration's Default row, stamped when it ran
        columns.remove("created")
    rows = store.conn.query(f"SELECT {', '.join(columns)} FROM {table}")
    if "version" in columns:
        at = columns.index("version")
        batch = {v: i for i, v in enumerate(sorted({row[at] for row in rows}))}
        stamped = STAMPED | {STAMP_TIME.get(table, "")}
        rows = [
            tuple(batch[row[at]] if c in stamped else v for c, v in zip(columns, row))
            for row in rows
        ]
    return sorted(rows, key=repr)


@pytest.mark.parametrize(
    "table",
    ["td_traces", "spans", "td_tag_events", "td_metadata", "td_tag_keys", "td_experiments"],
)
def test_the_arrow_build_has_the_writers_rows(
    stores: tuple[TraceStore, TraceStore], table: str
) -> None:
    written, built = (_rows(s, table) for s in stores)
    assert len(written) == len(built)
    assert written == built


def test_a_batch_shares_one_stamp_and_its_tag_events_their_time(
    stores: tuple[TraceStore, TraceStore],
) -> None:
    """One stamp per batch of BATCH traces on both, and an event's time is its stamp's."""
    for store in stores:
        rows = store.conn.query(
            "SELECT version, uniqExact(edit_id), uniqExact(trace_id), "
            "countIf(abs(toInt64(toUnixTimestamp64Micro(ts)) - toInt64(intDiv(version, 1000)))"
            " > 1) "
            "FROM td_tag_events GROUP BY version ORDER BY version"
        )
        assert [r[1:] for r in rows] == [(1, 700, 0), (1, 700, 0), (1, 600, 0)]


@pytest.mark.parametrize("query", QUERIES, ids=[q.key for q in QUERIES])
def test_the_arrow_build_gives_the_same_answers(
    stores: tuple[TraceStore, TraceStore], query: Any
) -> None:
    answers = []
    for store in stores:
        if query.fetch_all:
            found = store.search_traces(query.filter, max_results=None, return_type="arrow")
            mine = found.to_pylist()
        else:
            mine = [t.to_dict() for t in store.search_traces(query.filter)]
        by_hand = store.conn.client.query(_ch_sql(query), parameters=CH_WHERE[query.key][1])
        # (the hand-written SQL leaves the keys of a document in the engine's order)
        rows = [(*r[:-2], json.loads(r[-2]), json.loads(r[-1])) for r in by_hand.result_rows]
        answers.append((mine, rows))
    if query.key != "user":  # one trace in 10,000 has a given user
        assert answers[0][0], "the query matches something"
    assert answers[0] == answers[1]
