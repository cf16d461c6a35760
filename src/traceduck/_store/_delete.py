"""Delete traces from a DuckDB store: spans, tags, metadata, both histories, in one transaction.

The traces to delete come from a ``Selection`` (engine-neutral: filter, ids, cutoff, cap). Their
ids and rowids are read once, inside the transaction, then every table loses their rows by a
semi-join on that list; an exclusive tag a deleted trace held is left without a holder. The
deletion is recorded in ``deletions`` in the same transaction, so data never leaves silently.
"""

from __future__ import annotations

import duckdb

from .. import _json, _runtime
from .._selection import Selection
from ..errors import StorageError
from ._connection import Database, query_arrow, registered
from ._reader import resolve_id
from ._tags import utcnow

__all__ = ["SOURCES", "count_selected", "delete_selected"]

SOURCES = ("api", "cli", "ui", "retention")
# Tables keyed by trace_id that lose the deleted traces' rows (traces itself goes last, by rowid).
_TRACE_TABLES = ("spans", "tag_events", "trace_metadata", "exclusive_holders")


def delete_selected(
    db: Database,
    selection: Selection,
    *,
    source: str,
    reclaim: bool = True,
    timeout_s: float | None = None,
) -> int:
    """Delete the selected traces in one transaction and record it; how many were deleted.

    ``reclaim``: afterwards, give the file's space back when enough of it is free (see
    ``_compact``). ``timeout_s``: how long to wait for a store another process holds.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    with db.transaction(timeout_s=timeout_s) as cur:
        selection = _resolve_prefixes(cur, selection)
        where = selection.where(cur)
        query = (
            "SELECT t.trace_id, t.rowid AS rid FROM traces t WHERE "
            + where.text
            + selection.order_and_limit().text
        )
        doomed = query_arrow(cur, query, list(where.params + selection.order_and_limit().params))
        count = doomed.num_rows
        if count:
            with registered(cur, "_td_doomed", doomed):
                for table in _TRACE_TABLES:
                    cur.execute(
                        f"DELETE FROM {table} WHERE trace_id IN (SELECT trace_id FROM _td_doomed)"
                    )
                cur.execute("DELETE FROM traces WHERE rowid IN (SELECT rid FROM _td_doomed)")
            ids = doomed.column("trace_id").to_pylist() if selection.trace_ids is not None else None
            _record(cur, selection, count, ids, source)
    if count and reclaim:
        from ._compact import reclaim_space

        try:
            reclaim_space(db, count)
        except (StorageError, duckdb.Error, OSError) as exc:  # the deletion itself stands
            _runtime.logger.warning(
                "traceduck: deleted %d traces from %s, but could not give the space back: %s",
                count,
                db.path,
                exc,
            )
    return count


def count_selected(cur: duckdb.DuckDBPyConnection, selection: Selection) -> int:
    """How many traces ``delete_selected`` would delete now (what the CLI and UI ask about)."""
    selection = _resolve_prefixes(cur, selection)
    where = selection.where(cur)
    limit = selection.order_and_limit()
    query = f"SELECT count(*) FROM (SELECT 1 FROM traces t WHERE {where.text}{limit.text})"
    return int(cur.execute(query, list(where.params + limit.params)).fetchall()[0][0])


def _resolve_prefixes(cur: duckdb.DuckDBPyConnection, selection: Selection) -> Selection:
    """Each id prefix replaced by the one trace it names (``TraceNotFoundError`` or
    ``AmbiguousTraceIdError`` otherwise: a prefix is typed by a person, and a typo must not
    pass as "deleted 0"). Full ids stay as they are: one not in the store is not deleted."""
    return selection.resolved({p: resolve_id(cur, p) for p in selection.prefixes})


def _record(
    cur: duckdb.DuckDBPyConnection,
    selection: Selection,
    count: int,
    ids: list[str] | None,
    source: str,
) -> None:
    what = selection.record(ids)
    cur.execute(
        "INSERT INTO deletions (ts, trace_count, filter, trace_ids, max_timestamp_ms, "
        "max_traces, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            utcnow(),
            count,
            what["filter"],
            None if what["trace_ids"] is None else _json.dumps(what["trace_ids"]),
            what["max_timestamp_ms"],
            what["max_traces"],
            source,
        ],
    )
