"""ClickHouse's tags without transactions: each edit one insert, the state derived from events,
never two holders of an exclusive tag, history kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import traceduck as td
from _engines import HAVE_CHDB, new_store_name, write_traces

pytestmark = pytest.mark.skipif(not HAVE_CHDB, reason="needs the clickhouse extra")


@pytest.fixture
def store(tmp_path: Path) -> Any:
    return td.TraceStore(new_store_name("chdb", tmp_path))


def test_two_claims_that_missed_each_other_leave_one_holder(store: Any) -> None:
    """Two processes claim an exclusive key at once: each read the holder before the other
    wrote, so neither wrote a ``moved`` event for the other. The later claim holds the tag."""
    from traceduck.store._tagrules import set_change
    from traceduck.store.clickhouse._events import EditRows

    a, b = write_traces(store, [("job", {}, {}), ("job", {}, {})])
    store.register_tag("winner")
    for trace_id in (a, b):  # what each process inserts: its set event and its claim
        edit = EditRows("api")
        edit.changes(trace_id, [set_change({}, "winner", True)])
        edit.claim(trace_id, "winner", "name:job")
        edit.insert(store.conn)
    assert "winner" not in store.get_trace(a).info.tags
    assert store.get_trace(b).info.tags == {"winner": True}
    assert [t.info.trace_id for t in store.search_traces("tags.winner = true")] == [b]
    assert store.search_traces("tags.winner IS NULL", max_results=None)[0].info.trace_id == a
    assert store.sql("SELECT trace_id FROM trace_tags WHERE key = 'winner'").to_pylist() == [
        {"trace_id": b}
    ]
    # The next claim moves it from the holder, and the history of both is kept.
    store.set_trace_tag(a, "winner", True)
    assert [t.info.trace_id for t in store.search_traces("tags.winner = true")] == [a]
    assert [e.operation for e in store.tag_history(b)] == ["set", "moved"]


def test_a_bulk_edit_is_one_insert_with_one_version(store: Any) -> None:
    ids = write_traces(store, [("job", {"env": "prod"}, {})] * 50)
    assert store.set_trace_tags("tags.env = 'prod'", {"reviewed": True, "batch": 7}) == 50
    rows = store.sql(
        "SELECT uniqExact(edit_id) AS edits, uniqExact(version) AS versions, count() AS n "
        "FROM td_tag_events WHERE key IN ('reviewed', 'batch')"
    ).to_pylist()
    assert rows == [{"edits": 1, "versions": 1, "n": 100}]
    assert store.count_traces("tags.batch = 7 AND tags.reviewed = true") == len(ids)


def test_the_latest_edit_wins_and_a_delete_hides_the_key(store: Any) -> None:
    (trace_id,) = write_traces(store, [("job", {"cost": 1}, {})])
    store.set_trace_tag(trace_id, "cost", "cheap")
    assert store.count_traces("tags.cost = 'cheap'") == 1
    with pytest.raises(td.FilterError, match=r"tags\.cost holds strings"):
        store.count_traces("tags.cost > 0")
    store.delete_trace_tag(trace_id, "cost")
    assert store.count_traces("tags.cost IS NULL") == 1
    assert store.count_traces("tags.cost = ''") == 0  # a missing key is never ''
    assert [e.operation for e in store.tag_history(trace_id)] == ["set", "update", "delete"]
