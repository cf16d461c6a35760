"""One DuckDB database per path per process: warm while busy, released when idle.

DuckDB lets one process open a file for writing, and while it has it open no other process can
open it at all. Opening costs ~20 ms, a query on a warm connection 1-2 ms. So a process keeps its
connection while it is busy (one cursor per thread) and closes it after ``idle_s`` without a lease,
or at the first moment without one after holding it ``max_hold_s``, giving other processes their
turn; opening retries with backoff while another process holds the
lock, and gives up with a clear ``StorageError`` after ``lock_timeout_s``.

DuckDB reads a file's header before it takes the file's lock, so a process that opens the file
while another commits, checkpoints and closes it can get the lock with the header of before that
last write: it then works on the old state, and its checkpoint overwrites the other's write (a
whole batch of traces gone). So traceduck processes take turns by a lock of their own on
``PATH.lock`` (``flock``: exclusive for a writer, shared for readers), held from before DuckDB
opens the file until after it has closed it; DuckDB only opens the file in a process's turn.

DuckDB is not fork-safe: a child that inherits an open database and closes it checkpoints the
parent's state of that moment over the file (and crashes, its worker threads being gone). So
before ``os.fork()`` every database is closed (waiting briefly for leases under way), and a
child starts with none open; it opens the file for itself, as any other process would.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

from ... import _runtime
from ...errors import StorageError
from ._errors import LockedError, is_lock_error, lock_message, storage_error
from ._schema import SCHEMA_VERSION, migrate, schema_version
from ._turns import TurnLock

DEFAULT_IDLE_S = _runtime.env_seconds("TRACEDUCK_IDLE_RELEASE_S", 0.25)
DEFAULT_LOCK_TIMEOUT_S = _runtime.env_seconds("TRACEDUCK_LOCK_TIMEOUT_S", 10.0)
# A process that uses the file without pause (a UI polling, a busy writer) still lets go once it
# has held it this long and no thread is using it, so other processes get their turn.
DEFAULT_MAX_HOLD_S = _runtime.env_seconds("TRACEDUCK_MAX_HOLD_S", 1.0)

# How long a fork waits for a lease under way (a write, a query) so it can close the file first.
FORK_WAIT_S = 5.0
# A process that finds the file held says so by touching PATH.wait; a holder that has held the
# file max_hold_s lets go when that was touched in the last WAIT_FRESH_S, and then waits YIELD_S
# before opening it again, so the waiter gets its turn. Without a waiter a busy holder keeps the
# file (each turn costs a checkpoint and a reopen, ~0.1 s), but still lets go after
# LONG_HOLD_FACTOR x max_hold_s for clients that cannot say they wait (a plain duckdb shell).
WAIT_SUFFIX = ".wait"
WAIT_FRESH_S = 2.0
YIELD_S = 0.25
LONG_HOLD_FACTOR = 10
IDLE_FACTOR = 8


class Database:
    """A DuckDB file shared by every thread of this process.

    ``lease(write=...)`` yields a cursor for the calling thread. Writers are serialised by one
    lock, so in-process writers never hit DuckDB's write-write conflicts. A path with no file
    yet reads as an empty store and is created by the first write.
    """

    def __init__(
        self,
        path: str,
        *,
        read_only: bool = False,
        idle_s: float = DEFAULT_IDLE_S,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
        max_hold_s: float = DEFAULT_MAX_HOLD_S,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.idle_s = idle_s
        self.lock_timeout_s = lock_timeout_s
        self.max_hold_s = max_hold_s
        self._opened_at = 0.0
        self.write_lock = threading.RLock()
        self._state = threading.Condition()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._con_is_file = False
        self._leases = 0
        self._last_release = 0.0
        self._cursors: dict[int, duckdb.DuckDBPyConnection] = {}  # thread id -> cursor
        self._reaper: threading.Thread | None = None
        self._closed = False
        self._forking = False  # a fork is under way: new leases wait for it
        self._exclusive: int | None = None  # the thread holding exclusive(): others' leases wait
        self._inherited = False  # a forked child that inherited this database open (unusable)
        self._redirect: Database | None = None
        self._yield_until = 0.0  # after letting go for a waiter: no reopening before this
        self._announced_at = 0.0
        self._turn = TurnLock(os.path.realpath(path))  # one lock however the file is named
        self.opens = 0  # how many times the file was opened (tests and stats read it)
        # DuckDB settings of this process's connection (a process that traces into the file
        # sets its threads and checkpoint threshold: see ``_sink``).
        self.config: dict[str, Any] = {}

    # -- public -------------------------------------------------------------------------------

    @contextmanager
    def lease(
        self, *, write: bool = False, timeout_s: float | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for this thread; ``write=True`` also holds the process-wide write lock."""
        if self._redirect is not None:  # this process now writes the file: read through that
            with self._redirect.lease(write=write, timeout_s=timeout_s) as cursor:
                yield cursor
            return
        if write:
            self.write_lock.acquire()
        try:
            cursor = self._acquire(write, self.lock_timeout_s if timeout_s is None else timeout_s)
            try:
                yield cursor
            finally:
                _end_pending_result(cursor)
                self._release()
        finally:
            if write:
                self.write_lock.release()

    @contextmanager
    def transaction(self, *, timeout_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write cursor inside BEGIN ... COMMIT (ROLLBACK on any exception)."""
        with self.lease(write=True, timeout_s=timeout_s) as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                try:
                    cur.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                raise
            cur.execute("COMMIT")

    @contextmanager
    def exclusive(self, *, timeout_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for this thread with no other lease in this process: new leases of other
        threads wait until the block ends. For work that needs the whole database to itself
        (CHECKPOINT, rewriting the file); the caller must hold no lease of its own."""
        if self._redirect is not None:
            with self._redirect.exclusive(timeout_s=timeout_s) as con:
                yield con
            return
        with self.write_lock:
            with self._state:
                self._exclusive = threading.get_ident()
                try:
                    while self._leases:
                        self._state.wait(0.05)
                    if self._con is None or not self._con_is_file:
                        self._close_locked()
                        timeout = self.lock_timeout_s if timeout_s is None else timeout_s
                        self._open_locked(True, timeout)
                    assert self._con is not None
                    _end_pending_result(self._con)  # an open result holds off a CHECKPOINT
                    cursor = self._cursors.get(threading.get_ident())
                    if cursor is None:
                        cursor = self._cursors[threading.get_ident()] = self._con.cursor()
                    self._leases += 1
                except BaseException:
                    self._exclusive = None
                    self._state.notify_all()
                    raise
            try:
                yield cursor
            finally:
                _end_pending_result(cursor)  # (closed already if the file was replaced)
                with self._state:
                    self._exclusive = None
                self._release()

    def replace_file(self, new_path: str) -> None:
        """Inside ``exclusive()``: make the finished, closed DuckDB file at ``new_path`` this
        store. It replaces the file while this process still holds the old one open (and
        locked), so no other process can open the old file in between; then the old one is
        closed. The next lease opens the new file."""
        with self._state:
            if self._exclusive != threading.get_ident():
                raise RuntimeError("replace_file() is only for the thread holding exclusive()")
            os.replace(new_path, os.path.realpath(self.path))
            self._close_locked()

    def close(self) -> None:
        """Close the connection now (it reopens on the next lease)."""
        with self._state:
            self._close_locked()

    def redirect_to(self, other: Database) -> None:
        """Serve later leases from ``other`` (the read-write Database of the same file): DuckDB
        refuses a second, differently configured connection to one file in a process."""
        with self._state:
            self._redirect = other
            while self._leases:
                self._state.wait(0.05)
            self._close_locked()

    def release_if_idle(self) -> None:
        """Close now if no thread holds a lease and another process waits for the file: a
        writer with nothing more to write lets it have the file at once instead of after
        ``idle_s``."""
        with self._state:
            if self._leases == 0 and self._con_is_file and self.someone_waits():
                self._close_locked()

    def someone_waits(self) -> bool:
        """Whether another process said lately that it waits for this file."""
        try:
            return time.time() - os.stat(self.path + WAIT_SUFFIX).st_mtime < WAIT_FRESH_S
        except OSError:
            return False

    def _announce(self) -> None:
        """Say that this process waits for the file (at most every 50 ms)."""
        now = time.monotonic()
        if now - self._announced_at < 0.05:
            return
        self._announced_at = now
        marker = self.path + WAIT_SUFFIX
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT, 0o644))
            os.utime(marker)
        except OSError:
            pass  # a read-only directory: the holder still lets go after a long hold

    def shutdown(self) -> None:
        with self._state:
            self._closed = True
            self._close_locked()
            self._state.notify_all()

    @property
    def is_open(self) -> bool:
        return self._con is not None

    # -- internals ----------------------------------------------------------------------------

    def _acquire(self, write: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
        with self._state:
            while self._forking or self._exclusive not in (None, threading.get_ident()):
                self._state.wait()
            if self._inherited:
                raise StorageError(
                    f"store {self.path} was in use by another thread when this process was "
                    "forked from its parent; DuckDB cannot use it here. Open the store after the "
                    "fork, or fork when no query or write is under way"
                )
            if (
                self._con is not None
                and not self._con_is_file
                and self._leases == 0
                and os.path.exists(self.path)
            ):
                # The file appeared since we served reads from an empty in-memory store.
                self._close_locked()
            if self._con is None or (write and not self._con_is_file):
                if self._con is not None and self._leases:
                    # Readers are on the empty in-memory store; wait for them to finish.
                    while self._leases:
                        self._state.wait(0.05)
                self._close_locked()
                self._open_locked(write, timeout_s)
            self._leases += 1
            thread = threading.get_ident()
            cursor = self._cursors.get(thread)
            if cursor is None:
                try:
                    cursor = self._cursors[thread] = self._con.cursor()
                except BaseException:
                    self._leases -= 1
                    raise
            return cursor

    def _release(self) -> None:
        with self._state:
            self._leases -= 1
            self._last_release = now = time.monotonic()
            if self._leases == 0:
                held = now - self._opened_at
                if self._con_is_file and held >= self.max_hold_s:
                    waiting = self.someone_waits()
                    if waiting or held >= LONG_HOLD_FACTOR * self.max_hold_s:
                        self._close_locked()  # held long enough: another process waits
                        if waiting:
                            self._yield_until = now + YIELD_S
                        return
                self._start_reaper_locked()
                self._state.notify_all()

    def _open_locked(self, write: bool, timeout_s: float) -> None:
        exists = os.path.exists(self.path)
        if exists and os.path.isfile(self.path) and os.path.getsize(self.path) == 0:
            # A 0-byte file counts as new: read as empty, replaced by the first write.
            if write:
                os.remove(self.path)
            exists = False
        if not exists and not write:
            # Nothing to read yet: an empty store, without creating the file.
            self._con = _empty_store()
            self._con_is_file = False
            return
        if not exists:
            parent = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(parent):
                raise StorageError(
                    f"cannot create store {self.path}: directory {parent} does not exist"
                )
        deadline = time.monotonic() + timeout_s
        pause = self._yield_until - time.monotonic()
        if pause > 0:  # we let go for a waiting process: give it its turn first
            time.sleep(min(pause, timeout_s))
        delay = 0.005
        while True:
            held: str | None = None
            if not self._turn.acquire(shared=self.read_only):
                held = self._turn.holder()  # another traceduck process's turn
            else:
                try:
                    con = duckdb.connect(
                        self.path, read_only=self.read_only, config=dict(self.config)
                    )
                    break
                except duckdb.Error as exc:
                    self._turn.release()
                    if not is_lock_error(exc):
                        raise storage_error(self.path, exc) from exc
                    held = str(exc)  # another client of the file (a duckdb shell)
            self._announce()
            if time.monotonic() >= deadline:
                raise LockedError(lock_message(self.path, held, timeout_s))
            time.sleep(min(delay, max(deadline - time.monotonic(), 0)) * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.2)
        self.opens += 1
        try:
            if self.read_only:
                version = schema_version(con)
                if version not in (0, SCHEMA_VERSION):
                    if version > SCHEMA_VERSION:
                        raise StorageError(
                            f"store {self.path} has schema version {version}, newer than this "
                            f"traceduck ({SCHEMA_VERSION}); upgrade traceduck to read it"
                        )
                    raise StorageError(
                        f"store {self.path} has schema version {version}; open it once without "
                        "read_only to migrate it"
                    )
                if version == 0:
                    con.close()
                    self._turn.release()
                    con = _empty_store()
            else:
                migrate(con)
        except BaseException as exc:
            con.close()
            self._turn.release()
            if isinstance(exc, duckdb.Error):
                raise storage_error(self.path, exc) from exc
            raise
        self._con = con
        self._con_is_file = True
        self._opened_at = time.monotonic()

    # -- os.fork() ----------------------------------------------------------------------------

    def _before_fork(self) -> None:
        """Close the file before the fork, so the child inherits no open DuckDB (holding the
        state lock through the fork: no thread opens it again meanwhile)."""
        self._state.acquire()
        self._forking = True
        deadline = time.monotonic() + FORK_WAIT_S
        while self._leases and time.monotonic() < deadline:
            self._state.wait(max(deadline - time.monotonic(), 0.001))
        if not self._leases:
            self._close_locked()

    def _after_fork_in_parent(self) -> None:
        self._forking = False
        self._state.notify_all()
        self._state.release()

    def _after_fork_in_child(self) -> None:
        """Only the forking thread lives on: fresh locks, no cursors, no reaper. A database
        still open (a lease outlived the fork's wait) is never touched, nor closed, here."""
        if self._con is not None:
            _keep_forever(self._con, *self._cursors.values())
            self._inherited = True
        self._turn.forget()
        self._con = None
        self._con_is_file = False
        self._cursors = {}
        self._leases = 0
        self._reaper = None
        self._forking = False
        self._state = threading.Condition()
        self.write_lock = threading.RLock()

    def _close_locked(self) -> None:
        if self._con is None:
            return
        for cursor in self._cursors.values():
            try:
                cursor.close()
            except duckdb.Error:
                pass
        self._cursors.clear()
        try:
            self._con.close()
        except duckdb.Error:
            pass
        self._turn.release()  # after DuckDB's checkpoint: the next turn reads what it wrote
        self._con = None
        self._con_is_file = False
        self._state.notify_all()  # lets the idle reaper thread end

    def _start_reaper_locked(self) -> None:
        if self._reaper is not None or self._closed:
            return
        self._reaper = threading.Thread(
            target=self._reap, name=f"traceduck-idle-{os.path.basename(self.path)}", daemon=True
        )
        self._reaper.start()

    def _reap(self) -> None:
        # Lives only while a connection is open, so no thread outlives the work at exit.
        with self._state:
            while not self._closed:
                if self._con is None:
                    self._reaper = None
                    return
                idle_for = time.monotonic() - self._last_release
                # A process that said it waits gets the file after idle_s; otherwise a writer
                # between two batches keeps it a little longer (each turn costs a reopen).
                limit = self.idle_s if self.someone_waits() else self.idle_s * IDLE_FACTOR
                if self._leases == 0 and idle_for >= limit:
                    self._close_locked()
                    continue
                wait = self.idle_s - idle_for if idle_for < self.idle_s else self.idle_s
                self._state.wait(max(wait, 0.01) if self._leases == 0 else None)


_ABORT = getattr(duckdb.DuckDBPyConnection, "abort", None)  # DuckDB 2: results must be finished


def _end_pending_result(cursor: duckdb.DuckDBPyConnection) -> None:
    """Drop a result the lease holder left half-read (``fetchone()``), so the thread's next
    lease does not fail with "connection has an unfinished result"."""
    if _ABORT is not None:
        try:
            _ABORT(cursor)
        except duckdb.Error:
            pass


_EMPTY_LOCK = threading.Lock()


def _new_empty_lock() -> None:
    global _EMPTY_LOCK
    _EMPTY_LOCK = threading.Lock()  # another thread may have held it at the fork


_runtime.after_fork_in_child(_new_empty_lock)


def _empty_store() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    with _EMPTY_LOCK:
        migrate(con)
    return con


def _keep_forever(*objects: Any) -> None:
    """Never free ``objects`` in this process: DuckDB objects inherited over a fork would
    checkpoint and crash when freed (at the latest, at exit)."""
    import ctypes

    for obj in objects:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
