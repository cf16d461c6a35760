"""Tag primitives inside a write transaction: current tags, exclusive moves, events.

``traces.tags`` (a JSON object) is the single source of truth for a trace's current tags; every
change appends to ``tag_events``. Both live tags (written with the trace) and later edits (API,
CLI, UI) go through these functions, so history and exclusivity behave the same everywhere.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ... import _json
from .._records import rows_to_numpy
from .._tagrules import TagChange, apply, removal, scope_value
from ._arrow import registered
from ._reader import lookup_id, resolve_id

EVENT_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us")),
        ("trace_id", pa.string()),
        ("key", pa.string()),
        ("old_value", pa.string()),
        ("new_value", pa.string()),
        ("operation", pa.string()),
        ("source", pa.string()),
    ]
)

# One history event: (ts, trace_id, key, old JSON or None, new JSON or None, operation, source)
Event = tuple[datetime, str, str, "str | None", "str | None", str, str]


def events_of(now: datetime, trace_id: str, changes: list[TagChange], source: str) -> list[Event]:
    """The history events of a trace's ``changes`` (``_tagrules``)."""
    return [(now, trace_id, c.key, c.old_text, c.new_text, c.operation, source) for c in changes]


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def exclusive_keys(cur: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Registered exclusive keys and their scopes."""
    return dict(cur.execute("SELECT key, scope FROM tag_keys WHERE exclusive").fetchall())


def register(cur: duckdb.DuckDBPyConnection, key: str, exclusive: bool, scope: str) -> None:
    cur.execute(
        "INSERT INTO tag_keys VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET exclusive = excluded.exclusive, scope = excluded.scope",
        [key, exclusive, scope],
    )


def load_tags(cur: duckdb.DuckDBPyConnection, trace_id: str) -> tuple[dict[str, Any], str | None]:
    """(current tags, root name) of one stored trace."""
    row = cur.execute("SELECT tags, name FROM traces WHERE trace_id = ?", [trace_id]).fetchone()
    if row is None:
        return {}, None
    return (_json.loads(row[0]) or {}), row[1]


def load_for_edit(
    cur: duckdb.DuckDBPyConnection, id_or_prefix: str, key: str
) -> tuple[str, dict[str, Any], str | None, str | None]:
    """(full trace id, current tags, root name, the key's registered exclusive scope or None)
    for an edit: one query for a full id (each statement costs ~0.5 ms on a large store)."""
    tid = lookup_id(cur, id_or_prefix)
    row = cur.execute(  # (a scalar subquery here costs DuckDB the primary-key lookup: 3 ms)
        "SELECT t.tags, t.name, k.scope FROM traces t "
        "LEFT JOIN tag_keys k ON k.key = ? AND k.exclusive WHERE t.trace_id = ?",
        [key, tid],
    ).fetchall()
    if not row:
        return resolve_id(cur, id_or_prefix), {}, None, None  # raises the not-found error
    tags, name, scope = row[0]
    return tid, (_json.loads(tags) or {}), name, scope


def store_tags(cur: duckdb.DuckDBPyConnection, trace_id: str, tags: dict[str, Any]) -> None:
    cur.execute("UPDATE traces SET tags = ? WHERE trace_id = ?", [_json.dumps(tags), trace_id])


def claim_exclusive(
    cur: duckdb.DuckDBPyConnection,
    *,
    trace_id: str,
    trace_name: str | None,
    key: str,
    scope: str,
    source: str,
    now: datetime,
) -> list[Event]:
    """Make ``trace_id`` the one holder of ``key`` in its scope; the old holder loses the tag.
    One edit's claim; many at once go through ``claim_all`` (whose table registrations would
    cost a single edit half as much again)."""
    where = scope_value(scope, trace_name)
    events: list[Event] = []
    row = cur.execute(
        "SELECT trace_id FROM exclusive_holders WHERE key = ? AND scope = ?", [key, where]
    ).fetchone()
    if row is not None and row[0] != trace_id:
        old_tags, _ = load_tags(cur, row[0])
        if key in old_tags:
            moved = [removal(old_tags, key, "moved")]
            store_tags(cur, row[0], apply(old_tags, moved))
            events += events_of(now, row[0], moved, source)
    cur.execute(
        "INSERT INTO exclusive_holders VALUES (?, ?, ?) "
        "ON CONFLICT (key, scope) DO UPDATE SET trace_id = excluded.trace_id",
        [key, where, trace_id],
    )
    return events


def claim_all(
    cur: duckdb.DuckDBPyConnection,
    claims: list[tuple[str, str, str]],
    *,
    source: str,
    now: datetime,
) -> list[Event]:
    """``claim_exclusive`` for each (trace id, key, scope value) of ``claims``, in order: each
    takes the key from the holder before it, stored or an earlier claim of the list, and that
    holder loses the tag (``moved``). A write batch's live claims, in a few statements for the
    whole batch: one claim apiece took four (~3 ms), and a batch of thousands outlasted the
    queue's patience."""
    pairs = sorted({(key, where) for _, key, where in claims})
    pair_table = {"key": np.array([k for k, _ in pairs], dtype=object),
                  "scope": np.array([w for _, w in pairs], dtype=object)}  # fmt: skip
    with registered(cur, "_td_pairs", pair_table):
        stored = cur.execute(
            "SELECT h.key, h.scope, h.trace_id FROM exclusive_holders h "
            "JOIN _td_pairs p ON h.key = p.key AND h.scope = p.scope"
        ).fetchall()
    holder = {(key, where): tid for key, where, tid in stored}
    losers: list[tuple[str, str]] = []
    for trace_id, key, where in claims:
        old = holder.get((key, where))
        if old is not None and old != trace_id:
            losers.append((old, key))
        holder[(key, where)] = trace_id
    events: list[Event] = []
    if losers:
        ids = {"trace_id": np.array(sorted({t for t, _ in losers}), dtype=object)}
        with registered(cur, "_td_ids", ids):
            found = cur.execute(
                "SELECT trace_id, tags FROM traces WHERE trace_id IN (SELECT trace_id FROM _td_ids)"
            ).fetchall()
        tags = {tid: (_json.loads(text) or {}) for tid, text in found}
        changed: set[str] = set()
        for old, key in losers:
            held = tags.get(old)
            if held and key in held:
                moved = [removal(held, key, "moved")]
                apply(held, moved)
                events += events_of(now, old, moved, source)
                changed.add(old)
        if changed:
            updates = {
                "trace_id": np.array(sorted(changed), dtype=object),
                "tags": np.array([_json.dumps(tags[t]) for t in sorted(changed)], dtype=object),
            }
            with registered(cur, "_td_tags", updates):
                cur.execute(
                    "UPDATE traces SET tags = u.tags FROM _td_tags u "
                    "WHERE traces.trace_id = u.trace_id"
                )
    final = sorted((key, where, tid) for (key, where), tid in holder.items())
    holders = {name: np.array(column, dtype=object)
               for name, column in zip(("key", "scope", "trace_id"), zip(*final))}  # fmt: skip
    with registered(cur, "_td_holders", holders):
        cur.execute(
            "INSERT INTO exclusive_holders SELECT key, scope, trace_id FROM _td_holders "
            "ON CONFLICT (key, scope) DO UPDATE SET trace_id = excluded.trace_id"
        )
    return events


def release_exclusive(cur: duckdb.DuckDBPyConnection, trace_id: str, key: str) -> None:
    cur.execute("DELETE FROM exclusive_holders WHERE key = ? AND trace_id = ?", [key, trace_id])


INSERT_EVENTS_SQL = (
    "INSERT INTO tag_events (ts, trace_id, key, old_value, new_value, operation, source) "
    "SELECT * FROM _td_events"
)


def events_table(events: list[Event]) -> dict[str, np.ndarray]:
    """History events as NumPy columns for ``INSERT_EVENTS_SQL``: not Arrow, whose first
    conversion of Python values imports pandas (a second of a core, and its objects in every
    later full GC) in a process that traces with live tags (``rows_to_numpy``)."""
    return rows_to_numpy(events, EVENT_SCHEMA)


def insert_events(cur: duckdb.DuckDBPyConnection, events: list[Event]) -> None:
    if not events:
        return
    if len(events) == 1:  # one edit: a plain insert (registering an Arrow table costs more)
        cur.execute(
            "INSERT INTO tag_events (ts, trace_id, key, old_value, new_value, operation, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            list(events[0]),
        )
        return
    with registered(cur, "_td_events", events_table(events)):
        cur.execute(INSERT_EVENTS_SQL)
