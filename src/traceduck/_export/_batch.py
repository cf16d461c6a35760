"""What stands between traceduck's span processor and its exporter.

``CountingBatchSpanProcessor``: the SDK's BatchSpanProcessor, with the spans its full queue drops
counted; it is OTLP's own queue (``OtlpFanOut``), so a slow or unreachable collector never holds
up the store's writes. The SDK drops a span when its queue is full and only logs it;
traceduck's ``stats()["otlp_dropped_spans"]`` and ``flush()`` say so too.
``WrappedExporter``: the base of the exporters placed in front of another.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from .. import _runtime

_LIVE: weakref.WeakSet[CountingBatchSpanProcessor] = weakref.WeakSet()


def _reset_in_child() -> None:
    # The SDK empties its queue in a forked child (the parent exports those spans): counted
    # from here, they would read as dropped.
    for processor in list(_LIVE):
        processor._received = processor._passed = 0


_runtime.after_fork_in_child(_reset_in_child)


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor whose ``dropped_spans`` counts what it never handed on.

    Spans given to it, less spans handed to the exporter, less spans waiting in its queue: the
    spans its full queue (or a shutdown) turned away. Exact once the queue is idle; while a batch
    is between the queue and the exporter it counts that batch too.
    """

    def __init__(self, exporter: SpanExporter, **options: Any) -> None:
        self._received = 0
        self._passed = 0
        super().__init__(_Passing(exporter, self), **options)
        _LIVE.add(self)

    def on_end(self, span: ReadableSpan) -> None:
        if span.context.trace_flags.sampled:
            self._received += 1
        super().on_end(span)

    @property
    def dropped_spans(self) -> int:
        inner = getattr(self, "_batch_processor", None)  # the SDK's queue, where it keeps one
        queue: Sequence[Any] = getattr(inner, "_queue", ())
        return max(self._received - self._passed - len(queue), 0)


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
        return self.inner.export(spans)
