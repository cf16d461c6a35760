"""What a DuckDB failure to open or write a store means for its user: a lock held by another
process (wait for a turn) or a file that cannot be used (say what to do)."""

from __future__ import annotations

import re

import duckdb

from ...errors import StorageError
from .._sink import TurnError

__all__ = ["LockedError", "is_lock_error", "lock_message", "storage_error"]

_LOCK_RE = re.compile(r"lock", re.IGNORECASE)


def is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and bool(_LOCK_RE.search(str(exc)))


class LockedError(TurnError):
    """The file is held by another process (a StorageError the writer retries later)."""


def lock_message(path: str, held: str | None, timeout_s: float) -> str:
    holder = re.search(r"PID (\d+)", held or "")
    who = f"process {holder.group(1)}" if holder else "another process"
    return (
        f"store {path} is locked by {who} (waited {timeout_s:g} s). DuckDB lets one process open "
        "a file at a time; the holder lets go when idle. Retry, stop that process, raise "
        "TRACEDUCK_LOCK_TIMEOUT_S, or run `traceduck collector` as the single writer."
    )


def storage_error(path: str, exc: BaseException) -> StorageError:
    text = str(exc)
    if "not a valid" in text.lower() or "corrupt" in text.lower() or "checksum" in text.lower():
        return StorageError(
            f"store {path} is not a readable DuckDB database ({text.splitlines()[0]}). It was left "
            "untouched; point TRACEDUCK_DB or --db at another file, or move this one away."
        )
    if isinstance(exc, duckdb.IOException) or "permission" in text.lower():
        return StorageError(f"cannot open store {path}: {text.splitlines()[0]}")
    return StorageError(f"store {path}: {text.splitlines()[0]}")
