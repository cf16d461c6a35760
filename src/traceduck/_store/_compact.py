"""Give a DuckDB store's space back after a deletion.

DuckDB never shrinks a file on DELETE. A CHECKPOINT applies the deletion and marks the blocks it
emptied free, and later writes reuse them, but the file keeps its size (it even grows a little:
the checkpoint rewrites the row groups that lost rows before it frees the old ones). Measured
with DuckDB 2.0 on 100,000 generated traces (44.5 MiB): after deleting the oldest 90% and a
CHECKPOINT the file was 53 MiB, of which 59% free blocks; ``VACUUM`` changed nothing; a copy
(``COPY FROM DATABASE``) into a new file was 6.7 MiB.

So after a deletion that took at least ``COMPACT_FRACTION`` of the store's traces, or that leaves
at least that fraction of the file's blocks free, the store is rewritten: copied into a new file
beside it, which then replaces it (``Database.replace_file``: while this process still holds the
old file, so no other process writes to it in between). The block count alone would miss most
deletions: rows deleted from a row group that keeps some live rows free no block. Below that
fraction the space is left for new traces to fill. The copy holds the file for as long as it
takes to write every remaining trace (see the delete benchmark); other processes wait for it as
for any other holder.
"""

from __future__ import annotations

import os
import shutil

import duckdb

from .. import _runtime
from ._connection import Database

__all__ = ["COMPACT_FRACTION", "compact", "free_fraction", "reclaim_space"]

COMPACT_FRACTION = 0.25
_ALIAS = "_td_compact"


def free_fraction(con: duckdb.DuckDBPyConnection) -> float:
    """The fraction of the file's blocks that hold nothing (after a CHECKPOINT)."""
    query = "SELECT total_blocks, free_blocks FROM pragma_database_size()"
    total, free = con.execute(query).fetchall()[0]
    return free / total if total else 0.0


def reclaim_space(db: Database, deleted: int, *, threshold: float = COMPACT_FRACTION) -> bool:
    """After deleting ``deleted`` traces: CHECKPOINT, then rewrite the file if the deletion took
    at least ``threshold`` of the traces or that much of the file is free. True when the file
    was rewritten. A failure to rewrite is logged and leaves the store as it was."""
    with db.exclusive() as con:
        con.execute("CHECKPOINT")
        left = con.execute("SELECT count(*) FROM traces").fetchall()[0][0]
        share = deleted / (deleted + left) if deleted + left else 0.0
        if share < threshold and free_fraction(con) < threshold:
            return False
        return compact(db, con)


def compact(db: Database, con: duckdb.DuckDBPyConnection) -> bool:
    """Inside ``db.exclusive()``: copy the database into a new file and put it in the old one's
    place. False (store untouched) when that cannot be done here."""
    path = os.path.realpath(db.path)  # a symlinked store: rewrite the file it points to
    tmp = f"{path}.compacting"
    for stale in (tmp, f"{tmp}.wal"):  # a rewrite that died half-way (we hold the store now)
        if os.path.exists(stale):
            os.remove(stale)
    source = con.execute("SELECT current_database()").fetchall()[0][0]
    try:
        con.execute("CHECKPOINT")
        con.execute(f"ATTACH {_literal(tmp)} AS {_ALIAS}")
        try:
            con.execute(f"COPY FROM DATABASE {_identifier(source)} TO {_ALIAS}")
            copied = con.execute(f"SELECT count(*) FROM {_ALIAS}.traces").fetchall()[0][0]
            kept = con.execute("SELECT count(*) FROM traces").fetchall()[0][0]
        finally:
            con.execute(f"DETACH {_ALIAS}")
        if copied != kept or os.path.exists(f"{tmp}.wal") or os.path.exists(f"{path}.wal"):
            raise RuntimeError(
                f"the copy holds {copied} traces of {kept}, or a write-ahead log was left"
            )
        try:
            shutil.copymode(path, tmp)
        except OSError:
            pass
        db.replace_file(tmp)
        return True
    except Exception as exc:
        _runtime.logger.warning("traceduck: could not compact %s (left as it was): %s", path, exc)
        for leftover in (tmp, f"{tmp}.wal"):
            try:
                os.remove(leftover)
            except OSError:
                pass
        return False


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'
