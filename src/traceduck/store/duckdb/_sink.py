"""The tracing path's sink into a DuckDB file: opened when needed, let go of when idle."""

from __future__ import annotations

import os

from ..._selection import Selection
from ...errors import StorageError
from .._records import WriteBatch
from .._retention import Expiry
from .._sink import check_parent
from ._connection import Database
from ._databases import get_database
from ._delete import delete_selected
from ._writer import write_batch

__all__ = ["DuckDBSink"]

# A retention chunk waits for the file as a write does: another process holding it means "later".
LOCK_TIMEOUT_S = 0.2
# The WAL size at which a commit checkpoints, in a process that traces (DuckDB's default: 16MiB).
# A checkpoint costs a few hundred ms however little it carries, and more as the store grows: at
# 16MiB a tight traced loop paid one every ~24,000 traces, close to half of its write time. At
# 64MiB it pays a third as many, which takes about a quarter off the write time, for up to
# 48MiB more WAL on disk (replayed on the next open after a crash) and a little more memory;
# letting go of the file (when idle, or for another process's turn) checkpoints what is left
# (benchmarks/profile_checkpoints.py).
CHECKPOINT_THRESHOLD = "64MiB"


def background_threads() -> int:
    """DuckDB's threads in a process that traces: one core fewer than the process may use, so
    a write never takes the core the app's Python runs on (on 2 cores: 1 thread; measured in
    the busy suite's all-in figure, benchmarks/README.md)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 2
    return max(cores - 1, 1)


class DuckDBSink:
    """Writes batches into the file at ``path`` (``store._sink.Sink``)."""

    in_process = True

    def __init__(self, path: str) -> None:
        self.db: Database = get_database(path)
        self.db.config.update(
            threads=background_threads(), checkpoint_threshold=CHECKPOINT_THRESHOLD
        )

    def write(self, batch: WriteBatch, timeout_s: float) -> None:
        write_batch(self.db, batch, timeout_s=timeout_s)

    def release_if_idle(self) -> None:
        self.db.release_if_idle()

    def warm_up(self) -> None:
        """Nothing to prepare: the writer hands DuckDB NumPy arrays, not Arrow."""

    def check(self) -> None:
        """Open the file (``StorageError`` if it is not a DuckDB store, ``LockedError`` if
        another process holds it); a file not there yet is only checked for its directory."""
        path = self.db.path
        if os.path.isdir(path):
            raise StorageError(f"store {path} is a directory, not a DuckDB file")
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            check_parent(path, path)
            return  # created by the first write, as anywhere else
        with self.db.lease(timeout_s=LOCK_TIMEOUT_S):
            pass

    def expiry(self, retention_s: float | None) -> Expiry:
        return Expiry(retention_s, delete=self._expire, ready=self._exists)

    def _expire(self, selection: Selection) -> int:
        return delete_selected(
            self.db, selection, source="retention", rewrite=False, timeout_s=LOCK_TIMEOUT_S
        )

    def _exists(self) -> bool:
        return os.path.exists(self.db.path)
