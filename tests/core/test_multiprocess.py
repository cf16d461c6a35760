"""Several processes tracing into one embedded file at once (gunicorn workers, a pool).

DuckDB lets one process open a file at a time; each process's writer opens it for a short
transaction, lets go when idle, and retries with backoff while another holds it. Nothing is lost.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import traceduck as td

from ._helpers import PYTHON, subprocess_env

_WORKER = """
import sys, time
import traceduck as td

worker, traces, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
td.configure(db=path, auto_context=False)

@td.trace
def step(i):
    return i + 1

@td.trace
def handle(i):
    td.update_current_trace(tags={"worker": worker, "i": i})
    return step(i) + step(i)

for i in range(traces):
    assert handle(i) == 2 * i + 2
    if i % 50 == 0:
        time.sleep(0.05)  # a request-shaped trickle, so the writers interleave
print("done", worker, flush=True)
"""


def test_four_processes_trace_into_one_file_and_every_trace_is_there_once(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "shared.duckdb")
    workers, traces = 4, 300
    env = subprocess_env()
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", _WORKER, str(w), str(traces), path],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for w in range(workers)
    ]
    # Meanwhile, read the store as `traceduck search` would: every read succeeds (waiting its
    # turn for the file) and sees a growing number of whole traces.
    reader = td.TraceStore(path, read_only=True)
    seen: list[int] = []
    while any(p.poll() is None for p in procs) and time.monotonic() - started < 120:
        rows = reader.sql("SELECT count(*) AS n FROM traces").to_pylist()
        seen.append(rows[0]["n"])
        time.sleep(0.1)
    assert seen == sorted(seen)
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert out.startswith("done"), (out, err)
        assert "Traceback" not in err, err
    assert time.monotonic() - started < 120

    store = td.TraceStore(path)
    assert len(seen) >= 1
    rows = store.sql(
        "SELECT tags->>'$.worker' AS worker, count(*) AS n, count(DISTINCT tags->>'$.i') AS i, "
        "sum(span_count) AS spans FROM traces GROUP BY ALL ORDER BY worker"
    ).to_pylist()
    assert rows == [
        {"worker": str(w), "n": traces, "i": traces, "spans": 3 * traces} for w in range(workers)
    ]
    assert store.sql("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": workers * traces * 3}]
