"""Helpers for tests that run the collector or its clients in other processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .conftest import child_env

LOAD_CLIENT = """
import json, sys
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
endpoint, n = sys.argv[1], int(sys.argv[2])
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint),
                                               max_queue_size=100_000))
tracer = provider.get_tracer("load")
ids = []
for i in range(n):
    with tracer.start_as_current_span("job", attributes={"i": i}) as root:
        for step in ("fetch", "store"):
            with tracer.start_as_current_span(step):
                pass
    ids.append(format(root.get_span_context().trace_id, "032x"))
assert provider.force_flush(60_000)
provider.shutdown()
print(json.dumps(ids))
"""


@dataclass
class CollectorProcess:
    proc: subprocess.Popen[str]
    http_port: int
    grpc_port: int

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1/traces"

    def terminate(self, timeout: float = 60) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err


def start_collector(db: str, *args: str) -> CollectorProcess:
    """`traceduck collector` in a child process on free ports (read from its startup line)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "traceduck", "collector", "--db", db, "--http-port", "0",
         "--grpc-port", "0", *args],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    http = re.search(r"OTLP/HTTP http://127\.0\.0\.1:(\d+)/v1/traces", line)
    grpc = re.search(r"OTLP/gRPC 127\.0\.0\.1:(\d+)", line)
    if not http or not grpc:
        proc.kill()
        raise AssertionError(f"collector did not start: {line!r} {proc.stderr.read()!r}")
    return CollectorProcess(proc, int(http.group(1)), int(grpc.group(1)))


def one_span_traces(n: int) -> tuple[bytes, list[str]]:
    """An encoded request of ``n`` one-span traces, and their trace ids."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    ids = []
    for i in range(n):
        trace_id = os.urandom(16)
        span = scope.spans.add(name=f"t{i}", trace_id=trace_id, span_id=os.urandom(8))
        span.start_time_unix_nano, span.end_time_unix_nano = 1_000 + i, 2_000 + i
        ids.append(trace_id.hex())
    return request.SerializeToString(), ids
