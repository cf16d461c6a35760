"""Delete traces from a DuckDB store: spans, tags, metadata, both histories, all or nothing.

The traces to delete come from a ``Selection`` (engine-neutral: filter, ids, cutoff, cap). Their
ids are read once; then either every table keyed by ``trace_id`` loses their rows in one
transaction (a semi-join on that list), or, for a deletion of at least a tenth of the store,
what stays is copied into a new file that replaces the store (``_compact``: the only way the
file shrinks). Either way an exclusive tag a deleted trace held is left without a holder, and
the deletion is recorded in ``deletions`` together with it, so data never leaves silently.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from ... import _json
from ..._selection import SOURCES, Selection
from ._arrow import query_arrow, registered
from ._compact import REWRITE_FRACTION, rewrite_without
from ._connection import Database
from ._reader import resolve_id
from ._runner import DuckDBRunner
from ._tags import utcnow

__all__ = ["count_selected", "delete_selected"]


def delete_selected(
    db: Database,
    selection: Selection,
    *,
    source: str,
    rewrite: bool = True,
    timeout_s: float | None = None,
) -> int:
    """Delete the selected traces and record it; how many were deleted.

    ``rewrite=False`` (retention's small steps): always one short transaction in place. Else
    the whole deletion holds the store (``Database.exclusive``: other threads of this process
    wait, other processes find it locked), and a big one rewrites the file. ``timeout_s``: how
    long to wait for a store another process holds.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    if not rewrite:
        with db.transaction(timeout_s=timeout_s) as cur:
            selection = _resolve_prefixes(cur, selection)
            doomed = _doomed(cur, selection)
            if doomed.num_rows:
                _delete_in_place(cur, doomed)
                _record(cur, "", selection, doomed, source)
            return doomed.num_rows
    with db.exclusive(timeout_s=timeout_s) as con:
        selection = _resolve_prefixes(con, selection)
        doomed = _doomed(con, selection)
        count = doomed.num_rows
        if not count:
            return 0
        total = con.execute("SELECT count(*) FROM traces").fetchall()[0][0]

        def record(cur: duckdb.DuckDBPyConnection, catalog: str) -> None:
            _record(cur, f"{catalog}.", selection, doomed, source)

        if count >= REWRITE_FRACTION * total and rewrite_without(db, con, doomed, record):
            return count
        con.execute("BEGIN TRANSACTION")
        try:
            _delete_in_place(con, doomed)
            _record(con, "", selection, doomed, source)
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        return count


def count_selected(cur: duckdb.DuckDBPyConnection, selection: Selection) -> int:
    """How many traces ``delete_selected`` would delete now (what the CLI and UI ask about)."""
    selection = _resolve_prefixes(cur, selection)
    where = selection.where(DuckDBRunner(cur))
    limit = selection.order_and_limit()
    query = f"SELECT count(*) FROM (SELECT 1 FROM traces t WHERE {where.text}{limit.text})"
    return int(cur.execute(query, list(where.params + limit.params)).fetchall()[0][0])


def _resolve_prefixes(cur: duckdb.DuckDBPyConnection, selection: Selection) -> Selection:
    """Each id prefix replaced by the one trace it names (``TraceNotFoundError`` or
    ``AmbiguousTraceIdError`` otherwise: a prefix is typed by a person, and a typo must not
    pass as "deleted 0"). Full ids stay as they are: one not in the store is not deleted."""
    return selection.resolved({p: resolve_id(cur, p) for p in selection.prefixes})


def _doomed(cur: duckdb.DuckDBPyConnection, selection: Selection) -> pa.Table:
    """The selected traces' ids and rowids."""
    where = selection.where(DuckDBRunner(cur))
    limit = selection.order_and_limit()
    query = f"SELECT t.trace_id, t.rowid AS rid FROM traces t WHERE {where.text}{limit.text}"
    return query_arrow(cur, query, list(where.params + limit.params))


def _delete_in_place(cur: duckdb.DuckDBPyConnection, doomed: pa.Table) -> None:
    """Inside a transaction: every table keyed by trace_id loses the doomed traces' rows (the
    trace rows last, by rowid)."""
    tables = [
        name
        for (name,) in cur.execute(
            "SELECT table_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND column_name = 'trace_id' AND table_name != 'traces' "
            "AND table_name IN (SELECT table_name FROM duckdb_tables() "
            "WHERE database_name = current_database()) ORDER BY table_name"
        ).fetchall()
    ]
    with registered(cur, "_td_doomed", doomed):
        for table in tables:
            cur.execute(
                f'DELETE FROM "{table}" WHERE trace_id IN (SELECT trace_id FROM _td_doomed)'
            )
        cur.execute("DELETE FROM traces WHERE rowid IN (SELECT rid FROM _td_doomed)")


def _record(
    cur: duckdb.DuckDBPyConnection,
    prefix: str,
    selection: Selection,
    doomed: pa.Table,
    source: str,
) -> None:
    """The deletion's row in ``{prefix}deletions``."""
    ids = doomed.column("trace_id").to_pylist() if selection.trace_ids is not None else None
    what = selection.record(ids)
    cur.execute(
        f"INSERT INTO {prefix}deletions (ts, trace_count, filter, trace_ids, max_timestamp_ms, "
        "max_traces, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            utcnow(),
            doomed.num_rows,
            what["filter"],
            None if what["trace_ids"] is None else _json.dumps(what["trace_ids"]),
            what["max_timestamp_ms"],
            what["max_traces"],
            source,
        ],
    )
