"""The collector as a separate process: concurrent load, SIGTERM, and live reads meanwhile."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import requests

from traceduck import TraceStore
from traceduck.collector import Collector

from ._client import LOAD_CLIENT, one_span_traces, start_collector
from .conftest import child_env

PROTOBUF = {"Content-Type": "application/x-protobuf"}
CLIENTS, TRACES_PER_CLIENT = 4, 200


def test_four_processes_load_every_trace_exactly_once(collector: Collector, db: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", LOAD_CLIENT, collector.http_endpoint, str(TRACES_PER_CLIENT)],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(CLIENTS)
    ]
    sent: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        sent.extend(json.loads(out))
    assert len(set(sent)) == CLIENTS * TRACES_PER_CLIENT
    counts = TraceStore(db).sql(
        "SELECT (SELECT count(*) FROM traces), (SELECT count(DISTINCT trace_id) FROM traces), "
        "(SELECT count(*) FROM spans), (SELECT count(DISTINCT span_id) FROM spans), "
        "(SELECT count(*) FROM traces WHERE span_count = 3 AND name = 'job')"
    )
    total = CLIENTS * TRACES_PER_CLIENT
    assert [col[0].as_py() for col in counts.columns] == [total, total, total * 3, total * 3, total]
    stored = {r.as_py() for r in TraceStore(db).sql("SELECT trace_id FROM traces").column(0)}
    assert stored == set(sent)


def test_resent_request_is_stored_once(collector: Collector, db: str) -> None:
    body, ids = one_span_traces(5)
    for _ in range(2):  # a client retrying after a lost response
        assert (
            requests.post(collector.http_endpoint, data=body, headers=PROTOBUF).status_code == 200
        )
    store = TraceStore(db)
    counts = store.sql("SELECT count(*), count(DISTINCT trace_id) FROM spans")
    assert [c[0].as_py() for c in counts.columns] == [5, 5]
    assert {r.as_py() for r in store.sql("SELECT trace_id FROM traces").column(0)} == set(ids)


def test_sigterm_writes_everything_accepted(tmp_path) -> None:
    db = str(tmp_path / "term.duckdb")
    # ack=queued answers before writing: SIGTERM must still write every accepted span.
    server = start_collector(db, "--ack", "queued")
    sent: list[str] = []
    try:
        with requests.Session() as session:
            for _ in range(20):
                body, ids = one_span_traces(100)
                reply = session.post(server.http_endpoint, data=body, headers=PROTOBUF)
                assert reply.status_code == 200
                sent.extend(ids)
    finally:
        code, err = server.terminate()
    assert code == 0, err
    assert "2,000 spans accepted, 2,000 written" in err
    stored = {r.as_py() for r in TraceStore(db).sql("SELECT trace_id FROM traces").column(0)}
    assert stored == set(sent)


# serve() in a child whose main thread gets one more SIGTERM at each Python call its SIGTERM
# handler makes (the handler found with signal.getsignal), as a second signal arriving at any
# moment of the handling would: seen once under load, forced here.
_SIGTERM_DURING_THE_HANDLER = """
import os, signal, sys
from traceduck.collector import Collector, serve
sent = []
def hook(frame, event, arg):
    if event != "call" or len(sent) >= 20:
        return None
    handler = getattr(signal.getsignal(signal.SIGTERM), "__code__", None)
    depth, f = 0, frame.f_back
    while f is not None:
        depth += f.f_code is handler
        f = f.f_back
    if depth == 1 and frame.f_code is not handler:  # inside the first handler only
        sent.append(1)
        os.kill(os.getpid(), signal.SIGTERM)
    return None
sys.settrace(hook)
sys.exit(serve(Collector(sys.argv[1], http_port=0, grpc_port=0)))
"""


def test_a_second_sigterm_during_the_first_still_stops_it(tmp_path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SIGTERM_DURING_THE_HANDLER, str(tmp_path / "t.duckdb")],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "OTLP/HTTP" in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the collector did not exit within 20 s of two SIGTERMs") from None
    assert proc.returncode == 0, err
    assert "stopped; 0 spans accepted, 0 written" in err


def test_live_queries_while_the_collector_receives(tmp_path) -> None:
    """CLI search and TraceStore from other processes work while a steady stream arrives."""
    db = str(tmp_path / "live.duckdb")
    server = start_collector(db)  # the default: --ack queued
    sent: list[str] = []
    stop = threading.Event()
    failures: list[str] = []

    def stream() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                body, ids = one_span_traces(20)
                reply = session.post(server.http_endpoint, data=body, headers=PROTOBUF)
                if reply.status_code != 200:
                    failures.append(reply.text)
                sent.extend(ids)
                time.sleep(0.02)

    sender = threading.Thread(target=stream)
    sender.start()
    try:
        status_page = f"http://127.0.0.1:{server.http_port}/"
        deadline = time.monotonic() + 30
        while requests.get(status_page, timeout=10).json()["written_spans"] < 5:
            assert time.monotonic() < deadline, "the collector wrote nothing within 30 s"
            time.sleep(0.05)
        seen = []
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-m", "traceduck", "search", "--db", db, "--json", "--limit", "5"],
                env=child_env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            assert len(json.loads(done.stdout)) == 5
            store_count = subprocess.run(
                [sys.executable, "-c",
                 "import sys; from traceduck import TraceStore; "
                 "print(len(TraceStore(sys.argv[1]).search_traces(max_results=None)))", db],
                env=child_env(),
                capture_output=True,
                text=True,
                timeout=60,
            )  # fmt: skip
            assert store_count.returncode == 0, store_count.stderr
            seen.append(int(store_count.stdout))
        assert seen == sorted(seen) and seen[-1] > seen[0]  # live data, growing
    finally:
        stop.set()
        sender.join()
        code, err = server.terminate()
    assert code == 0, err
    assert not failures
    stored = {r.as_py() for r in TraceStore(db).sql("SELECT trace_id FROM traces").column(0)}
    assert stored == set(sent)


def _collector_cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "traceduck", "collector", "--db", db, *args],
        env=child_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_grpc_port_in_use_is_one_line_not_a_traceback(tmp_path) -> None:
    import socket

    with socket.socket() as taken:  # as a second collector on the default ports meets it
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        done = _collector_cli(str(tmp_path / "t.duckdb"), "--http-port", "0", "--grpc-port", port)
    assert done.returncode == 2
    assert "cannot bind OTLP/gRPC to 127.0.0.1:" + port in done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_a_port_past_65535_is_a_usage_error_not_a_traceback(tmp_path) -> None:
    for option in ("--http-port", "--grpc-port"):
        done = _collector_cli(str(tmp_path / "t.duckdb"), option, "70000")
        assert done.returncode == 2, done.stderr
        assert f"Invalid value for '{option}'" in done.stderr
        assert "Traceback" not in done.stderr, done.stderr
