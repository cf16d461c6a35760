"""Retention: traces older than a duration expire in the background, a small step at a time.

The store's writer thread (``DuckDBSpanExporter``) calls ``Expiry.run()`` between writes and
when idle, never a traced call. A run happens at most every ``check_s`` seconds
(``$TRACEDUCK_RETENTION_CHECK_S``, default 60). It deletes the oldest expired traces in chunks
of ``CHUNK_TRACES``, each chunk one short transaction recorded in ``deletions`` with source
``retention``, and stops after ``STEP_BUDGET_S`` so the traces queued meanwhile get written; a
backlog (a store that has just been given a retention) is worked off in further runs, the next
one ``BACKLOG_PAUSE_S`` later or ``BACKLOG_IDLE_FACTOR`` times as long as this run took, so
retention holds the store at most a fifth of the time. A chunk costs a scan of the ``trace_id``
column of every table holding rows per trace (no index), so its time grows with the store: see
the delete benchmark. Space freed this way is reused by new traces (the file is not rewritten:
that would hold a busy store for long).

Both engines expire the same way: each engine's sink (``store/_sink.py``) hands ``Expiry`` a
``delete`` that runs one chunk through its own deletion (a DuckDB transaction; lightweight
deletes on ClickHouse), recorded the same way, and a ``ready`` that says whether the store
exists yet.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from .. import _runtime
from .._selection import Selection
from ._sink import TurnError

__all__ = ["CHECK_ENV", "Expiry"]

CHECK_ENV = "TRACEDUCK_RETENTION_CHECK_S"
DEFAULT_CHECK_S = 60.0
CHUNK_TRACES = 5_000
STEP_BUDGET_S = 0.25
BACKLOG_PAUSE_S = 1.0
BACKLOG_IDLE_FACTOR = 4.0


def check_interval_s() -> float:
    """``$TRACEDUCK_RETENTION_CHECK_S`` (seconds between checks), else 60."""
    raw = os.environ.get(CHECK_ENV)
    try:
        value = float(raw) if raw else DEFAULT_CHECK_S
    except ValueError:
        return DEFAULT_CHECK_S
    return value if value > 0 else DEFAULT_CHECK_S


class Expiry:
    """Deletes traces whose root started more than ``retention_s`` ago; inert when None."""

    def __init__(
        self,
        retention_s: float | None,
        *,
        delete: Callable[[Selection], int],
        ready: Callable[[], bool] = lambda: True,
        check_s: float | None = None,
    ) -> None:
        self.delete = delete  # one chunk: the engine's deletion, recorded as ``retention``
        self.ready = ready  # False while the store does not exist (creating it is a write's)
        self.retention_s = retention_s
        self.check_s = check_interval_s() if check_s is None else check_s
        self.next_at = time.monotonic()  # the first check comes at the writer's first chance
        self.expired = 0  # traces deleted so far (stats and tests read it)

    def due(self) -> bool:
        return self.retention_s is not None and time.monotonic() >= self.next_at

    def wait_s(self) -> float | None:
        """How long an idle writer may sleep before the next check (None: no retention)."""
        if self.retention_s is None:
            return None
        return max(self.next_at - time.monotonic(), 0.001)

    def run(self) -> int:
        """Delete expired traces for up to ``STEP_BUDGET_S``; how many. Never raises."""
        if not self.due():
            return 0
        assert self.retention_s is not None
        if not self.ready():  # nothing stored yet: creating the store is a write's
            self.next_at = time.monotonic() + self.check_s
            return 0
        started = time.monotonic()
        pause = self.check_s
        deleted = 0
        try:
            cutoff = int(max(time.time() * 1000 - self.retention_s * 1000, -(2.0**63)))
            chunk = Selection(max_timestamp_ms=cutoff, max_traces=CHUNK_TRACES)
            while True:
                n = self.delete(chunk)
                deleted += n
                if n < CHUNK_TRACES:
                    break
                if time.monotonic() - started >= STEP_BUDGET_S:  # more to do: come back soon
                    took = time.monotonic() - started
                    pause = min(max(BACKLOG_PAUSE_S, BACKLOG_IDLE_FACTOR * took), self.check_s)
                    break
        except TurnError:
            pause = min(BACKLOG_PAUSE_S, self.check_s)  # another process's turn, a busy server
        except Exception as exc:
            _runtime.report_internal_error("retention", exc)
        self.expired += deleted
        self.next_at = time.monotonic() + pause
        return deleted
