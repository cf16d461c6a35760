"""The span processor in front of traceduck's exporters: batches ended spans on a worker thread.

``BlockingSpanProcessor`` does what the SDK's ``BatchSpanProcessor`` does (a queue filled by
``on_end``, a worker handing batches to the exporter every ``schedule_delay_s`` or as soon as a
batch is full), with one difference: when its queue is full while the exporter keeps taking
batches, the thread that ends a span waits for room instead of dropping the span (Logback's and
Log4j2's blocking async appenders behave so). A program that traces faster than its spans can be
stored is slowed down to the store's pace and loses nothing.

When the exporter takes ended spans as plain tuples (``takes_rows``: traceduck's own store
exporter, behind redaction), ``on_end`` queues the span's ``EndedSpan`` instead of the span
(see ``_ended``): the SDK's span objects die in the caller's thread instead of aging in the
queue, where they made Python's cyclic GC a third of a tight traced loop's time.

It drops only when the exporter cannot take spans: when the exporter says it is dropping (its
store is unwritable, corrupt, unreachable or locked past its wait), or when the worker has taken
no batch for ``block_timeout_s`` (an export that hangs). So no call waits longer than
``block_timeout_s`` for room, and once that bound has passed none waits again until the exporter
takes a batch. Every drop is counted and reported once per episode (``Losses``).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from .. import _runtime
from ._ended import EndedSpan, ended, forget
from ._handoff import HANDOFF
from ._loss import Losses

DEFAULT_QUEUE_SPANS = 4_096
DEFAULT_BATCH_SPANS = 1_024
DEFAULT_BLOCK_TIMEOUT_S = 10.0
_LIVE: weakref.WeakSet[BlockingSpanProcessor] = weakref.WeakSet()


def _restart_in_child() -> None:
    # The spans queued at the fork are the parent's to export; the worker thread is not here.
    for processor in list(_LIVE):
        if not processor._stopping:
            processor._start()


_runtime.after_fork_in_child(_restart_in_child)


class BlockingSpanProcessor(SpanProcessor):
    """Batches ended, sampled spans for ``exporter``; waits for room rather than drop them.

    >>> provider.add_span_processor(BlockingSpanProcessor(DuckDBSpanExporter("traces.duckdb")))
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_spans: int | None = None,
        max_batch_spans: int = DEFAULT_BATCH_SPANS,
        schedule_delay_s: float = 0.2,
        block_timeout_s: float = DEFAULT_BLOCK_TIMEOUT_S,
        name: str = "traceduck",
    ) -> None:
        self.exporter = exporter
        # The exporter takes EndedSpans (``export_rows``) rather than SDK spans.
        self.rows = bool(getattr(exporter, "takes_rows", False))
        self.max_queue_spans = max_queue_spans or DEFAULT_QUEUE_SPANS
        self.max_batch_spans = max_batch_spans
        self._check_at = min(self.max_queue_spans, max_batch_spans)
        self.schedule_delay_s = schedule_delay_s
        self.block_timeout_s = block_timeout_s
        self.losses = Losses(f"the span queue of {name}")
        self._stopping = False
        self._start()
        _LIVE.add(self)

    def _start(self) -> None:
        self._queue: deque[ReadableSpan | EndedSpan] = deque()
        self._room = threading.Condition()  # notified whenever the worker takes a batch
        self._wake = threading.Event()
        self._export_lock = threading.Lock()
        self._taken_at = time.monotonic()
        self._downstream_dropping = False  # the exporter's ``dropping``, as of its last export
        self.exported_spans = 0
        self.losses.reset()
        self._thread = threading.Thread(target=self._run, name="traceduck-spans", daemon=True)
        self._thread.start()

    # -- SpanProcessor ------------------------------------------------------------------------

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if not span.context.trace_flags.sampled:
            return
        item: ReadableSpan | EndedSpan = span
        if self.rows:
            try:
                item = ended(span)
            except Exception as exc:  # a span we cannot read: never the app's problem
                _runtime.report_internal_error("span end", exc)
                self.losses.dropped(0, 1, f"a span could not be read: {exc!r}")
                return
        if HANDOFF.writes:
            HANDOFF.tick()
        queue = self._queue
        queued = len(queue)
        if queued >= self._check_at:
            # While the exporter drops, hold no more than a batch: what waits here would only
            # be dropped later, and it holds the captured inputs (memory bounded on a dead store).
            if (self._downstream_dropping and self._exporter_dropping()) or (
                queued >= self.max_queue_spans and not self._wait_for_room()
            ):
                self._drop(item)
                return
            if not self._wake.is_set():
                self._wake.set()
        queue.append(item)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Hand every queued span to the exporter, then flush it."""
        if self._stopping:
            return True
        self.export_queued()
        return self.exporter.force_flush(timeout_millis) is not False  # None: nothing to flush

    def shutdown(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        with self._room:
            self._room.notify_all()
        self._thread.join(5.0)
        self.export_queued()
        self.exporter.shutdown()
        self.losses.end_episode()

    # -- queue --------------------------------------------------------------------------------

    @property
    def queued_spans(self) -> int:
        return len(self._queue)

    def _exporter_dropping(self) -> bool:
        return bool(getattr(self.exporter, "dropping", False))

    def _wait_for_room(self) -> bool:
        """Wait until the queue has room (True), or False when the exporter cannot take spans:
        it says so, or it has taken no batch for ``block_timeout_s``. The worker itself (a span
        ended inside an export) never waits for itself."""
        if threading.current_thread() is self._thread:
            return True
        self._wake.set()
        with self._room:
            while len(self._queue) >= self.max_queue_spans:
                if self._stopping or self._exporter_dropping():
                    self._downstream_dropping = True
                    return False
                stalled_for = time.monotonic() - self._taken_at
                if stalled_for >= self.block_timeout_s:
                    return False
                self._room.wait(min(self.block_timeout_s - stalled_for, 0.1))
            return True

    def _drop(self, item: ReadableSpan | EndedSpan) -> None:
        is_root = forget(item)  # its deferred inputs and live labels go with it
        if self._exporter_dropping():
            cause = getattr(self.exporter, "last_error", None) or "the store cannot take them"
        else:
            cause = f"the exporter took no spans for {self.block_timeout_s:g} s"
        self.losses.dropped(int(is_root), 1, cause)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.schedule_delay_s)
            self._wake.clear()
            self.export_queued()

    def export_queued(self) -> None:
        """Hand the queue to the exporter, a batch at a time, until it is empty (the first
        step of a flush; the exporter's own flush is the second)."""
        queue = self._queue
        with self._export_lock:
            while queue:
                count = min(len(queue), self.max_batch_spans)
                batch = [queue.popleft() for _ in range(count)]
                with self._room:
                    self._taken_at = time.monotonic()
                    self._room.notify_all()
                self._export(batch)
                self._taken_at = time.monotonic()

    def _export(self, batch: Sequence[Any]) -> None:
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        was, _runtime.EXPORTING.on = getattr(_runtime.EXPORTING, "on", False), True
        try:
            if self.rows:
                self.exporter.export_rows(batch)  # type: ignore[attr-defined]
            else:
                self.exporter.export(batch)
            self.exported_spans += len(batch)
            self._downstream_dropping = dropping = self._exporter_dropping()
            if not dropping:
                self.losses.end_episode()
        except Exception as exc:  # the exporter's own failure: never the app's
            _runtime.report_internal_error("span export", exc)
        finally:
            _runtime.EXPORTING.on = was
            detach(token)
