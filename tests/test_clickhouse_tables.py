"""Search results as tables (Arrow, pandas) and long lists on ClickHouse: the tags and metadata
of many traces come from the engine in one query (by ids when few, by the filter again when
many), with the same values, key order and JSON text as the list of TraceInfo gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import traceduck as td
from _engines import HAVE_CHDB, new_store_name, write_traces
from traceduck import _json

pytestmark = pytest.mark.skipif(not HAVE_CHDB, reason="needs the clickhouse extra")

ODD = {
    "b/slash": "a/b",
    "é ü": "ünï",
    'quo"te': 'say "hi"\n',
    "a b": 1,
    "a": [1, "x", None, {"k/": True}],
    "model.version": 2.5,
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = td.TraceStore(new_store_name("chdb", tmp_path_factory.mktemp("tables")))
    specs = [("job", {**ODD, "n": i, "env": "prod" if i % 3 else "dev"}, {}) for i in range(30)]
    ids = write_traces(store, specs)
    store.register_tag("best")
    store.set_trace_tag(ids[0], "best", True)
    store.set_trace_tag(ids[3], "best", True)  # moves: ids[0] loses it
    store.delete_trace_tag(ids[5], "a b")
    for i, tid in enumerate(ids[:10]):
        store.log_metadata(tid, {"z/first": {"é": i}, "a": "later"})
        store.log_metadata(tid, {"z/first": i * 2})
    return store


@pytest.fixture(params=["by ids", "by the filter again"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "by the filter again":
        import traceduck.store.clickhouse._store as engine

        monkeypatch.setattr(engine, "LITERAL_IDS", 0)
    return request.param


@pytest.mark.parametrize(
    ("flt", "max_results"),
    [("tags.env = 'prod'", None), ("tags.n >= 4", 7), (None, None), ("tags.best = true", None)],
)
def test_a_table_holds_what_the_list_holds(
    store: Any, path: str, flt: str | None, max_results: int | None
) -> None:
    listed = store.search_traces(flt, max_results=max_results)
    table = store.search_traces(flt, max_results=max_results, return_type="arrow")
    assert table.column("trace_id").to_pylist() == [t.info.trace_id for t in listed]
    for row, trace in zip(table.to_pylist(), listed):
        info = trace.info
        assert row["tags"] == _json.dumps(info.tags)  # same keys, order and text
        assert row["metadata"] == _json.dumps(info.metadata)
        assert json.loads(row["tags"]) == info.tags
        assert (row["name"], row["status"], row["span_count"]) == (
            info.name, info.status, info.span_count,
        )  # fmt: skip
    frame = store.search_traces(flt, max_results=max_results, return_type="pandas")
    assert frame["trace_id"].tolist() == table.column("trace_id").to_pylist()


def test_the_values_are_the_current_ones(store: Any, path: str) -> None:
    rows = {
        r["trace_id"]: r
        for r in store.search_traces(None, max_results=None, return_type="arrow").to_pylist()
    }
    holders = [t for t, r in rows.items() if "best" in json.loads(r["tags"])]
    assert len(holders) == 1  # the exclusive tag moved: one holder
    firsts = [json.loads(r["metadata"]) for r in rows.values() if r["metadata"] != "{}"]
    assert len(firsts) == 10
    assert all(list(m) == ["z/first", "a"] and isinstance(m["z/first"], int) for m in firsts)
    without = [r for r in rows.values() if "a b" not in json.loads(r["tags"])]
    assert len(without) == 1  # the deleted key is gone


def test_a_long_list_has_the_same_infos_either_way(store: Any, path: str) -> None:
    everything = store.search_traces(max_results=None)
    assert len(everything) == 30
    assert all(t.info.tags["b/slash"] == "a/b" for t in everything)
    page = store.search_traces("tags.n >= 0", max_results=9)
    rest = store.search_traces("tags.n >= 0", max_results=None, page_token=page.token)
    assert [t.info for t in [*page, *rest]] == [t.info for t in everything]


def test_it_is_a_path_of_its_own(path: str, tmp_path: Path) -> None:
    """The monkeypatched threshold really sends the big-table path through the filter."""
    import traceduck.store.clickhouse._store as engine

    assert (engine.LITERAL_IDS == 0) == (path == "by the filter again")
