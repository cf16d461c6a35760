"""OTLP out to an endpoint nobody listens on: the program exits within about a second (the stock
exporter alone retries for ~7 s at every exit), the local store keeps every trace, and what was
not sent is counted, said on the traceduck logger and answered by flush()."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from traceduck import TraceStore

from .conftest import child_env

APP = """
import json, sys, time
import traceduck as td
td.configure(db=sys.argv[1], otlp_endpoint=sys.argv[2], otlp_protocol=sys.argv[3])

@td.trace
def job(i):
    return i

for i in range(3):
    job(i)
if sys.argv[4] == "flush":
    started = time.monotonic()
    first = td.flush(10)
    first_s = time.monotonic() - started
    job(3)
    started = time.monotonic()
    second = td.flush(10)
    second_s = time.monotonic() - started
    print(json.dumps({"first": first, "second": second, "second_s": second_s,
                      "stats": td.stats()}))
print(json.dumps({"exit_at": time.time()}), flush=True)
"""


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening, then closed: connections are refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(db: Path, protocol: str, mode: str, **env: str) -> tuple[list[dict], str, float]:
    port = _closed_port()
    endpoint = f"http://127.0.0.1:{port}" if protocol != "grpc" else f"127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-c", APP, str(db), endpoint, protocol, mode],
        env=child_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = proc.communicate(timeout=60)
    ended = time.time()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    return lines, err, ended - lines[-1]["exit_at"]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_exit_is_bounded_and_the_local_store_keeps_every_trace(
    tmp_path: Path, protocol: str
) -> None:
    db = tmp_path / "local.duckdb"
    _lines, err, exit_s = _run(db, protocol, "exit")
    assert exit_s < 3.0, (exit_s, err)  # OTLP waits 1 s; the stock exporter took ~7-8 s
    assert len(TraceStore(str(db)).search_traces()) == 3
    assert "3 traces (3 spans) were dropped at the OTLP exporter to" in err, err


def test_flush_says_what_otlp_did_not_send_and_stops_waiting_for_it(tmp_path: Path) -> None:
    db = tmp_path / "local.duckdb"
    # The exporter's own deadline (OTEL_EXPORTER_OTLP_TIMEOUT) cut to 1 s: the first flush
    # waits for its retries, then knows the endpoint fails.
    lines, err, exit_s = _run(db, "http/protobuf", "flush", OTEL_EXPORTER_OTLP_TIMEOUT="1")
    report = lines[0]
    assert report["first"] is False  # three spans not sent: the flush says so
    assert report["second"] is False and report["second_s"] < 0.5  # no second wait
    assert report["stats"]["otlp_dropped_spans"] == 3
    assert report["stats"]["written_traces"] == 4 and report["stats"]["dropped_traces"] == 0
    assert exit_s < 3.0, (exit_s, err)
    assert len(TraceStore(str(db)).search_traces()) == 4
    assert "dropping traces at the OTLP exporter to" in err, err


def test_traceduck_run_says_what_otlp_did_not_send(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "import traceduck as td\n@td.trace\ndef job(i):\n    return i\njob(1); job(2)\n"
    )
    db = tmp_path / "run.duckdb"
    done = subprocess.run(
        [sys.executable, "-m", "traceduck", "run", "--db", str(db), "--", sys.executable,
         str(script)],
        env=child_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{_closed_port()}"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 spans not sent over OTLP" in done.stderr, done.stderr
    assert len(TraceStore(str(db)).search_traces()) == 2


class _SlowCollector(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that takes every batch, each after a pause (a distant collector)."""

    pause_s = 0.35
    spans = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        time.sleep(self.pause_s)
        with self.lock:
            type(self).spans += sum(
                len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans
            )
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


def test_a_slow_endpoint_that_takes_batches_gets_everything_queued_at_exit(
    tmp_path: Path,
) -> None:
    # 2,000 one-span traces at exit: four batches of 512 at 0.35 s each, more than the 1 s an
    # endpoint may stay silent; it is never silent that long, so exit waits and sends it all.
    _SlowCollector.spans = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowCollector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        db = tmp_path / "local.duckdb"
        app = (
            "import sys, traceduck as td\n"
            "td.configure(db=sys.argv[1], otlp_endpoint=sys.argv[2])\n"
            "@td.trace\ndef job(i):\n    return i\n"
            "for i in range(2000):\n    job(i)\n"
        )
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        done = subprocess.run(
            [sys.executable, "-c", app, str(db), endpoint],
            env=child_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert _SlowCollector.spans == 2000, done.stderr
        assert "dropped" not in done.stderr, done.stderr
        assert len(TraceStore(str(db)).search_traces(max_results=5000)) == 2000
    finally:
        server.shutdown()
        server.server_close()
