"""The store exporter's write queue and its writer thread.

Finished traces wait in a FIFO queue bounded in traces (``max_queue_traces``) and in bytes
(``max_queue_bytes``). One thread takes them in batches, every ``interval_s`` or as soon as
enough are queued, and writes each batch through the store's sink. A batch that fails goes back
to the front of the queue and is written again; ``flush()`` waits for what was queued before
it. When the queue is full while the store takes writes, ``enqueue`` waits for room; when the
store cannot take traces, the oldest are dropped, counted and reported once per episode.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from .. import _runtime
from ..errors import StorageError
from ..store._sink import Sink, TurnError
from ._assembler import Bundle, QueuedTrace, batch_of, byte_size, span_count
from ._handoff import writing
from ._loss import Losses

__all__ = ["EARLY_WRITE_SPANS", "MAX_BATCH_SPANS", "RELEASE_AFTER_S", "Receipt", "WriteQueue"]

MAX_BATCH_SPANS = 50_000
# The writer lets go of the file once its queue has stayed empty this long after a write (other
# processes may be waiting for it); a steady stream keeps it open from one write to the next.
RELEASE_AFTER_S = 0.05
# Past this many queued spans the writer starts at once instead of waiting out its interval, so
# under load DuckDB writes one batch (GIL released) while export() converts the next. A sink
# may ask for more (``early_write_spans``): ClickHouse pays per insert (a part each, merged
# later), so fewer, larger batches cost it less.
EARLY_WRITE_SPANS = 8_192


class Receipt:
    """What became of the traces one caller queued (``enqueue(..., receipt)``): the spans the
    store refused as bad data (dropped for good), and the spans dropped because the store could
    not take them (worth sending again). The collector answers a request from it."""

    def __init__(self) -> None:
        self.refused_spans = 0
        self.refused: list[str] = []  # the causes, one per refused trace
        self.unwritable_spans = 0
        self.unwritable: str | None = None  # the cause

    def dropped(self, spans: int, cause: str, *, refused: bool) -> None:
        if refused:
            self.refused_spans += spans
            self.refused.append(cause)
        else:
            self.unwritable_spans += spans
            self.unwritable = cause


class WriteQueue:
    """The queue of finished traces and the thread that writes them (the exporter's half that
    talks to the store). The exporter sets the attributes below before ``_start_writer``."""

    sink: Sink
    source: str
    losses: Losses
    max_queue_traces: int
    max_queue_bytes: int
    block_timeout_s: float
    interval_s: float
    _expiry: Any
    _stopping: bool

    def _start_writer(self) -> None:
        """An empty queue, fresh counters and locks, and a writer thread."""
        # Queued spans from which the writer starts before its interval is out.
        self.early_write_spans: int = getattr(self.sink, "early_write_spans", EARLY_WRITE_SPANS)
        self._written_since_release = False
        self._queue: deque[Bundle | QueuedTrace] = deque()
        self._queued_spans = 0
        self._queued_bytes = 0  # estimated, of the traces queued or in the write under way
        self._cond = threading.Condition()
        self._inflight = 0  # traces taken from the queue by the write under way (0: idle)
        self._writing: list[Bundle | QueuedTrace] | None = None  # and that write's batch
        self._abandoned = False  # that write left to its thread at shutdown (_abandon_write)
        # Traces ever queued, and traces written or dropped: they leave in the order they came
        # (the queue is FIFO, a failed write goes back to its front), so a flush waits for the
        # second count to reach what the first was when it was called.
        self._queued_count = 0
        self._finished_count = 0
        self._flush_waiters = 0
        self._failed_at: float | None = None
        # The store cannot take traces (unwritable, corrupt): a full queue drops, never waits.
        self._dead = False
        # id(bundle) -> the Receipt of whoever queued it and waits to hear what became of it
        # (consulted only when a trace is dropped; the waiter holds the bundles, and ``unwatch``es
        # them when it has its answer).
        self._watched: dict[int, Receipt] = {}
        # Since when writes fail (another process's turn, or worse); None after a good write.
        self._failing_since: float | None = None
        self._wrote_at = time.monotonic()
        self.written_traces = 0
        self.written_spans = 0
        self.last_error: str | None = None
        self.losses.reset()
        self._warm = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traceduck-writer", daemon=True)
        self._thread.start()

    def _write_here(self, deadline: float) -> None:
        """Write what is still queued in this thread, the writer thread having ended: at exit,
        once DuckDB's own exit hooks have run, DuckDB refuses statements that read Python
        objects from any thread but the main one. A span processor whose provider shuts down
        after those hooks (a provider made before traceduck was imported) hands over its last
        spans after this exporter has shut down: they are written here, not lost."""
        while time.monotonic() < deadline:
            with self._cond:
                if not self._queue:
                    return
                batch = self._take()
            write_started = time.monotonic()
            outcome, settled = self._write(batch)
            with self._cond:
                self._settle_locked(batch, outcome, settled, write_started)
            if outcome not in ("ok", "drop"):
                return

    def _settle_locked(
        self, batch: list[Bundle | QueuedTrace], outcome: str, settled: int, started: float
    ) -> None:
        """After a write of ``batch`` (under ``_cond``): count its first ``settled`` traces
        finished, put the others back at the front of the queue, and say so to whoever waits."""
        now = time.monotonic()
        if settled:
            self._finished_count += settled
            self._queued_bytes -= sum(byte_size(bundle) for bundle in batch[:settled])
            self._wrote_at = now
        if outcome in ("ok", "drop"):
            self._failing_since = None
            self._dead = False
        else:
            self._failing_since = self._failing_since or now
            self._dead = self._dead or outcome == "retry"
            self._requeue(batch[settled:])
        if outcome in ("retry", "drop"):
            # when the failed write began: a flush that started after it waits for the next
            # attempt rather than report this one
            self._failed_at = started
        self._cond.notify_all()

    def enqueue(
        self, bundles: Sequence[Bundle | QueuedTrace], receipt: Receipt | None = None
    ) -> None:
        """Queue finished traces for writing. Past the bound, wait for room while the store
        takes writes; drop the oldest (counted) when it cannot take them. ``receipt`` hears of
        any of these traces dropped, until ``unwatch``."""
        if not bundles:
            return
        with self._cond:
            if receipt is not None:
                for bundle in bundles:
                    self._watched[id(bundle)] = receipt
            was_empty = not self._queue
            for bundle in bundles:
                self._queue.append(bundle)
                self._queued_spans += span_count(bundle)
                self._queued_bytes += byte_size(bundle)
            self._queued_count += len(bundles)
            if was_empty or self._queued_spans >= self.early_write_spans:
                self._cond.notify_all()
            if self._over_bound():
                self._wait_for_room_locked()

    @property
    def dropping(self) -> bool:
        """True while the store cannot take traces: a full queue then drops instead of waiting
        (the span processor in front reads this too)."""
        failing = self._failing_since
        return self._dead or (
            failing is not None and time.monotonic() - failing >= self.block_timeout_s
        )

    def _over_bound(self) -> bool:
        held = len(self._queue) + self._inflight
        return held > self.max_queue_traces or (
            self._queued_bytes > self.max_queue_bytes and held > 1
        )

    def _wait_for_room_locked(self) -> None:
        """Wait (under ``_cond``) until the queue is within its bounds; drop the oldest when
        the store cannot take traces or has written nothing for ``block_timeout_s``."""
        if threading.current_thread() is self._thread:  # the writer never waits for itself
            return
        self._cond.notify_all()
        started = time.monotonic()
        while self._over_bound():
            if self._stopping or self.dropping:
                self._drop_oldest_locked(cause=self._cause())
                return
            stalled_for = time.monotonic() - max(self._wrote_at, started)
            if stalled_for >= self.block_timeout_s:
                self._dead = True
                self.last_error = self.last_error or (
                    f"no write for {self.block_timeout_s:g} s (block_timeout_s)"
                )
                self._drop_oldest_locked(cause=self._cause())
                return
            self._cond.wait(min(self.block_timeout_s - stalled_for, 0.1))

    def unwatch(self, bundles: Sequence[Bundle | QueuedTrace]) -> None:
        """Stop telling a receipt about ``bundles`` (its holder has its answer)."""
        with self._cond:
            for bundle in bundles:
                self._watched.pop(id(bundle), None)

    def _tell(self, bundle: Bundle | QueuedTrace, cause: str, *, refused: bool) -> None:
        """A dropped trace: say so to whoever watches it."""
        if self._watched:
            receipt = self._watched.pop(id(bundle), None)
            if receipt is not None:
                receipt.dropped(span_count(bundle), cause, refused=refused)

    def _cause(self) -> str:
        return f"the store cannot take traces: {self.last_error or 'it does not write'}"

    def flush(self, timeout_s: float | None = None) -> bool:
        """Block until every trace queued before the call is written (True), or False on
        timeout or failure, or when traces were dropped since the previous flush (before or
        during this one). Traces queued meanwhile (other threads tracing on) are not waited for.

        Returns False at once if the store is unusable (one immediate retry fails); a store that
        another process holds is waited for, until ``timeout_s``.
        """
        written = self._wait_written(timeout_s)
        return not self.losses.unreported() and written

    def _wait_written(self, timeout_s: float | None) -> bool:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            target = self._queued_count
            self._flush_waiters += 1
            started = time.monotonic()
            self._cond.notify_all()
            try:
                while self._finished_count < target:
                    failed_at = self._failed_at
                    if (failed_at is not None and failed_at >= started) or (
                        self._stopping and not self._inflight
                    ):
                        return False
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(0.05 if remaining is None else min(remaining, 0.05))
                return True
            finally:
                self._flush_waiters -= 1

    @property
    def queued_traces(self) -> int:
        return len(self._queue) + self._inflight

    def _run(self) -> None:
        try:
            self.sink.warm_up()
        except Exception:
            pass
        finally:
            self._warm.set()
        backoff = 0.0
        while True:
            if not self._stopping:
                self._expiry.run()  # retention: at most once a minute, a short step
            with self._cond:
                deadline = time.monotonic() + max(self.interval_s, backoff)
                while not self._stopping:
                    if not self._queue:
                        if self._written_since_release:
                            self._cond.wait(RELEASE_AFTER_S)
                            if not self._queue:
                                self._written_since_release = False
                                self.sink.release_if_idle()
                            continue
                        # Sleep until enqueue() has work (no polling while the app is idle);
                        # the batch interval counts from the first queued trace.
                        if self._expiry.due():
                            break
                        self._cond.wait(self._expiry.wait_s())
                        deadline = max(deadline, time.monotonic() + self.interval_s)
                        continue
                    if (
                        self._flush_waiters
                        or self._queued_spans >= self.early_write_spans
                        or self._over_bound()  # export() waits for room
                        or time.monotonic() >= deadline
                    ):
                        break
                    self._cond.wait(max(deadline - time.monotonic(), 0.001))
                if self._stopping:
                    return
                if not self._queue:  # woken for retention only
                    continue
                batch = self._take()
                self._inflight, self._writing = len(batch), batch
            write_started = time.monotonic()
            outcome, settled = "retry", 0
            try:
                outcome, settled = self._write(batch)
                if outcome == "ok":  # said before a flush waiting for this write returns
                    self.losses.end_episode()
            finally:
                with self._cond:
                    abandoned = self._abandoned  # then counted already, by shutdown
                    self._inflight, self._writing = 0, None
                    if not abandoned:
                        self._settle_locked(batch, outcome, settled, write_started)
            del batch  # not held while the writer waits for the next one
            if abandoned:
                return
            if outcome == "ok":
                backoff = 0.0
                self._written_since_release = True
            elif outcome == "locked":  # another process's turn: come back soon, with jitter
                backoff = random.uniform(0.02, 0.25)
            else:
                backoff = min(max(backoff * 2, 0.05), 2.0)

    def _abandon_write(self) -> None:
        """At shutdown, a write to a server still under way (one that does not answer): its
        thread is left to its network call, and its traces are counted dropped, since nothing
        confirmed them (the server may yet store some)."""
        with self._cond:
            batch = self._writing
            if batch is None or self._abandoned:
                return
            self._abandoned = True
            self._inflight, self._writing = 0, None
            self._count_dropped_locked(
                batch,
                "the write under way was not confirmed before shutdown"
                f" ({self.last_error or 'the store did not answer'}); the store may hold some",
            )
            self._cond.notify_all()

    def _take(self) -> list[Bundle | QueuedTrace]:
        batch: list[Bundle | QueuedTrace] = []
        spans = 0
        nbytes = 0
        while self._queue and spans < MAX_BATCH_SPANS and nbytes < self.max_queue_bytes:
            bundle = self._queue.popleft()
            spans += span_count(bundle)
            nbytes += byte_size(bundle)
            batch.append(bundle)
        self._queued_spans -= spans
        return batch

    def _requeue(self, batch: list[Bundle | QueuedTrace]) -> None:
        for bundle in reversed(batch):
            self._queue.appendleft(bundle)
            self._queued_spans += span_count(bundle)
        if self.dropping and self._over_bound():
            self._drop_oldest_locked(cause=self._cause())

    def _drop_oldest_locked(self, *, cause: str, keep: int | None = None) -> None:
        """Drop (and count) the oldest queued traces until the queue is within its bounds
        (or holds ``keep`` traces)."""
        dropped = []
        while self._queue and (len(self._queue) > keep if keep is not None else self._over_bound()):
            old = self._queue.popleft()
            self._queued_spans -= span_count(old)
            dropped.append(old)
        self._count_dropped_locked(dropped, cause)

    def _count_dropped_locked(self, bundles: list[Bundle | QueuedTrace], cause: str) -> None:
        """``bundles``, taken from the queue or the write under way, dropped: counted, out of the
        bytes held, and said to whoever watches them."""
        if not bundles:
            return
        spans = 0
        for bundle in bundles:
            spans += span_count(bundle)
            self._queued_bytes -= byte_size(bundle)
            self._tell(bundle, cause, refused=False)
        self._finished_count += len(bundles)
        self.losses.dropped(len(bundles), spans, cause)

    def _write(self, batch: list[Bundle | QueuedTrace]) -> tuple[str, int]:
        """Write one batch: (outcome, how many of its first traces are settled, i.e. written or
        dropped). The outcome is 'ok', 'locked' (another process holds the file), 'retry'
        (store unusable) or 'drop' (unexpected error)."""
        write = batch_of(batch, self.source)
        spans = write.spans
        exc: Exception | None = None
        try:
            with writing():
                self.sink.write(write, timeout_s=0.2)
        except Exception as caught:
            exc = caught
        if self._abandoned and threading.current_thread() is self._thread:
            # the write shutdown left to this thread (_abandon_write): counted dropped and said
            # so then, whatever became of it; nothing more is tried, counted or said
            return "retry", 0
        if exc is None:
            self.written_traces += len(batch)
            self.written_spans += len(spans)
            self.last_error = None
            return "ok", len(batch)
        if isinstance(exc, TurnError):  # another process's turn at the file, a busy server
            self.last_error = str(exc)
            return "locked", 0
        if isinstance(exc, StorageError):
            if self.last_error != str(exc):
                _runtime.logger.warning("traceduck: cannot write traces: %s", exc)
            self.last_error = str(exc)
            return "retry", 0
        # Not the store's state but data DuckDB rejects (or a bug): retrying the batch would
        # block every later trace. Write its traces one by one; drop and count only the bad.
        # At the first the store cannot take now, stop: the rest go back to the queue.
        _runtime.report_internal_error("DuckDB write", exc)
        self.last_error = repr(exc)
        if len(batch) > 1:
            for done, bundle in enumerate(batch):
                outcome, _ = self._write([bundle])
                if outcome in ("retry", "locked"):
                    return outcome, done
            return "ok", len(batch)
        cause = f"the store refused the trace: {exc!r}"
        self.losses.dropped(1, len(spans), cause)
        self._tell(batch[0], cause, refused=True)
        return "drop", 1

    @property
    def dropped_traces(self) -> int:
        return self.losses.traces

    @property
    def dropped_spans(self) -> int:
        return self.losses.spans
