"""Nothing is lost while the store writes, however fast the program traces; only a store that
cannot take traces makes traceduck drop, and then it says so.

The queues are shrunk (``max_queue_traces``) so that a few thousand calls overfill them as
100,000 would overfill the defaults.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import threading
import time
from pathlib import Path

import pytest

import traceduck as td
from traceduck._export import _processor

from ._helpers import PYTHON, count, subprocess_env
from .test_resilience import locked_by_another_process


@td.trace
def f(x: int) -> int:
    return x + 1


def _stored_everything(made: int) -> None:
    assert td.flush(timeout_s=60) is True, td.stats()
    stats = td.stats()
    assert stats["dropped_traces"] == 0 and stats["dropped_spans"] == 0, stats
    assert count("traces") == made


def test_a_tight_loop_overfilling_the_queue_stores_every_trace(db_path: str) -> None:
    td.configure(db=db_path, max_queue_traces=100)
    assert [f(i) for i in range(20_000)] == [i + 1 for i in range(20_000)]
    _stored_everything(20_000)


def test_four_threads_tracing_at_once_store_every_trace(db_path: str) -> None:
    td.configure(db=db_path, max_queue_traces=100)

    def work() -> None:
        for i in range(4_000):
            f(i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    _stored_everything(16_000)


def test_asyncio_tasks_store_every_trace(db_path: str) -> None:
    td.configure(db=db_path, max_queue_traces=100)

    @td.trace
    async def handle(i: int) -> int:
        await asyncio.sleep(0)
        return i

    async def main() -> list[int]:
        return await asyncio.gather(*(handle(i) for i in range(5_000)))

    assert asyncio.run(main()) == list(range(5_000))
    _stored_everything(5_000)


def test_traces_of_four_spans_with_tags_and_metadata_are_all_stored(db_path: str) -> None:
    td.configure(db=db_path, max_queue_traces=50)

    @td.trace
    def leaf(i: int) -> int:
        return i

    @td.trace
    def root(i: int) -> int:
        td.update_current_trace(tags={"i": i, "even": i % 2 == 0}, metadata={"n": i})
        return leaf(i) + leaf(i) + leaf(i)

    for i in range(2_000):
        root(i)
    _stored_everything(2_000)
    assert count("spans") == 8_000
    assert count("trace_tags", "WHERE key = 'i'") == 2_000
    assert td.search_traces("tags.i = 1999 AND metadata.n = 1999")[0].info.span_count == 4


_POOL_WORKER = """
import json, sys
import traceduck as td
from traceduck._export import _processor
path, calls = sys.argv[1], int(sys.argv[2])
td.configure(db=path, max_queue_traces=100, auto_context=False)

@td.trace
def f(x):
    return x + 1

for i in range(calls):
    f(i)
print(json.dumps({"flush": td.flush(timeout_s=120), "stats": td.stats()}), flush=True)
"""


def test_a_loop_tagging_every_trace_exclusively_stores_every_trace(db_path: str) -> None:
    """The README's ``latest`` tag on every trace: each write moves the tag along thousands of
    traces of its batch, and a healthy store keeps them all. A claim cost the DuckDB writer
    four statements (~3 ms) apiece, so one batch outlasted ``block_timeout_s`` and the queue
    dropped traces as if the store were stuck."""
    td.configure(db=db_path, max_queue_traces=1_000, block_timeout_s=1)

    @td.trace
    def tagged(x: int) -> int:
        td.update_current_trace(tags=[td.Tag("latest", exclusive=True)])
        return x

    assert [tagged(i) for i in range(3_000)] == list(range(3_000))
    last = td.get_last_trace_id()
    _stored_everything(3_000)
    holders = td.search_traces("tags.latest IS NOT NULL", max_results=10)
    assert [t.info.trace_id for t in holders] == [last]
    moves = td.sql(
        "SELECT count(*) AS n FROM tag_events WHERE key = 'latest' AND operation = 'moved'"
    ).to_pylist()[0]["n"]
    assert moves == 2_999


def test_four_processes_taking_turns_at_one_file_store_every_trace(tmp_path: Path) -> None:
    """A worker pool tracing flat out into one DuckDB file: each process waits for its turn
    at the file (and, with a full queue, its tracing thread waits too), nothing is dropped."""
    path = str(tmp_path / "pool.duckdb")
    calls = 4_000
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", _POOL_WORKER, path, str(calls)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        for _ in range(4)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    for report in reports:
        assert report["flush"] is True, report
        assert report["stats"]["dropped_traces"] == 0, report
        assert report["stats"]["written_traces"] == calls, report
    assert td.TraceStore(path).count_traces() == 4 * calls


def test_a_store_locked_for_a_while_is_waited_for_not_dropped(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the file for a second while the queues are full: the tracing
    thread waits for it (within ``block_timeout_s``), and every trace is stored."""
    monkeypatch.setattr(_processor, "DEFAULT_QUEUE_SPANS", 50)
    path = Path(db_path).with_name("busy.duckdb")
    with locked_by_another_process(path) as holder:
        td.configure(db=str(path), max_queue_traces=20, block_timeout_s=30)
        threading.Timer(1.0, holder.release).start()
        started = time.monotonic()
        assert [f(i) for i in range(300)] == [i + 1 for i in range(300)]
        waited = time.monotonic() - started
    assert waited >= 0.5  # the calls did wait for the other process's turn
    assert td.flush(timeout_s=30) is True
    assert td.stats()["dropped_traces"] == 0
    assert td.TraceStore(str(path)).count_traces() == 300


def test_a_store_locked_past_the_bound_drops_and_never_blocks_longer(
    db_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = Path(db_path).with_name("locked.duckdb")
    with locked_by_another_process(path) as holder:
        td.configure(db=str(path), max_queue_traces=50, block_timeout_s=0.5)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="traceduck"):
            assert [f(i) for i in range(2_000)] == [i + 1 for i in range(2_000)]
        # One wait of block_timeout_s at most, then no more waiting until a write succeeds.
        assert time.monotonic() - started < 0.5 + 5
        assert td.flush(timeout_s=0.5) is False
        stats = td.stats()
        assert stats["queued_traces"] <= 50 + 1024  # one export batch above the bound at most
        assert stats["dropped_traces"] >= 2_000 - 50 - 1024
        starts = [r for r in caplog.records if "dropping traces" in r.getMessage()]
        assert len(starts) == 1, [r.getMessage() for r in caplog.records]
        assert "lock" in starts[0].getMessage()
        holder.release()
    with caplog.at_level(logging.WARNING, logger="traceduck"):
        td.flush(timeout_s=30)  # False if a failed write dropped more after the flush above
        assert td.flush(timeout_s=30) is True  # every drop was reported by a flush before
        kept = td.TraceStore(str(path)).count_traces()
        summaries = [r.getMessage() for r in caplog.records if "were dropped" in r.getMessage()]
    assert kept + td.stats()["dropped_traces"] == 2_000
    assert len(summaries) == 1 and f"{td.stats()['dropped_traces']} traces" in summaries[0]


def test_an_unwritable_store_drops_at_once_and_flush_says_so_until_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that cannot be written (its directory is missing) drops without making the app
    wait; a later flush() is False because of that earlier drop, then True again."""
    missing = tmp_path / "not-yet"
    td.configure(db=str(missing / "t.duckdb"), max_queue_traces=20, block_timeout_s=30)
    with caplog.at_level(logging.WARNING, logger="traceduck"):
        started = time.monotonic()
        for i in range(500):
            f(i)
        deadline = time.monotonic() + 30
        while td.stats()["dropped_traces"] == 0:  # the writer finds out the store is unusable
            assert time.monotonic() < deadline, td.stats()
            f(0)
            time.sleep(0.01)
        assert time.monotonic() - started < 25  # never the 30 s of block_timeout_s
        missing.mkdir()  # the store can take traces again
        deadline = time.monotonic() + 30
        while td.stats()["written_traces"] == 0:
            assert time.monotonic() < deadline, td.stats()
            time.sleep(0.05)
        f(1)
        assert td.flush(timeout_s=30) is False  # traces were dropped before this call
        assert td.flush(timeout_s=30) is True  # and said so: nothing dropped since
    messages = [r.getMessage() for r in caplog.records]
    assert sum("dropping traces" in m for m in messages) == 1, messages
    assert sum("were dropped" in m for m in messages) == 1, messages


_LOUD = """
import traceduck as td
from traceduck._export import _processor
td.configure(db={db!r}, max_queue_traces=10)

@td.trace
def f(x):
    return x

for i in range(3000):
    f(i)
print("flush", td.flush(timeout_s=5), flush=True)
"""


def test_the_drop_warning_reaches_stderr_without_logging_set_up(tmp_path: Path) -> None:
    db = str(tmp_path / "missing-dir" / "t.duckdb")
    proc = subprocess.run(
        [PYTHON, "-c", _LOUD.format(db=db)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "flush False" in proc.stdout
    starts = [line for line in proc.stderr.splitlines() if "dropping traces" in line]
    assert len(starts) == 1, proc.stderr
    assert "does not exist" in starts[0]
    summary = [line for line in proc.stderr.splitlines() if "were dropped" in line]
    assert len(summary) == 1 and " traces (" in summary[0], proc.stderr


_DEAD_STORE_MEMORY = """
import json, os, sys
import traceduck as td
import duckdb, pandas, pyarrow  # the writer loads them anyway: not what this measures
from traceduck._export import _processor

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

td.configure(db=sys.argv[1], max_queue_bytes=int(sys.argv[2]))

@td.trace
def f(text, i):
    return len(text) + i

payload = "x" * 4000
f(payload, -1)
before = rss_mb()
peak = before
for i in range(int(sys.argv[3])):
    f(payload + str(i), i)  # every call captures a fresh 4 KB input
    if i % 1000 == 0:
        peak = max(peak, rss_mb())
td.flush(timeout_s=5)
peak = max(peak, rss_mb())
print(json.dumps({"growth_mb": peak - before, "stats": td.stats()}), flush=True)
"""


def test_memory_stays_bounded_in_bytes_on_a_dead_store(tmp_path: Path) -> None:
    """Traces with 4 KB inputs against a store that can never be written: what is held waits
    in queues bounded in bytes (here 8 MB for the write queue), not only in count."""
    db = str(tmp_path / "no-such-dir" / "t.duckdb")
    proc = subprocess.run(
        [PYTHON, "-c", _DEAD_STORE_MEMORY, db, str(8 * 2**20), "30000"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    stats = report["stats"]
    assert stats["dropped_traces"] > 20_000, stats
    assert stats["queued_traces"] < 8 * 2**20 / 4000, stats  # the byte bound, not the count
    # 30,000 x 4 KB inputs are 120 MB; what is held at once is the span queue (4,096 spans),
    # the batch under conversion and 8 MB of write queue (65 MB of RSS growth, measured).
    assert report["growth_mb"] < 100, report
