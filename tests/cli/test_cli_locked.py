"""A store held by another process: the command waits briefly, then explains in one line."""

from __future__ import annotations

import subprocess
import time

from ._helpers import PYTHON, REQUESTS, child_env

HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])          # read-write: no other process may open the file
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold(path: str, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [PYTHON, "-c", HOLDER, path, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def _cli(*args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = subprocess.run(
        [PYTHON, "-m", "traceduck", *args],
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, time.monotonic() - start


def test_a_locked_store_is_explained_in_one_line_within_the_wait(db: str) -> None:
    holder = _hold(db, 30)
    try:
        done, elapsed = _cli("search", "--db", db, TRACEDUCK_LOCK_TIMEOUT_S="1")
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "locked by process" in lines[0] and "waited 1 s" in lines[0]
    assert "TRACEDUCK_LOCK_TIMEOUT_S" in lines[0]  # says what to do
    assert elapsed < 15  # the wait is bounded (interpreter start-up included)


def test_a_briefly_held_store_is_waited_for(db: str) -> None:
    holder = _hold(db, 0.5)
    try:
        done, _ = _cli("sql", "SELECT count(*) AS n FROM traces", "--json", "--db", db)
    finally:
        holder.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    assert f'"n": {len(REQUESTS) + 2}' in done.stdout
