"""DuckDBSpanExporter: a standard OpenTelemetry SpanExporter that writes whole traces to a store
(a DuckDB file, or ClickHouse when named by URL).

``export()`` only converts and groups spans (fast, never blocks on the database) and queues the
finished traces; the write queue and its writer thread are ``WriteQueue``'s (``_writequeue``).
When the queue is full while the store takes writes (another process's turn at the file
included), ``export()`` waits for room: the span processor's queue fills in turn and the
program's tracing thread waits too, so a program that traces faster than the store writes loses
nothing. Only a store that cannot take traces (unwritable, corrupt, or not written for
``block_timeout_s``, e.g. locked past that) makes the full queue drop its oldest traces, counted
and reported once per episode. Nothing here ever raises into the application.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import _context, _runtime
from .._autocontext import AutoLabels
from .._constants import DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_TRACES
from ..store._records import SPAN_COLUMNS
from ..store._sink import TurnError, close_all, load_engines, open_sink
from . import _convert
from ._assembler import (
    Assembler,
    Bundle,
    QueuedTrace,
    automatic_only,
    labels_for,
    span_count,
)
from ._ended import TRACE_ID, EndedSpan, ended, forget, resource
from ._handoff import HANDOFF
from ._loss import Losses
from ._processor import DEFAULT_BLOCK_TIMEOUT_S
from ._writequeue import WriteQueue

# How long exit (and shutdown()) waits for a store that another process holds: siblings that
# trace into the same file let go within a fraction of a second, a stuck holder costs this much.
EXIT_TIMEOUT_S = _runtime.env_seconds("TRACEDUCK_EXIT_TIMEOUT_S", 10.0)
load_engines()  # before any provider registers its exit hook: see load_engines

# How long a fork waits for a writer still warming up (importing) before it goes on.
WARM_UP_WAIT_S = 5.0
_LIVE: weakref.WeakSet[DuckDBSpanExporter] = weakref.WeakSet()
_NO_AUTO: Any = ([], {})
_PARENT_ID = SPAN_COLUMNS.index("parent_id")  # in a span row


@atexit.register
def _shutdown_all() -> None:
    # Write what is queued and end the writer threads: a thread alive at interpreter exit
    # loses its traces and keeps DuckDB's module from being freed.
    for exporter in list(_LIVE):
        exporter.shutdown(timeout_millis=int(EXIT_TIMEOUT_S * 1000))
    close_all()


def _before_fork() -> None:
    # A writer still importing (a ClickHouse sink's warm-up imports pandas, ~1 s) holds that
    # module's import lock: a child forked meanwhile would wait for it for ever at its first
    # write.
    for exporter in list(_LIVE):
        exporter._warm.wait(WARM_UP_WAIT_S)


def _restart_in_child() -> None:
    for exporter in list(_LIVE):
        if not exporter._stopping:
            exporter._start()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_restart_in_child)


class DuckDBSpanExporter(WriteQueue, SpanExporter):
    """Write finished traces into a store: a DuckDB file (the default), or ClickHouse when
    named by URL (``chdb:///dir``, ``clickhouse://host/db``).

    >>> provider.add_span_processor(BlockingSpanProcessor(DuckDBSpanExporter("traces.duckdb")))

    ``source`` names this writer in the tag and metadata histories (``live``: the tracing
    path, ``otlp``: the collector). Into ClickHouse, ``live`` also says that the roots it is
    given were made by this process, so only parts stored without their root are looked up
    for them; an exporter handed other processes' spans (a relay) passes another ``source``.
    """

    def __init__(
        self,
        path: str,
        *,
        max_queue_traces: int = DEFAULT_QUEUE_TRACES,
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
        block_timeout_s: float = DEFAULT_BLOCK_TIMEOUT_S,
        interval_s: float = 1.0,
        source: str = "live",
        auto_labels: AutoLabels | None = None,
        retention_s: float | None = None,
    ) -> None:
        self.path = path
        # The automatic context and run labels of this process's roots (configure() sets it).
        self.auto_labels = auto_labels
        self.sink = open_sink(path)
        # Older traces expire on this writer thread, a small step at a time (both engines).
        self._expiry = self.sink.expiry(retention_s)
        self.max_queue_traces = max_queue_traces
        self.max_queue_bytes = max_queue_bytes
        self.block_timeout_s = block_timeout_s
        self.losses = Losses(f"the write queue of {path}")
        self.interval_s = interval_s
        self.source = source
        self._stopping = False
        self._start()
        _LIVE.add(self)

    def _start(self) -> None:
        """Fresh assembly, an empty queue and a writer thread (also in a forked child: the
        parent's queued traces are the parent's to write, and its writer is not here)."""
        self._assembler = Assembler()
        self._assemble_lock = threading.Lock()
        self._start_writer()

    def check_store(self) -> None:
        """Raise ``StorageError`` now when the store cannot be used (a corrupt or foreign
        file, a chdb directory held by another process, an unreachable server), for a caller
        that would rather refuse to start (the collector) than accept traces it must drop. A
        store that is only busy (a DuckDB file another process holds) passes: the writer waits
        for its turn, as it does for every write."""
        try:
            self.sink.check()
        except TurnError:
            pass

    # -- SpanExporter -------------------------------------------------------------------------

    # Takes EndedSpans from the span processor in front (``export_rows``).
    takes_rows = True

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """The SDK's export (the zero-code exporter, the OTLP fan-out): SDK spans, read into
        ended spans first."""
        rows = []
        for span in spans:
            try:
                rows.append(ended(span))
            except Exception as exc:  # one span we cannot read costs only that span
                self._unreadable(exc)
        result = self.export_rows(rows)
        return SpanExportResult.FAILURE if len(rows) < len(spans) else result

    def export_rows(self, spans: Sequence[EndedSpan]) -> SpanExportResult:
        """Export ended spans taken by the span processor (``_ended``)."""
        result = self._convert_and_queue(spans)
        if (
            self._stopping
            and (self._abandoned or not self._thread.is_alive())
            and threading.current_thread() is threading.main_thread()
        ):
            self._finish_late()  # spans handed over after shutdown (else: at the next shutdown)
        return result

    def _unreadable(self, exc: Exception) -> None:
        self.last_error = repr(exc)
        self.losses.dropped(0, 1, f"a span could not be read: {exc!r}")
        _runtime.report_internal_error("DuckDB export", exc)

    def _finish_late(self) -> None:
        """Write (in this thread), else drop and count, what was queued after shutdown. After a
        shutdown that left a write to a store that did not answer, nothing is tried again:
        that would wait for the same store (``_abandon_write``)."""
        cause = "not written after shutdown"
        if self._abandoned:
            cause += " (the store did not answer)"
        else:
            self._write_here(time.monotonic() + EXIT_TIMEOUT_S)
        with self._cond:
            self._drop_oldest_locked(keep=0, cause=cause)
        self.losses.end_episode()
        close_all()  # as at exit: no file left open, no thread left behind

    def _convert_and_queue(self, spans: Sequence[EndedSpan]) -> SpanExportResult:
        if self.dropping and self._over_bound():
            self._drop_unconverted(spans)  # they could only push out other dropped traces
            return SpanExportResult.FAILURE
        ready: list[Bundle | QueuedTrace] = []
        ready_spans = 0
        failed = 0
        auto = self.auto_labels
        pop_state = _context.REGISTRY.pop
        try:
            with self._assemble_lock:
                add, add_plain_root = self._assembler.add, self._assembler.add_plain_root
                row_of = _convert.row_of  # looked up per export: tests replace it
                for span in spans:
                    if HANDOFF.writes:
                        HANDOFF.tick()
                    try:
                        row, is_root, attrs = row_of(span)
                        labels = plain = None
                        if is_root:
                            state = pop_state(span[TRACE_ID])
                            entries, run_tags = (
                                auto.for_root(row[7], resource(span)) if auto else _NO_AUTO
                            )
                            if row[_PARENT_ID] is None and automatic_only(attrs, state, run_tags):
                                plain = entries  # a true root with the automatic labels alone
                            else:
                                labels = labels_for(attrs, state, (entries, run_tags))
                    except Exception as exc:  # one span we cannot read costs only that span
                        failed += 1
                        self._unreadable(exc)
                        continue
                    if plain is None:
                        bundle = add(row, is_root, labels)
                    else:
                        bundle = add_plain_root(row, plain)
                    if bundle is not None:
                        ready.append(bundle)
                        ready_spans += span_count(bundle)
                        if ready_spans >= self.early_write_spans:  # a big export: the writer
                            self.enqueue(ready)  # start on this part while we convert the rest
                            ready, ready_spans = [], 0
                ready.extend(self._assembler.overflow())
        except Exception as exc:
            _runtime.report_internal_error("DuckDB export", exc)
            self.last_error = repr(exc)
            failed += 1
        self.enqueue(ready)
        return SpanExportResult.FAILURE if failed else SpanExportResult.SUCCESS

    def _drop_unconverted(self, spans: Sequence[EndedSpan]) -> None:
        roots = sum(forget(span) for span in spans)
        self.losses.dropped(roots, len(spans), self._cause())

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """The SDK's flush: True once every trace queued before the call is written."""
        return self._wait_written(timeout_millis / 1000)

    def shutdown(self, timeout_millis: int | None = None) -> None:
        if self._stopping:
            if self._queue and (self._abandoned or not self._thread.is_alive()):
                self._finish_late()  # handed over by a span processor shutting down after us
            return
        timeout_s = EXIT_TIMEOUT_S if timeout_millis is None else timeout_millis / 1000
        deadline = time.monotonic() + timeout_s
        with self._assemble_lock:
            leftovers = self._assembler.drain()
        self.enqueue(leftovers)
        self.flush(max(deadline - time.monotonic(), 0))
        with self._cond:
            # The flush had its chance: the writer ends after the write under way (if any), so
            # no thread is inside DuckDB when the interpreter exits (that would abort it).
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(max(deadline - time.monotonic(), 2.0))
        if self._thread.is_alive() and self._inflight:  # a write is under way
            if self.sink.in_process:  # inside an engine: let it finish
                self._thread.join(30.0)
            else:  # a server's: not waited for past the deadline
                self._abandon_write()
        if not self._thread.is_alive():
            self._write_here(deadline)
        with self._cond:
            cause = f"not written before shutdown ({self.last_error or 'timed out'})"
            self._drop_oldest_locked(keep=0, cause=cause)
        self.losses.end_episode()

    def stats(self) -> dict[str, Any]:
        return {
            "queued_traces": self.queued_traces,
            "pending_spans": self._assembler.pending_spans,
            "written_traces": self.written_traces,
            "written_spans": self.written_spans,
            "dropped_traces": self.dropped_traces,
            "dropped_spans": self.dropped_spans + _runtime.stash_dropped,
            "last_error": self.last_error,
        }
