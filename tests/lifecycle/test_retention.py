"""Retention: the writer thread expires old traces in the background (configure() and the
collector), and the durations it takes. `traceduck prune` is tested with the CLI."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import traceduck as td
from _engines import ENGINES, HAVE_CHDB, new_store_name
from _old_traces import hours_ago, trace_at
from traceduck._duration import parse_duration
from traceduck.collector import Collector
from traceduck.store import _retention
from traceduck.store.duckdb import _sink as duckdb_sink


@pytest.fixture(autouse=True)
def quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer checks for expired traces every 0.2 s instead of every minute."""
    monkeypatch.setenv(_retention.CHECK_ENV, "0.2")


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_old_traces_expire_in_the_background_and_younger_ones_stay(db_path: str) -> None:
    td.configure(db=db_path, retention="1h", auto_context=False)
    old = [trace_at("job", hours_ago(h), tags={"n": i}) for i, h in enumerate((5, 3, 2))]
    young = [trace_at("job", hours_ago(0.5)), trace_at("job", hours_ago(0))]
    assert td.flush(10)
    store = td.TraceStore(db_path)

    # Nothing is traced from here on: the idle writer wakes up for retention by itself.
    wait_for(lambda: store.count_traces() == 2)
    assert {t.info.trace_id for t in store.search_traces()} == set(young)
    deleted = store.sql("SELECT trace_count, source, max_traces FROM deletions").to_pylist()
    assert sum(r["trace_count"] for r in deleted) == len(old)
    assert {r["source"] for r in deleted} == {"retention"}
    marks = ", ".join("?" * len(old))
    for table in ("spans", "tag_events", "trace_metadata"):
        left = store.sql(f"SELECT count(*) AS n FROM {table} WHERE trace_id IN ({marks})", old)
        assert left.to_pylist() == [{"n": 0}], table


@pytest.mark.skipif(not HAVE_CHDB, reason="needs the clickhouse extra")
def test_a_chdb_store_expires_old_traces_in_small_steps_on_the_writer_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from traceduck.store.clickhouse import _delete

    threads: list[str] = []
    delete = _delete.delete_selected

    def spy(*args, **kwargs):  # records where retention's deletions run, then runs them
        threads.append(threading.current_thread().name)
        return delete(*args, **kwargs)

    monkeypatch.setattr(_delete, "delete_selected", spy)
    monkeypatch.setattr(_retention, "CHUNK_TRACES", 2)  # a chunk per delete...
    monkeypatch.setattr(_retention, "STEP_BUDGET_S", 0.0)  # ...and one chunk per run
    name = new_store_name("chdb", tmp_path)
    td.configure(db=name, retention="1h", auto_context=False)
    old = [trace_at("job", hours_ago(h), tags={"n": i}) for i, h in enumerate((9, 7, 5))]
    young = trace_at("job", hours_ago(0.5), metadata={"m": 1})
    assert td.flush(10)
    store = td.TraceStore(name)

    wait_for(lambda: store.count_traces() == 1)
    assert [t.info.trace_id for t in store.search_traces()] == [young]
    steps = store.sql("SELECT trace_count, source FROM deletions ORDER BY deletion_id")
    assert [r["trace_count"] for r in steps.to_pylist()] == [2, 1]
    assert {r["source"] for r in steps.to_pylist()} == {"retention"}
    ids = ", ".join(f"'{t}'" for t in old)
    for table in ("spans", "tag_events", "trace_metadata"):
        left = store.sql(f"SELECT count(*) AS n FROM {table} WHERE trace_id IN ({ids})")
        assert left.to_pylist() == [{"n": 0}], table
    assert set(threads) == {"traceduck-writer"}


def test_a_two_second_retention_expires_new_traces_too(db_path: str) -> None:
    td.configure(db=db_path, retention="2s", auto_context=False)
    started = time.time()
    ids = [trace_at("job", hours_ago(0)) for _ in range(3)]
    assert td.flush(10)
    store = td.TraceStore(db_path)
    wait_for(lambda: store.count_traces() == 0)
    assert time.time() - started >= 2.0  # not before their time
    assert store.sql("SELECT DISTINCT source FROM deletions").to_pylist() == [
        {"source": "retention"}
    ]
    assert all(td.search_traces(f"trace_id = '{tid}'") == [] for tid in ids)


def test_expiry_runs_on_the_writer_thread_never_in_the_traced_call(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    delete = duckdb_sink.delete_selected

    def spy(*args, **kwargs):  # records where retention's deletions run, then runs them
        threads.append(threading.current_thread().name)
        return delete(*args, **kwargs)

    monkeypatch.setattr(duckdb_sink, "delete_selected", spy)
    td.configure(db=db_path, retention="1h", auto_context=False)
    trace_at("job", hours_ago(2))
    assert td.flush(10)
    wait_for(lambda: td.TraceStore(db_path).count_traces() == 0)
    assert threads and set(threads) == {"traceduck-writer"}


@pytest.mark.parametrize("bad", ["30x", "1w", "d", "", "-1d", "0s", True, [30]])
def test_a_bad_retention_is_a_config_error_and_changes_nothing(db_path: str, bad: object) -> None:
    with pytest.raises(td.ConfigError, match="retention must be a"):
        td.configure(db=db_path, retention=bad)
    assert td.stats()["db"] == db_path  # the previous configuration stays


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45), ("90m", 5400), ("12h", 43200), ("30d", 2592000), (" 1.5h ", 5400), (7, 7)],
)
def test_durations_take_s_m_h_d(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("engine", ENGINES)
def test_the_collector_expires_what_it_received(tmp_path: Path, engine: str) -> None:
    if engine == "chdb" and not HAVE_CHDB:
        pytest.skip("needs the clickhouse extra")
    db = new_store_name(engine, tmp_path)
    now_ns = time.time_ns()

    def span(trace: str, age_s: float) -> dict:
        start = now_ns - int(age_s * 1e9)
        return {
            "traceId": trace, "spanId": trace[:16], "name": "root", "kind": 2,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 1_000_000),
        }  # fmt: skip

    old, young = "a" * 32, "b" * 32
    payload = {"resourceSpans": [{"scopeSpans": [{"spans": [span(old, 7200), span(young, 60)]}]}]}
    with Collector(db, http_port=0, grpc_port=None, ack="written", retention="1h") as c:
        reply = httpx.post(c.http_endpoint, json=payload, timeout=30)
        assert reply.status_code == 200
        store = td.TraceStore(db)
        wait_for(lambda: store.count_traces() == 1)
        assert [t.info.trace_id for t in store.search_traces()] == [young]
        assert store.sql("SELECT source FROM deletions").to_pylist() == [{"source": "retention"}]


def test_a_backlog_expires_in_small_steps(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_retention, "CHUNK_TRACES", 2)  # a chunk per transaction...
    monkeypatch.setattr(_retention, "STEP_BUDGET_S", 0.0)  # ...and one chunk per run
    td.configure(db=db_path, retention="1h", auto_context=False)
    for hours in (9, 8, 7, 6, 5):
        trace_at("job", hours_ago(hours))
    assert td.flush(10)
    store = td.TraceStore(db_path)
    wait_for(lambda: store.count_traces() == 0)
    steps = [r["trace_count"] for r in store.sql("SELECT trace_count FROM deletions").to_pylist()]
    assert sum(steps) == 5 and len(steps) >= 3 and max(steps) <= 2


@pytest.mark.parametrize("retention", [f"{10**12}d", 1e308])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_retention_longer_than_64_bits_of_milliseconds_keeps_everything(
    engine: str,
    retention: object,
    db_path: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A retention of 10**12 days (a cutoff before -2**63 ms) keeps every trace. ClickHouse
    read the cutoff wrapped around and deleted every trace of the store (and recorded
    nothing); DuckDB failed each check with a ConversionException in the log (1e308 s: an
    OverflowError on both)."""
    name = db_path if engine == "duckdb" else new_store_name("chdb", tmp_path)
    td.configure(db=name, retention=retention, auto_context=False)
    ids = [trace_at("job", hours_ago(h)) for h in (50, 5, 0)]
    assert td.flush(10)
    time.sleep(0.8)  # four checks
    store = td.TraceStore(name)
    assert {t.info.trace_id for t in store.search_traces()} == set(ids)
    assert store.sql("SELECT count(*) AS n FROM deletions").to_pylist() == [{"n": 0}]
    assert "retention failed" not in caplog.text


def test_retention_creates_no_store_by_itself(tmp_path: Path) -> None:
    path = tmp_path / "never-written.duckdb"
    td.configure(db=str(path), retention="1h")
    time.sleep(0.6)  # three checks
    assert not path.exists()
