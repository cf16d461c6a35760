"""What both transports share: the store writer, the token check, admission and durability.

Every request goes through ``Ingest.accept``: decode, refuse when the write queue is too long
(the client retries: HTTP 503, gRPC UNAVAILABLE), queue the traces on a ``DuckDBSpanExporter``
and, with ``ack="written"``, wait until its writer has committed them before answering, and
answer with what became of them (a trace the store refused is a rejected span).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable

from .._export._duckdb import DuckDBSpanExporter
from .._export._writequeue import Receipt
from ._decode import Decoded

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_QUEUED_TRACES = 200_000
ACK_MODES = ("written", "queued")


class Unavailable(RuntimeError):
    """The store cannot take more now (queue full, store locked or failing): retry later."""


class Ingest:
    """Decoded requests -> the store, for the HTTP and gRPC servers alike."""

    def __init__(
        self,
        db: str,
        *,
        token: str | None = None,
        ack: str = "queued",
        max_queued_traces: int = DEFAULT_MAX_QUEUED_TRACES,
        write_timeout_s: float = 10.0,
        retention_s: float | None = None,
    ) -> None:
        if ack not in ACK_MODES:
            raise ValueError(f"ack must be one of {ACK_MODES}, not {ack!r}")
        self.db = db
        self.token = token
        self.ack = ack
        self.max_queued_traces = max_queued_traces
        self.write_timeout_s = write_timeout_s
        # The exporter's own bound drops the oldest traces; the collector refuses new requests
        # long before that (the client keeps them and retries), so nothing accepted is dropped.
        self.exporter = DuckDBSpanExporter(
            db, source="otlp", max_queue_traces=max_queued_traces * 4, retention_s=retention_s
        )
        self._lock = threading.Lock()
        self.accepted_spans = 0
        self.rejected_spans = 0
        self.requests = 0
        self.closed = False

    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header value carries the bearer token (if one is set)."""
        if self.token is None:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.token.encode())

    def accept(self, decode: Callable[[bytes], Decoded], body: bytes) -> Decoded:
        """Decode and store one request; raises BadRequest (from decode) or Unavailable."""
        if self.closed:
            raise Unavailable("the collector is shutting down")
        decoded = decode(body)
        if self.exporter.queued_traces >= self.max_queued_traces:
            raise Unavailable(
                f"write queue full ({self.exporter.queued_traces:,} traces); retry later"
            )
        if decoded.bundles:
            if self.ack == "written":
                self._write(decoded)
            else:
                self.exporter.enqueue(decoded.bundles)
        with self._lock:
            self.requests += 1
            self.accepted_spans += decoded.spans
            self.rejected_spans += decoded.rejected
        return decoded

    def _write(self, decoded: Decoded) -> None:
        """Queue the request's traces and wait until each is written or dropped: a trace the
        store refused (bad data, dropped for good) becomes a rejected span of the answer's
        partial success; one dropped because the store cannot take traces, or not written in
        time, makes the answer Unavailable (the client resends; the store skips the spans it
        already has)."""
        receipt = Receipt()
        self.exporter.enqueue(decoded.bundles, receipt)
        try:
            written = self._wait_written()
        finally:
            self.exporter.unwatch(decoded.bundles)
        if receipt.unwritable is not None:
            raise Unavailable(f"spans not written: {receipt.unwritable}")
        if not written:  # queued, and written as soon as the store takes them
            raise Unavailable(
                f"spans queued but not yet written: {self.exporter.last_error or 'timeout'}"
            )
        if receipt.refused_spans:
            decoded.spans -= receipt.refused_spans
            decoded.rejected += receipt.refused_spans
            decoded.errors.extend(receipt.refused)

    def _wait_written(self) -> bool:
        """Block until the writer has committed everything queued (retrying while a reader
        holds the file), up to ``write_timeout_s``."""
        deadline = time.monotonic() + self.write_timeout_s
        while True:
            if self.exporter.flush(max(deadline - time.monotonic(), 0)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def close(self, timeout_s: float = 30.0) -> bool:
        """Write everything accepted, then stop the writer. True if all was written."""
        self.closed = True
        written = self.exporter.flush(timeout_s)
        self.exporter.shutdown(timeout_millis=int(timeout_s * 1000))
        return written

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = {
            "requests": self.requests,
            "accepted_spans": self.accepted_spans,
            "rejected_spans": self.rejected_spans,
        }
        out.update(self.exporter.stats())
        return out
