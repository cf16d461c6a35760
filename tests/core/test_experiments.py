"""Experiments, MLflow's grouping: every trace belongs to one, chosen in code or the environment,
stored with the trace, searchable by id (MLflow's arguments) and by name (the filter field)."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import duckdb
import pytest

import traceduck as td
from traceduck import ConfigError, FilterError, TraceStore
from traceduck.store.duckdb._schema import MIGRATIONS, SCHEMA_VERSION

from ._helpers import PYTHON, child_env


@td.trace
def work(n: int) -> int:
    return n + 1


def _traced(n: int) -> str:
    work(n)
    trace_id = td.get_last_trace_id()
    assert trace_id is not None
    return trace_id


def test_set_experiment_groups_the_traces_that_start_after_it(db_path: str) -> None:
    before = _traced(0)
    exp = td.set_experiment("prompt-v2")
    assert (exp.experiment_id, exp.name) == ("1", "prompt-v2")  # ids in order, as MLflow's
    after = [_traced(1), _traced(2)]
    other = td.set_experiment("prompt-v3")
    assert other.experiment_id == "2"
    last = _traced(3)
    assert td.flush(10)
    store = TraceStore(db_path)
    first = store.get_trace(before).info
    assert (first.experiment_id, first.experiment) == ("0", "Default")
    for trace_id in after:
        info = store.get_trace(trace_id).info
        assert (info.experiment_id, info.experiment) == ("1", "prompt-v2")
    assert store.get_trace(last).info.experiment_id == "2"
    # Choosing an existing experiment again returns it, not a new one.
    assert td.set_experiment("prompt-v2") == exp
    assert td.set_experiment(experiment_id="2").name == "prompt-v3"
    assert [e.name for e in store.search_experiments()] == ["Default", "prompt-v2", "prompt-v3"]
    assert td.get_experiment_by_name("prompt-v3").experiment_id == "2"
    assert td.get_experiment_by_name("nope") is None


def test_a_running_trace_keeps_the_experiment_it_started_in(db_path: str) -> None:
    td.set_experiment("first")
    started, release = threading.Event(), threading.Event()
    ids: list[str] = []

    @td.trace
    def slow() -> None:
        ids.append(td.get_current_trace_id() or "")
        started.set()
        release.wait(10)

    thread = threading.Thread(target=slow)
    thread.start()
    assert started.wait(10)
    td.set_experiment("second")  # while slow() runs
    release.set()
    thread.join()
    assert td.flush(10)
    assert TraceStore(db_path).get_trace(ids[0]).info.experiment == "first"


def test_search_by_experiment_ids_locations_and_the_filter_field(db_path: str) -> None:
    default = _traced(0)
    td.set_experiment("a")
    a_ids = {_traced(1), _traced(2)}
    td.set_experiment("b")
    b_id = _traced(3)
    assert td.flush(10)
    store = TraceStore(db_path)

    def ids(result) -> set[str]:
        return {t.info.trace_id for t in result}

    assert ids(store.search_traces(experiment_ids=["1"])) == a_ids
    assert ids(store.search_traces(locations=["2"])) == {b_id}
    assert ids(store.search_traces(experiment_ids=["0", "2"])) == {default, b_id}
    assert ids(store.search_traces(experiment_ids=["1"], locations=["2"])) == a_ids | {b_id}
    assert ids(store.search_traces(experiment_ids=["99"])) == set()
    assert ids(store.search_traces("experiment = 'a'")) == a_ids
    assert ids(store.search_traces("experiment IN ('a', 'b')")) == a_ids | {b_id}
    assert ids(store.search_traces("experiment_id = '0'")) == {default}
    assert ids(store.search_traces("trace.experiment != 'Default'")) == a_ids | {b_id}
    assert ids(store.search_traces("experiment STARTSWITH 'b' AND name = 'work'")) == {b_id}
    frame = store.search_traces(experiment_ids=["1"], return_type="pandas")
    assert set(frame["trace_id"]) == a_ids and set(frame["experiment"]) == {"a"}
    ordered = store.search_traces(order_by=["experiment DESC"], max_results=None)
    assert [t.info.experiment for t in ordered] == ["b", "a", "a", "Default"]
    with pytest.raises(FilterError, match="holds text"):
        store.search_traces("experiment_id = 1")
    # The module-level call searches the active experiment when one was chosen, as MLflow does.
    assert ids(td.search_traces()) == {b_id}
    assert ids(td.search_traces(experiment_ids=["1"])) == a_ids
    assert ids(td.search_traces("experiment = 'a'", locations=["0", "1"])) == a_ids


def test_bad_experiment_names_are_config_errors(db_path: str) -> None:
    for bad in ("", "   ", "a\nb", 3, "x" * 501):
        with pytest.raises(ConfigError):
            td.set_experiment(bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            td.configure(db=db_path, experiment=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        td.set_experiment()
    with pytest.raises(ConfigError, match="no experiment with id"):
        td.set_experiment(experiment_id="42")


CHILD = """
import json, os, sys
import traceduck as td
if len(sys.argv) > 2:
    td.configure(db=sys.argv[1], experiment=sys.argv[2])
else:
    td.configure(db=sys.argv[1])
@td.trace
def job():
    return 1
job()
assert td.flush(10)
print(json.dumps(td.get_trace(td.get_last_trace_id()).info.experiment))
"""


@pytest.mark.parametrize(
    ("env", "argument", "expected"),
    [
        ({}, None, "Default"),
        ({"MLFLOW_EXPERIMENT_NAME": "from-mlflow"}, None, "from-mlflow"),
        ({"TRACEDUCK_EXPERIMENT": "from-traceduck"}, None, "from-traceduck"),
        ({"TRACEDUCK_EXPERIMENT": "ours", "MLFLOW_EXPERIMENT_NAME": "theirs"}, None, "ours"),
        ({"MLFLOW_EXPERIMENT_NAME": "theirs"}, "in-code", "in-code"),
    ],
)
def test_configure_and_the_environment_choose_the_experiment(
    tmp_path: Path, env: dict[str, str], argument: str | None, expected: str
) -> None:
    db = str(tmp_path / "child.duckdb")
    args = [PYTHON, "-c", CHILD, db] + ([argument] if argument else [])
    done = subprocess.run(args, env=child_env(**env), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected


def test_a_version_1_store_is_migrated_in_place_into_default(tmp_path: Path) -> None:
    path = str(tmp_path / "v1.duckdb")
    con = duckdb.connect(path)
    for statement in MIGRATIONS[1]:
        con.execute(statement)
    con.execute("INSERT INTO traceduck_meta VALUES ('schema_version', '1')")
    con.execute(
        "INSERT INTO traces (trace_id, name, status, timestamp_ms, execution_time_ms, "
        "span_count, tags, metadata) VALUES ('" + "a" * 32 + "', 'old', 'OK', 1, 2.0, 1, "
        "'{\"env\": \"prod\"}', '{}')"
    )
    con.close()
    store = TraceStore(path)
    info = store.get_trace("a" * 8).info
    assert (info.experiment_id, info.experiment, info.tags) == ("0", "Default", {"env": "prod"})
    assert [(e.experiment_id, e.name) for e in store.search_experiments()] == [("0", "Default")]
    version = store.sql("SELECT value FROM traceduck_meta").to_pylist()
    assert version == [{"value": str(SCHEMA_VERSION)}]
    assert len(store.search_traces("experiment = 'Default'")) == 1


def test_export_and_import_keep_the_experiment_by_name(db_path: str, tmp_path: Path) -> None:
    td.set_experiment("exported")  # id "1" here
    kept = _traced(1)
    assert td.flush(10)
    TraceStore(db_path).export_traces(tmp_path / "out.parquet")
    other = TraceStore(tmp_path / "other.duckdb")
    assert other.create_experiment("already-here") == "1"  # the same id names another one
    other.import_traces(tmp_path / "out.parquet")
    info = other.get_trace(kept).info
    assert (info.experiment, info.experiment_id) == ("exported", "2")
    assert other.search_traces(experiment_ids=["2"])[0].info.trace_id == kept


def test_mlflow_client_over_the_default_store(db_path: str) -> None:
    client = td.MlflowClient()
    assert client.create_experiment("made-by-client") == "1"
    with pytest.raises(ConfigError, match="exists already"):
        client.create_experiment("made-by-client")
    assert client.get_experiment("1").name == "made-by-client"
    assert client.get_experiment_by_name("Default").experiment_id == "0"
    td.set_experiment("made-by-client")
    trace_id = _traced(1)
    assert td.flush(10)
    (found,) = client.search_traces(experiment_ids=["1"])  # MLflow's order: ids first
    assert found.info.trace_id == trace_id and found.spans  # spans included, as in MLflow
    client.set_trace_tag(trace_id=trace_id, key="reviewed", value="yes")
    assert client.get_trace(trace_id).info.tags == {"reviewed": "yes"}
    client.delete_trace_tag(trace_id=trace_id, key="reviewed")
    assert client.get_trace(trace_id).info.tags == {}
    assert [e.name for e in client.search_experiments()] == ["Default", "made-by-client"]
    other = td.MlflowClient(str(Path(db_path).with_name("other.duckdb")))
    assert other.search_traces(experiment_ids=["1"]) == []
    with pytest.raises(ConfigError, match="MLflow server"):
        td.MlflowClient("http://localhost:5000")


def test_mlflow_client_deletes_one_experiments_traces(db_path: str) -> None:
    kept = _traced(0)
    td.set_experiment("to-clear")
    gone = [_traced(1), _traced(2)]
    assert td.flush(10)
    client = td.MlflowClient()
    assert client.delete_traces(experiment_id="1", max_timestamp_millis=2**62) == 2
    store = TraceStore(db_path)
    assert [t.info.trace_id for t in store.search_traces()] == [kept]
    assert store.search_traces(experiment_ids=["1"]) == [] and gone


@pytest.mark.parametrize("kwargs", [{}, {"max_traces": 1}, {"trace_ids": []}])
def test_mlflow_client_delete_traces_needs_a_cutoff_or_ids(db_path: str, kwargs: dict) -> None:
    """MLflow refuses delete_traces(experiment_id) without max_timestamp_millis or trace_ids;
    the client deleted the whole experiment (TraceStore.delete_traces's rule too: never
    'delete everything' by leaving the selectors out)."""
    kept = _traced(0)
    assert td.flush(10)
    with pytest.raises(FilterError, match="max_timestamp_millis or trace_ids"):
        td.MlflowClient().delete_traces("0", **kwargs)
    assert [t.info.trace_id for t in TraceStore(db_path).search_traces()] == [kept]
