"""``Collector``: the OTLP/HTTP and OTLP/gRPC servers around one store, started and stopped.

Stopping stops accepting first (in-flight requests finish), then writes everything accepted.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from typing import Any

import uvicorn

from .._duration import parse_duration
from ._grpc import create_server, url_host
from ._http import create_app
from ._ingest import DEFAULT_MAX_BODY_BYTES, Ingest

__all__ = ["Collector", "serve"]


class Collector:
    """An OTLP receiver writing into the DuckDB store at ``db``.

    >>> with Collector("traces.duckdb", http_port=0, grpc_port=0) as c:
    ...     print(c.http_endpoint, c.grpc_endpoint)

    ``http_port``/``grpc_port``: 0 picks a free port, None turns that transport off.
    ``ack="queued"`` (default) answers once the spans are queued; they are committed within the
    writer's interval (~1 s) and at stop. ``"written"`` answers once they are committed.
    ``retention`` ("30d"): traces whose root started longer ago expire in the background.
    """

    def __init__(
        self,
        db: str,
        *,
        host: str = "127.0.0.1",
        http_port: int | None = 4318,
        grpc_port: int | None = 4317,
        token: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        ack: str = "queued",
        retention: Any = None,
    ) -> None:
        self.db = db
        self.host = host
        self.max_body_bytes = max_body_bytes
        retention_s = None if retention is None else parse_duration(retention, "retention")
        self.ingest = Ingest(db, token=token, ack=ack, retention_s=retention_s)
        self._http_port = http_port
        self._grpc_port = grpc_port
        self.http_port: int | None = None
        self.grpc_port: int | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc: Any = None
        self._stopped = False

    @property
    def http_endpoint(self) -> str | None:
        if self.http_port is None:
            return None
        return f"http://{url_host(self.host)}:{self.http_port}/v1/traces"

    @property
    def grpc_endpoint(self) -> str | None:
        return None if self.grpc_port is None else f"{url_host(self.host)}:{self.grpc_port}"

    def start(self) -> Collector:
        """Check the store, then serve; ``StorageError`` (nothing served) when the store
        cannot take traces: a collector that accepted them would have to drop them all."""
        try:
            self.ingest.exporter.check_store()
            if self._grpc_port is not None:
                self._grpc, self.grpc_port = create_server(
                    self.ingest, self.host, self._grpc_port, self.max_body_bytes
                )
                self._grpc.start()
            if self._http_port is not None:
                self._start_http()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_http(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._http_port or 0))
        sock.listen(1024)
        sock.setblocking(False)
        self.http_port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.ingest, self.max_body_bytes),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=10,
            limit_concurrency=1000,
        )
        self._uvicorn = uvicorn.Server(config)
        self._http_thread = threading.Thread(
            target=self._uvicorn.run,
            kwargs={"sockets": [sock]},
            name="traceduck-collector-http",
            daemon=True,
        )
        self._http_thread.start()
        deadline = time.monotonic() + 10
        while not self._uvicorn.started and self._http_thread.is_alive():
            if time.monotonic() > deadline:
                raise RuntimeError("the OTLP/HTTP server did not start within 10 s")
            time.sleep(0.005)
        if not self._uvicorn.started:
            raise RuntimeError("the OTLP/HTTP server failed to start")

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop accepting, finish in-flight requests, write everything accepted.

        True when every accepted span is in the store."""
        if self._stopped:
            return True
        self._stopped = True
        deadline = time.monotonic() + timeout_s
        waits = []
        if self._grpc is not None:
            waits.append(self._grpc.stop(grace=5))
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        for event in waits:
            event.wait(max(deadline - time.monotonic(), 0.1))
        if self._http_thread is not None:
            self._http_thread.join(max(deadline - time.monotonic(), 0.1))
        return self.ingest.close(max(deadline - time.monotonic(), 1.0))

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(collector: Collector, announce: bool = True) -> int:
    """Run until SIGTERM/SIGINT, then stop and write everything accepted; the exit code."""
    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        # Takes no lock (Event.set would): a second signal runs this handler again inside the
        # first, or inside Event.wait while it holds its lock, and would wedge the main thread.
        received.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        collector.start()
        if announce:
            parts = [f"traceduck collector writing to {collector.db}"]
            if collector.http_endpoint:
                parts.append(f"OTLP/HTTP {collector.http_endpoint}")
            if collector.grpc_endpoint:
                parts.append(f"OTLP/gRPC {collector.grpc_endpoint}")
            print("; ".join(parts), flush=True)
        while not received:
            time.sleep(0.1)  # the handler runs during the sleep: stopping starts within 0.1 s
        print("traceduck collector: stopping, writing what was accepted", file=sys.stderr)
        ok = collector.stop()
        stats = collector.ingest.stats()
        accepted = stats["accepted_spans"]
        print(
            f"traceduck collector: stopped; {accepted:,} {'span' if accepted == 1 else 'spans'}"
            " accepted, "
            f"{stats['written_spans']:,} written, {stats['rejected_spans']:,} rejected",
            file=sys.stderr,
            flush=True,
        )
        return 0 if ok else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
