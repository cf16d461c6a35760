"""Experiments on every engine: the writer files each trace under its experiment (ids in order
of creation, Default "0"), searches and filters by id and name, and the experiment calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import traceduck as td
from _engines import ENGINES, new_store_name
from traceduck.store._records import SpanRows, TraceRow, WriteBatch


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return td.TraceStore(new_store_name(request.param, tmp_path))


def _trace(n: int, experiment: str | None, *, root: bool = True, part: int = 0) -> WriteBatch:
    tid = f"{n:02d}" * 16
    span_id = f"{n:02d}{part:02d}" * 4
    start = n * 1_000_000_000 + part * 1000
    span = (tid, span_id, None if root else "ff" * 8, f"job{n}", "CHAIN", "OK", None, start,
            start + 5_000_000, 5.0, "INTERNAL", "svc", "{}", None, None, None)  # fmt: skip
    row = TraceRow(tid, f"job{n}", "OK", None, start, start + 5_000_000, 1, "svc", span_id,
                   root, root, experiment=experiment)  # fmt: skip
    return WriteBatch(SpanRows([span]), [row], "otlp")


def _ids(result: Any) -> list[str]:
    return sorted(t.info.trace_id[:2] for t in result)


def test_traces_are_filed_under_their_experiments(store: Any) -> None:
    store.write_batch(_trace(1, None))
    store.write_batch(_trace(2, "exp-a"))
    for batch in (_trace(3, "exp-b"), _trace(4, "exp-a")):
        store.write_batch(batch)
    store.write_batch(_trace(4, "exp-a"))  # a resend changes nothing
    infos = {t.info.trace_id[:2]: t.info for t in store.search_traces(max_results=None)}
    assert {k: (i.experiment_id, i.experiment) for k, i in infos.items()} == {
        "01": ("0", "Default"), "02": ("1", "exp-a"), "03": ("2", "exp-b"), "04": ("1", "exp-a"),
    }  # fmt: skip
    assert _ids(store.search_traces(experiment_ids=["1"])) == ["02", "04"]
    assert _ids(store.search_traces(locations=["2", "0"])) == ["01", "03"]
    assert _ids(store.search_traces(experiment_ids=[])) == []
    assert _ids(store.search_traces("experiment = 'exp-a'")) == ["02", "04"]
    assert _ids(store.search_traces("experiment LIKE 'exp-%' AND NOT experiment_id = '1'")) == [
        "03"
    ]
    assert store.count_traces("experiment_id IN ('0', '2')") == 2
    ordered = store.search_traces(order_by=["experiment DESC", "timestamp_ms"], max_results=None)
    assert [t.info.trace_id[:2] for t in ordered] == ["03", "02", "04", "01"]
    table = store.search_traces(experiment_ids=["1"], return_type="arrow")
    assert sorted(table.column("experiment").to_pylist()) == ["exp-a", "exp-a"]
    listed = [(e.experiment_id, e.name) for e in store.search_experiments()]
    assert listed == [("0", "Default"), ("1", "exp-a"), ("2", "exp-b")]
    rows = store.sql("SELECT experiment_id, name FROM experiments ORDER BY name").to_pylist()
    assert rows == [{"experiment_id": "0", "name": "Default"},
                    {"experiment_id": "1", "name": "exp-a"},
                    {"experiment_id": "2", "name": "exp-b"}]  # fmt: skip


def test_a_trace_written_in_parts_takes_its_roots_experiment(store: Any) -> None:
    store.write_batch(_trace(5, None, root=False, part=1))  # a stand-in part: no experiment
    store.write_batch(_trace(5, "late-root", root=True, part=2))
    info = store.get_trace("05").info
    assert (info.experiment, info.experiment_id, info.span_count) == ("late-root", "1", 2)


def test_experiment_calls(store: Any) -> None:
    assert store.create_experiment("made") == "1"
    with pytest.raises(td.ConfigError, match="exists already"):
        store.create_experiment("made")
    assert store.get_or_create_experiment("made").experiment_id == "1"
    assert store.get_or_create_experiment("second").experiment_id == "2"
    assert store.get_experiment("2").name == "second"
    assert store.get_experiment_by_name("Default").experiment_id == "0"
    assert store.get_experiment_by_name("nope") is None
    with pytest.raises(td.ConfigError, match="no experiment with id"):
        store.get_experiment("9")
    created = store.get_experiment("1").creation_time
    assert isinstance(created, int) and created > 1_700_000_000_000
