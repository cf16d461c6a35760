"""Delete traces from a ClickHouse store: spans, tags, metadata, both histories, and the record.

The traces come from the same ``Selection`` as on DuckDB (its SQL rendered for ClickHouse), read
once into a list of ids. ClickHouse has no multi-statement transaction, so the order of the
steps is what keeps readers and a retry right:

1. an exclusive tag a doomed trace holds is released (one insert of ``release`` rows that name
   no trace), so the key has no holder even once that trace's own claim rows are gone;
2. a lightweight ``DELETE FROM ... WHERE trace_id IN (...)`` on ``spans``, ``td_tag_events``
   and ``td_metadata``, then on ``td_traces`` last: every read goes through the trace rows, so
   a doomed trace stays listed (perhaps missing spans or tags meanwhile) until its trace row
   goes, and a deletion cut short leaves traces that the same call deletes when run again;
3. the record in ``deletions``.

Lightweight deletes, not ``ALTER TABLE ... DELETE`` mutations: a mutation rewrites every part
holding a doomed row. With ``lightweight_delete_mode = 'lightweight_update'`` and the block
number columns the schema (version 4) turns on, a DELETE writes one small patch part that masks
the rows on every read from the moment it returns, and merges drop them later (so space comes
back as ClickHouse merges, not at the call); without them (a table that cannot take patches)
ClickHouse falls back to masking the rows in each part (``lightweight_deletes_sync = 2``: the
call returns when they are masked), several times slower (benchmarks/delete_clickhouse.py).
Both work on the engines the tables use (MergeTree and, read with FINAL, ReplacingMergeTree).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ... import _json
from ..._selection import SOURCES, Selection
from ...query._dialect import sql
from ._client import Connection
from ._clock import stamp
from ._dialect import CLICKHOUSE
from ._events import EditRows, holders
from ._query import ClickHouseRunner

__all__ = ["count_selected", "delete_selected"]

# Every table that holds rows per trace, the trace rows last (see the module docstring).
TABLES = ("spans", "td_tag_events", "td_metadata", "td_traces")
DELETE_SETTINGS = {"lightweight_delete_mode": "lightweight_update", "lightweight_deletes_sync": 2}
DELETION_SCHEMA = pa.schema(
    [
        ("deletion_id", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("trace_count", pa.int64()),
        ("filter", pa.string()),
        ("trace_ids", pa.string()),
        ("max_timestamp_ms", pa.int64()),
        ("max_traces", pa.int64()),
        ("source", pa.string()),
    ]
)


def count_selected(conn: Connection, selection: Selection) -> int:
    """How many traces ``delete_selected`` would delete now (prefixes resolved already)."""
    text, params = _selected(conn, selection, "1")
    rows = ClickHouseRunner(conn).rows(
        f"SELECT count() FROM ({text})", params, selection.filter_string or ""
    )
    return int(rows[0][0])


def delete_selected(conn: Connection, selection: Selection, *, source: str) -> int:
    """Delete the selected traces (prefixes resolved already) and record it; how many."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    text, params = _selected(conn, selection, "t.trace_id")
    runner = ClickHouseRunner(conn)
    doomed = [r[0] for r in runner.rows(text, params, selection.filter_string or "")]
    if not doomed:
        return 0
    _release_held(conn, doomed, source)
    for table in TABLES:
        conn.command(
            f"DELETE FROM {table} WHERE trace_id IN {{ids:Array(String)}}",
            {"ids": doomed},
            **DELETE_SETTINGS,
        )
    _record(conn, selection, doomed, source)
    return len(doomed)


def _selected(conn: Connection, selection: Selection, columns: str) -> tuple[str, dict[str, Any]]:
    """The SELECT of the selected traces' ``columns`` (oldest first under a cap), rendered."""
    runner = ClickHouseRunner(conn)
    where = selection.where(runner, CLICKHOUSE)
    frag = sql(
        f"SELECT {columns} FROM {CLICKHOUSE.traces_from} WHERE {{}}{{}}",
        where,
        selection.order_and_limit(),
    )
    return CLICKHOUSE.render(frag)


def _release_held(conn: Connection, doomed: list[str], source: str) -> None:
    """One insert of ``release`` rows for each exclusive (key, scope) a doomed trace holds.

    The rows name no trace (``trace_id = ''``): the deletion takes the trace's own rows, and a
    release must outlive them, or an older claimant's claim would be the latest again."""
    claimed = conn.query(
        "SELECT DISTINCT key, claim_scope FROM td_tag_events "
        "WHERE kind = 'claim' AND trace_id IN {ids:Array(String)}",
        {"ids": doomed},
    )
    if not claimed:
        return
    gone = set(doomed)
    edit = EditRows(source)
    for (key, where), holder in sorted(holders(conn, [tuple(p) for p in claimed]).items()):
        if holder in gone:
            edit.release("", key, where)
    edit.insert(conn)


def _record(conn: Connection, selection: Selection, doomed: list[str], source: str) -> None:
    """The deletion's row in ``deletions`` (its id: the time in nanoseconds, so ids grow)."""
    what = selection.record(doomed if selection.trace_ids is not None else None)
    when = stamp()
    row = {
        "deletion_id": [when.version],
        "ts": [when.ts],
        "trace_count": [len(doomed)],
        "filter": [what["filter"]],
        "trace_ids": [None if what["trace_ids"] is None else _json.dumps(what["trace_ids"])],
        "max_timestamp_ms": [what["max_timestamp_ms"]],
        "max_traces": [what["max_traces"]],
        "source": [source],
    }
    conn.insert_arrow("deletions", pa.table(row, schema=DELETION_SCHEMA))
