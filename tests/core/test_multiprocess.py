"""Several processes tracing into one embedded file at once (gunicorn workers, a pool).

DuckDB lets one process open a file at a time; each process's writer opens it for a short
transaction, lets go when idle, and retries with backoff while another holds it. Nothing is lost.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest

import traceduck as td
from traceduck.store.duckdb._connection import Database, LockedError

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


# A traceduck process's turn at the file: it writes, keeps the file while the test says, then
# writes once more and lets go (DuckDB checkpoints that last write into the file as it closes).
_TURN = """
import sys
from traceduck.store.duckdb._connection import Database

db = Database(sys.argv[1], max_hold_s=60)
with db.lease(write=True) as cur:
    cur.execute("CREATE TABLE t AS SELECT range AS a FROM range(1000)")
    cur.execute("CHECKPOINT")
    print("HOLDING", flush=True)
    sys.stdin.readline()
    cur.execute("INSERT INTO t SELECT range FROM range(1000, 2000)")
db.close()
print("CLOSED", flush=True)
"""

# The next process's turn: what it finds, and one write of its own.
_NEXT_TURN = """
import sys
from traceduck.store.duckdb._connection import Database

db = Database(sys.argv[1])
print("OPENING", flush=True)
with db.lease(write=True, timeout_s=60) as cur:
    found = cur.execute("SELECT count(*) FROM t").fetchone()[0]
    cur.execute("INSERT INTO t SELECT range FROM range(2000, 2010)")
db.close()
print(found, flush=True)
"""


@contextmanager
def _a_turn(path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process that holds ``path`` (its turn under way) until a line on its stdin."""
    proc = subprocess.Popen(
        [PYTHON, "-c", _TURN, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == "HOLDING", (line, proc.stderr.read() if proc.poll() is not None else "")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _let_go(holder: subprocess.Popen[str]) -> None:
    """The holder writes once more and closes the file."""
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "CLOSED"


def _strace_delaying_the_lock(path: Path) -> list[str] | None:
    """The strace command that holds every fcntl() on ``path`` 1.5 s, or None without strace
    (or without the right to trace). DuckDB reads the file's header, then locks the file with
    fcntl(): so the traced process reads the header at once and gets the lock 1.5 s later."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    probe = subprocess.run([strace, "-qq", "-o", os.devnull, "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    return [
        *(strace, "-f", "-qq", "-o", os.devnull, "-P", str(path)),
        *("-e", "trace=fcntl", "-e", "inject=fcntl:delay_enter=1500000"),
    ]


def test_a_process_that_opens_the_file_as_another_lets_go_keeps_what_the_other_wrote(
    tmp_path: Path,
) -> None:
    """The opener asks for the file while the holder writes; the holder writes once more and
    lets go while the opener's DuckDB is between reading the header and taking the lock (held
    there by strace). The opener must find and keep the holder's last write: it used to work on
    the header of before that write, and its own checkpoint overwrote it (a whole batch of
    traces gone, as in a worker pool under load), or it failed reading past the file's end."""
    path = tmp_path / "turns.duckdb"
    with _a_turn(path) as holder:
        strace = _strace_delaying_the_lock(path)
        if strace is None:
            pytest.skip("needs strace to hold DuckDB between its header read and its lock")
        opener = subprocess.Popen(
            [*strace, PYTHON, "-c", _NEXT_TURN, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        assert opener.stdout is not None and opener.stdout.readline().strip() == "OPENING"
        time.sleep(0.3)  # the opener is at the file: reading its header, or waiting its turn
        _let_go(holder)
        out, err = opener.communicate(timeout=60)
    assert opener.returncode == 0, err
    assert out.strip() == "2000"  # everything the holder wrote, its last write included
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT count(*), count(DISTINCT a) FROM t").fetchone() == (2010, 2010)
    finally:
        con.close()
    assert not path.with_name("turns.duckdb.lock").exists()  # the last to let go removed it


@pytest.mark.parametrize("read_only", [False, True])
def test_while_another_process_has_its_turn_the_file_is_not_opened_and_the_holder_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only: bool
) -> None:
    """A process waiting for its turn does not open the file with DuckDB (which reads the
    header before it tries the lock, and could keep that header once the lock is free): it
    waits for the holder's traceduck lock, and the error after its wait names the holder."""
    path = tmp_path / "held.duckdb"
    opened: list[Any] = []
    connect = duckdb.connect

    def counting_connect(database: Any = ":memory:", *args: Any, **kwargs: Any) -> Any:
        if str(database) == str(path):
            opened.append(database)
        return connect(database, *args, **kwargs)

    with _a_turn(path) as holder:
        monkeypatch.setattr(duckdb, "connect", counting_connect)
        db = Database(str(path), read_only=read_only)
        with pytest.raises(LockedError) as caught, db.lease(timeout_s=0.5):
            pass
        monkeypatch.undo()
        assert f"locked by process {holder.pid}" in str(caught.value)
        assert opened == []
        _let_go(holder)
    with db.lease() as cur:  # its turn now
        assert cur.execute("SELECT count(*) FROM t").fetchone() == (2000,)
    db.close()
