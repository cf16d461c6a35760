"""A traced program that forks (gunicorn's preload, Celery's prefork, multiprocessing): the
child writes its own traces, the parent's are written once, nobody hangs or crashes at exit.

DuckDB is not fork-safe: a child that inherits the parent's open database and closes it at
exit checkpoints the parent's state of the fork's moment over the file. Each scenario runs in
a fresh interpreter (forking pytest itself would duplicate the test run).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ._helpers import PYTHON, child_env

_FORK = """
import json, os, sys, threading, time
import traceduck as td

td.configure(db=sys.argv[1])

@td.trace
def work(who):
    return who

work("parent-before")
assert td.flush(10)
td.search_traces(max_results=1)  # the store is open in this process when it forks
stop, started = threading.Event(), threading.Event()
busy = sys.argv[2] == "busy"
def keep_tracing():
    i = 0
    while not stop.is_set():
        work(f"thread-{i}")
        i += 1
        if i == 500:
            started.set()
        time.sleep(0.0005)  # busy, not flooding: a full queue would drop (and count) traces
tracer = threading.Thread(target=keep_tracing, daemon=True)
if busy:  # another thread traces (and the writer writes) while the process forks
    tracer.start()
    assert started.wait(60)
pid = os.fork()
if pid == 0:
    for i in range(20):
        work(f"child-{i}")
    flushed = td.flush(10)
    print(json.dumps({"child_flushed": flushed, "child_stats": td.stats()}), flush=True)
    sys.exit(0)
work("parent-after")
_, status = os.waitpid(pid, 0)
stop.set()
if busy:
    tracer.join()
assert td.flush(10)
rows = td.sql("SELECT request_preview AS who FROM traces").to_pylist()
print(json.dumps({"exit": os.waitstatus_to_exitcode(status), "who": [r["who"] for r in rows]}))
"""


@pytest.mark.parametrize("moment", ["idle", "busy"])
def test_a_forked_child_writes_its_own_traces_and_the_parents_survive(
    tmp_path: Path, moment: str
) -> None:
    done = subprocess.run(
        [PYTHON, "-c", _FORK, str(tmp_path / "f.duckdb"), moment],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    child, parent = (json.loads(line) for line in done.stdout.splitlines()[-2:])
    assert child["child_flushed"], child
    assert child["child_stats"]["written_traces"] == 20
    assert child["child_stats"]["dropped_spans"] == 0  # the parent's queue is not the child's
    assert parent["exit"] == 0  # not killed by a signal (it crashed at exit before)
    who = [json.loads(w)["who"] for w in parent["who"]]
    assert len(who) == len(set(who))  # every trace once
    names = set(who)
    expected = {"parent-before", "parent-after"} | {f"child-{i}" for i in range(20)}
    assert expected <= names
    if moment == "busy":
        traced = sorted(int(n[len("thread-") :]) for n in names if n.startswith("thread-"))
        assert traced == list(range(len(traced)))  # none of the parent's thread's traces lost


_MULTIPROCESSING = """
import json, multiprocessing, sys
import traceduck as td

@td.trace
def work(who):
    return who

def target(i):
    work(f"child-{i}")

if __name__ == "__main__":
    td.configure(db=sys.argv[1])
    work("parent")
    ctx = multiprocessing.get_context(sys.argv[2])
    processes = [ctx.Process(target=target, args=(i,)) for i in range(2)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
    with ctx.Pool(2) as pool:
        pool.map(target, [10, 11, 12])
        pool.close()
        pool.join()
    assert td.flush(10)
    rows = td.sql("SELECT request_preview AS who FROM traces").to_pylist()
    print(json.dumps({"exits": [p.exitcode for p in processes], "who": [r["who"] for r in rows]}))
"""


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_multiprocessing_children_write_their_traces_before_they_end(
    tmp_path: Path, start: str
) -> None:
    # A forked multiprocessing child ends with os._exit(), skipping atexit: traceduck shuts
    # down with the child's own finalizers. A spawned child exits normally (atexit runs); it
    # finds the store through TRACEDUCK_DB, and its target by importing the program (a file).
    db = str(tmp_path / "m.duckdb")
    program = tmp_path / "program.py"
    program.write_text(_MULTIPROCESSING)
    done = subprocess.run(
        [PYTHON, str(program), db, start],
        env=child_env(TRACEDUCK_DB=db),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["exits"] == [0, 0]
    who = sorted(json.loads(w)["who"] for w in result["who"])
    assert who == ["child-0", "child-1", "child-10", "child-11", "child-12", "parent"]


_FORK_CHDB = """
import json, os, sys, time
import traceduck as td

td.configure(db=sys.argv[1])

@td.trace
def work(who):
    return who

work("parent-before")
assert td.flush(30)
pid = os.fork()
if pid == 0:
    assert [work(f"child-{i}") for i in range(5)] == [f"child-{i}" for i in range(5)]
    started = time.monotonic()
    flushed = td.flush(20)
    took = time.monotonic() - started
    try:
        td.search_traces()
        read = "no error"
    except td.StorageError as exc:
        read = str(exc)
    print(json.dumps({"flushed": flushed, "took": took, "read": read}), flush=True)
    sys.exit(3)  # a normal exit: atexit, then the C library's exit handlers
deadline = time.monotonic() + 60
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        raise SystemExit("the forked child did not exit")
    time.sleep(0.05)
work("parent-after")
assert td.flush(30)
who = sorted(t.info.request_preview for t in td.search_traces(max_results=None))
print(json.dumps({"exit": os.waitstatus_to_exitcode(status), "who": who}))
"""


def test_a_child_forked_from_a_chdb_process_is_told_and_exits(tmp_path: Path) -> None:
    # chdb's engine belongs to the process that started it: a forked child cannot use it, and
    # its exit handlers wait for the engine's threads, which the child does not have (a child
    # that ended normally hung for ever). The child is told in one line, its traces are
    # dropped and counted, it exits with its own status, and the parent goes on.
    done = subprocess.run(
        [PYTHON, "-c", _FORK_CHDB, f"chdb://{tmp_path / 'ch'}"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stderr
    child, parent = (json.loads(line) for line in done.stdout.splitlines()[-2:])
    assert child["flushed"] is False and child["took"] < 5
    assert "forked" in child["read"] and "chdb" in child["read"]
    assert "5 traces (5 spans) were dropped" in done.stderr
    assert parent["exit"] == 3
    assert [json.loads(w)["who"] for w in parent["who"]] == ["parent-after", "parent-before"]


_FORK_SERVER = """
import os, sys
from traceduck.errors import StorageError
from traceduck.store._names import parse_store_name
from traceduck.store.clickhouse._client import Connection

parent_client = object()  # stands for the parent's clickhouse-connect client and its sockets
conn = Connection(parse_store_name("clickhouse://127.0.0.1:1/traceduck"), parent_client)
pid = os.fork()
if pid == 0:
    try:
        print("child uses the parent's client" if conn.client is parent_client else "?")
    except StorageError as exc:  # it opened its own: nothing listens on port 1
        print("child opened its own:", exc)
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
print("parent keeps its own" if conn.client is parent_client else "parent lost its client")
"""


def test_a_forked_child_opens_its_own_connection_to_a_clickhouse_server(tmp_path: Path) -> None:
    # Two processes on one HTTP connection read each other's answers: the child connects anew
    # (here to a port nobody listens on, which says so), the parent keeps its client.
    done = subprocess.run(
        [PYTHON, "-c", _FORK_SERVER], env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    child, parent = done.stdout.splitlines()[-2:]
    assert child.startswith("child opened its own: cannot reach ClickHouse at"), child
    assert parent == "parent keeps its own"
