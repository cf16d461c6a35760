"""What stands between traceduck's span processor and its exporter.

``CountingBatchSpanProcessor``: the SDK's BatchSpanProcessor, with the spans it could not send
counted; it is OTLP's own queue (``OtlpFanOut``), so a slow or unreachable collector never holds
up the store's writes. The SDK drops a span when its queue is full and only logs it, and the
stock exporter only logs a batch it gave up on (after ~7 s of retries); traceduck's
``stats()["otlp_dropped_spans"]`` and ``flush()`` say so too, and an export that fails starts an
episode said once on the ``traceduck`` logger (``Losses``). Its shutdown is bounded (the stock
one waits for the exporter's retries, seconds at every exit while the endpoint is down): an
endpoint that takes batches is given what is queued, one that takes nothing for a second is
given up on, and what is not sent by then is counted as dropped.
``WrappedExporter``: the base of the exporters placed in front of another.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from .. import _runtime
from ._loss import Losses

# How long exit (and shutdown()) waits for the OTLP endpoint to take a batch of what is queued:
# an endpoint nobody listens on would otherwise hold every exit for the exporter's retries
# (1 s, 2 s, 4 s: ~7 s). An endpoint that keeps taking batches is waited for, up to
# OTLP_EXIT_LIMIT_S in all: a large queue to a slow but healthy collector is sent, not cut.
OTLP_EXIT_TIMEOUT_S = _runtime.env_seconds("TRACEDUCK_OTLP_EXIT_TIMEOUT_S", 1.0)
OTLP_EXIT_LIMIT_S = 30.0

_LIVE: weakref.WeakSet[CountingBatchSpanProcessor] = weakref.WeakSet()


def _reset_in_child() -> None:
    # The SDK empties its queue in a forked child (the parent exports those spans): counted
    # from here, they would read as dropped.
    for processor in list(_LIVE):
        processor._received = processor._passed = processor._sent = processor._failed = 0
        processor._overflowed = 0
        processor._received_roots = processor._sent_roots = 0
        processor._count_lock = threading.Lock()  # another thread may have held it
        processor.losses.reset()


_runtime.after_fork_in_child(_reset_in_child)


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor whose ``dropped_spans`` counts what it did not send.

    While it runs: spans its full queue turned away, plus spans of batches the exporter failed
    to send (both only grow: a span on its way into the queue or a batch on its way to the
    exporter is not a drop).
    After ``shutdown()``: every span given to it that the exporter did not confirm.
    ``where`` names the destination in the warnings (``Losses``).
    """

    def __init__(self, exporter: SpanExporter, *, where: str = "the OTLP exporter",
                 **options: Any) -> None:  # fmt: skip
        self._received = 0
        self._passed = 0
        self._sent = 0
        self._failed = 0
        self._overflowed = 0  # spans the full queue turned away (the SDK only logs them)
        self._received_roots = 0  # local roots: one per trace, for the warnings' trace counts
        self._sent_roots = 0
        self._stopped = False
        self._count_lock = threading.Lock()
        self.losses = Losses(where)
        super().__init__(_Passing(exporter, self), **options)
        # The SDK's queue and its worker (its BatchProcessor), read per span; None on an SDK
        # that keeps them elsewhere.
        batcher = getattr(self, "_batch_processor", None)
        known = ("_queue", "_max_queue_size", "_shutdown")
        self._batcher: Any = batcher if all(hasattr(batcher, a) for a in known) else None
        _LIVE.add(self)

    def on_end(self, span: ReadableSpan) -> None:
        if not span.context.trace_flags.sampled:
            super().on_end(span)
            return
        # The SDK's own test for a full queue (it then drops the oldest span). Inferring drops
        # from received - handed over - queued read a span between the two counters, or a batch
        # between the queue and the exporter, as dropped: a phantom drop made flush() False.
        inner = self._batcher
        full = (
            inner is not None and not inner._shutdown and len(inner._queue) >= inner._max_queue_size
        )
        self._received += 1
        if _is_root(span):
            self._received_roots += 1
        super().on_end(span)
        if full:
            self._overflowed += 1

    @property
    def dropped_spans(self) -> int:
        if self._stopped:
            return max(self._received - self._sent, 0)
        return self._overflowed + self._failed

    @property
    def queued_spans(self) -> int:
        return len(self._batcher._queue) if self._batcher is not None else 0

    @property
    def failing(self) -> bool:
        """Whether the last export failed (an episode of losses is open)."""
        return self.losses.open

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Send what is queued; False when it is not all sent within ``timeout_millis`` (the
        SDK's own flush ignores its timeout and waits for the exporter's retries)."""
        done = threading.Event()

        def run() -> None:
            try:
                super(CountingBatchSpanProcessor, self).force_flush(timeout_millis)
            finally:
                done.set()

        before = self._failed
        threading.Thread(target=run, name="traceduck-otlp-flush", daemon=True).start()
        return done.wait(max(timeout_millis, 0) / 1000) and self._failed == before

    def shutdown(self, timeout_s: float | None = None) -> None:
        """Send what is queued while the endpoint takes it (``_send_while_taken``), stop the
        exporter (which ends its retries), and count and say what was not sent."""
        if self._stopped:
            return
        wait_s = OTLP_EXIT_TIMEOUT_S if timeout_s is None else timeout_s
        inner = self._batcher
        try:
            if inner is not None and hasattr(inner, "_worker_thread"):
                sent_all = self._send_while_taken(wait_s)
                inner.shutdown(timeout_millis=int(wait_s * 1000) if sent_all else 0)
            else:  # an SDK without the bounded shutdown: its own
                super().shutdown()
        finally:
            with self._count_lock:
                self._stopped = True  # from here a late answer of the exporter is not counted
                spans = self.dropped_spans - self.losses.spans
                traces = max(self._received_roots - self._sent_roots - self.losses.traces, 0)
            if spans > 0:
                self.losses.dropped(
                    traces,
                    spans,
                    "not sent by exit (at exit OTLP waits while the endpoint takes "
                    f"a batch every {wait_s:g} s, for {OTLP_EXIT_LIMIT_S:g} s at most)",
                )
            self.losses.end_episode()

    def _send_while_taken(self, wait_s: float) -> bool:
        """Let the queue's worker send what is queued, for as long as the endpoint takes a batch
        every ``wait_s`` (up to ``OTLP_EXIT_LIMIT_S``): True once all is sent, False when the
        endpoint took nothing for ``wait_s`` (down, refusing, retrying) or the limit passed."""
        started = progress_at = time.monotonic()
        sent = self._sent
        # The worker sends a full batch at once and the rest on its schedule (200 ms). Waking it
        # early would not help: woken, it sends only full batches.
        while self.queued_spans or self._passed > self._sent + self._failed:
            now = time.monotonic()
            if self._sent != sent:
                sent, progress_at = self._sent, now
            if now - progress_at >= wait_s or now - started >= OTLP_EXIT_LIMIT_S:
                return False
            time.sleep(0.01)
        return True

    def _exported(self, spans: Sequence[ReadableSpan], error: str | None) -> None:
        roots = sum(1 for s in spans if _is_root(s))
        with self._count_lock:
            if self._stopped:  # counted as not sent at shutdown already
                return
            if error is not None:
                # Counted as lost under the lock too: shutdown counts what is not sent as
                # dropped less what is counted lost, and between the two it counted it twice.
                self._failed += len(spans)
                self.losses.dropped(roots, len(spans), error)
                return
            self._sent += len(spans)
            self._sent_roots += roots
        self.losses.end_episode()


def _is_root(span: ReadableSpan) -> bool:
    return span.parent is None or span.parent.is_remote


class WrappedExporter(SpanExporter):
    """An exporter in front of ``inner``: exports, flushes and shuts down through it, and
    answers any other attribute from it. Subclasses add their work to ``export``."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export(spans)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Passing(WrappedExporter):
    """The real exporter, counting the spans the processor hands it."""

    def __init__(self, inner: SpanExporter, counter: CountingBatchSpanProcessor) -> None:
        super().__init__(inner)
        self._counter = counter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._counter._passed += len(spans)
        try:
            result = self.inner.export(spans)
        except Exception as exc:
            self._counter._exported(spans, f"the exporter failed: {exc!r}")
            raise
        self._counter._exported(
            spans,
            None
            if result is SpanExportResult.SUCCESS
            else "the endpoint did not take them (unreachable, refusing, or too slow)",
        )
        return result
