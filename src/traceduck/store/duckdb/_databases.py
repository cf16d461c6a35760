"""The process's DuckDB databases: one ``Database`` per file (and read-only or not), closed before
``os.fork()`` and at exit (see ``_connection``)."""

from __future__ import annotations

import atexit
import os
import threading

from ._connection import Database

__all__ = ["close_all", "get_database"]

_DATABASES: dict[tuple[str, bool], Database] = {}
_DATABASES_LOCK = threading.Lock()
_FORKING: list[Database] = []


def _before_fork() -> None:
    _DATABASES_LOCK.acquire()
    for db in list(_DATABASES.values()):
        db._before_fork()
        _FORKING.append(db)


def _after_fork_in_parent() -> None:
    for db in _FORKING:
        db._after_fork_in_parent()
    _FORKING.clear()
    _DATABASES_LOCK.release()


def _after_fork_in_child() -> None:
    global _DATABASES_LOCK
    for db in _FORKING:
        db._after_fork_in_child()
    _FORKING.clear()
    _DATABASES_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


def close_all() -> None:
    """Close every open database of this process (at exit, so DuckDB checkpoints cleanly)."""
    with _DATABASES_LOCK:
        databases = list(_DATABASES.values())
    for db in databases:
        db.close()
        reaper = db._reaper
        if reaper is not None and reaper is not threading.current_thread():
            # A thread still alive at interpreter exit keeps DuckDB's module from being freed.
            reaper.join(1.0)


def get_database(path: str, *, read_only: bool = False) -> Database:
    """The process-wide Database for ``path`` (same file, same object, same warm connection)."""
    key = (os.path.realpath(path), read_only)
    with _DATABASES_LOCK:
        if not _DATABASES:
            atexit.register(close_all)
        if read_only and (key[0], False) in _DATABASES:
            return _DATABASES[(key[0], False)]  # this process writes it: read through that
        db = _DATABASES.get(key)
        if db is None:
            db = _DATABASES[key] = Database(path, read_only=read_only)
            reader = None if read_only else _DATABASES.pop((key[0], True), None)
            if reader is not None:
                reader.redirect_to(db)
        return db
