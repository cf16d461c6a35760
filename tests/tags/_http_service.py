"""A tiny HTTP service for the cascade test, run as its own process.

It extracts the caller's context from the request headers with OpenTelemetry's standard
propagators (traceparent + baggage), handles the request in a traced function, and starts a
new trace (a queued job) from the request's baggage alone. It prints its port, serves until
stdin closes, and exits (traceduck writes its traces at exit).
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry import context, propagate
from opentelemetry import trace as otel_trace

import traceduck as td

td.configure(db=sys.argv[1], service_name="downstream")


@td.trace
def lookup(key: str) -> str:
    return key.upper()


@td.trace
def handle(path: str) -> str:
    return lookup(path)


@td.trace
def queued_job() -> str:
    return "done"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        incoming = propagate.extract(self.headers)  # case-insensitive header lookup
        token = context.attach(incoming)
        try:
            handle(self.path)
            trace_id = td.get_last_trace_id()
        finally:
            context.detach(token)
        # A new trace started from the request's baggage (no parent span): e.g. a queued job.
        token = context.attach(otel_trace.set_span_in_context(otel_trace.INVALID_SPAN, incoming))
        try:
            queued_job()
        finally:
            context.detach(token)
        body = (trace_id or "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()  # until the test closes our stdin
server.shutdown()
server.server_close()
