"""A big deletion as a rewrite: the traces that stay are copied into a new file, which replaces
the store. This is how a DuckDB store gives space back.

DuckDB never shrinks a file on DELETE. A CHECKPOINT marks emptied blocks free for later writes,
and it first rewrites every row group that lost rows ("vacuum"), so the file grows. Measured with
DuckDB 2.0 on 100,000 generated traces (44.5 MiB): deleting the oldest 90% and a CHECKPOINT left
a 53 MiB file; ``VACUUM`` changed nothing; a copy into a new file was 6.7 MiB. On 1,000,000 traces
deleting a scattered 10% in place cost 5 s, then 12 s of checkpoint, and the file grew to 540 MB;
copying the 90% that stayed took 16 s and gave 418 MB.

So a deletion that takes at least ``REWRITE_FRACTION`` of the traces is done by copying what stays
(every table's rows but the deleted traces', the schema, sequences and the deletion's record)
into ``PATH.compacting`` and putting that file in the store's place (``Database.replace_file``:
while this process still holds the old file, so no other process writes in between). The old
file is never changed: until the swap the store is as it was, and a failure leaves it so.
Smaller deletions run in place and leave their space to the traces written next.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import duckdb
import pyarrow as pa

from ... import _runtime
from ._arrow import registered
from ._connection import Database

__all__ = ["REWRITE_FRACTION", "rewrite_without"]

REWRITE_FRACTION = 0.10
_NEW = "_td_rewrite"


def rewrite_without(
    db: Database,
    con: duckdb.DuckDBPyConnection,
    doomed: pa.Table,
    record: Callable[[duckdb.DuckDBPyConnection, str], None],
) -> bool:
    """Inside ``db.exclusive()``: replace the store with a copy that lacks the traces in
    ``doomed`` (a ``trace_id`` column) and holds the deletion's record (``record(con,
    catalog)`` inserts it into that catalog). False, and the store untouched, when it cannot be
    done here (the caller then deletes in place)."""
    path = os.path.realpath(db.path)  # a symlinked store: rewrite the file it points to
    tmp = f"{path}.compacting"
    _remove(tmp, f"{tmp}.wal")  # a rewrite that died half-way (we hold the store now)
    try:
        con.execute("CHECKPOINT")  # the old file complete: no log of it may sit beside the new
        if os.path.exists(f"{path}.wal"):
            raise RuntimeError(f"{path}.wal remains after a CHECKPOINT")
        source = con.execute("SELECT current_database()").fetchall()[0][0]
        kept = con.execute("SELECT count(*) FROM traces").fetchall()[0][0] - doomed.num_rows
        con.execute(f"ATTACH {_literal(tmp)} AS {_NEW}")
        try:
            _copy(con, source, doomed)
            record(con, _NEW)
            copied = con.execute(f"SELECT count(*) FROM {_NEW}.traces").fetchall()[0][0]
        finally:
            con.execute(f"DETACH {_NEW}")
        if copied != kept or os.path.exists(f"{tmp}.wal"):
            raise RuntimeError(f"the copy holds {copied} traces, not {kept}")
        try:
            shutil.copymode(path, tmp)
        except OSError:
            pass
        db.replace_file(tmp)
        return True
    except Exception as exc:
        _runtime.logger.warning(
            "traceduck: could not rewrite %s (deleting in place instead): %s", path, exc
        )
        _remove(tmp, f"{tmp}.wal")
        return False


def _copy(con: duckdb.DuckDBPyConnection, source: str, doomed: pa.Table) -> None:
    """Schema (tables, views, sequences at their current values) and rows into ``_NEW``; a
    table with a ``trace_id`` column loses the doomed traces' rows. Tables are found in the
    catalog, so tables added by later versions are copied too."""
    con.execute(f"COPY FROM DATABASE {_identifier(source)} TO {_NEW} (SCHEMA)")
    tables = con.execute(
        "SELECT t.table_name, bool_or(c.column_name = 'trace_id') FROM duckdb_tables() t "
        "JOIN duckdb_columns() c ON c.database_name = t.database_name "
        "AND c.schema_name = t.schema_name AND c.table_name = t.table_name "
        "WHERE t.database_name = ? AND t.schema_name = 'main' AND NOT t.temporary "
        "GROUP BY t.table_name ORDER BY t.table_name",
        [source],
    ).fetchall()
    with registered(con, "_td_doomed", doomed):
        for table, keyed in tables:
            name = _identifier(table)
            where = " WHERE trace_id NOT IN (SELECT trace_id FROM _td_doomed)" if keyed else ""
            con.execute(
                f"INSERT INTO {_NEW}.main.{name} "
                f"SELECT * FROM {_identifier(source)}.main.{name}{where}"
            )


def _remove(*paths: str) -> None:
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            _runtime.logger.warning("traceduck: could not remove %s: %s", path, exc)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'
