"""Tag and metadata events: built in Python, written as ONE insert per edit.

Every change of a tag is a row of ``td_tag_events``; an edit (one tag, a bulk edit, an
exclusive move with the old holder's ``moved`` event and the claim, the live tags of a write
batch) is one ``EditRows`` inserted with one Arrow insert, so it lands whole or not at all and
a reader sees all of it or none of it.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ... import _json
from .._tagrules import TagChange
from ._client import Connection
from ._clock import Stamp, stamp
from ._sql import LATEST, current_metadata, current_tags, stale_claims

__all__ = [
    "DOCUMENT_SETTINGS",
    "EditRows",
    "MetadataRows",
    "document_tables",
    "documents",
    "exclusive_keys",
    "holders",
    "load_documents",
    "load_metadata",
    "load_tags",
    "typed",
]

TAG_EVENT_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("key", pa.string()),
        ("version", pa.uint64()),
        ("edit_id", pa.uint64()),
        ("seq", pa.uint32()),
        ("kind", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("operation", pa.string()),
        ("source", pa.string()),
        ("old_value", pa.string()),
        ("new_value", pa.string()),
        ("value_type", pa.string()),
        ("value_str", pa.string()),
        ("value_num", pa.float64()),
        ("value_bool", pa.bool_()),
        ("claim_scope", pa.string()),
    ]
)
METADATA_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("key", pa.string()),
        ("version", pa.uint64()),
        ("edit_id", pa.uint64()),
        ("seq", pa.uint32()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("value", pa.string()),
        ("source", pa.string()),
    ]
)
_NO_VALUE = ("", "", 0.0, False)


def typed(value: Any) -> tuple[str, str, float, bool]:
    """(JSON type, string value, number value, boolean value) of a JSON value."""
    kind = _json.json_type(value)
    if kind == "boolean":
        return (kind, "", 0.0, value)
    if kind == "number":
        return (kind, "", float(value), False)
    if kind == "string":  # U+FFFD for a lone surrogate, as in the JSON text: UTF-8 cannot hold it
        return (kind, _json.utf8(value), 0.0, False)
    return (kind, "", 0.0, False)


class EditRows:
    """The rows of one edit (all share its version and edit id)."""

    def __init__(self, source: str, when: Stamp | None = None) -> None:
        self.source = source
        self.stamp = when or stamp()
        self.rows: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def events(self) -> int:
        return sum(1 for r in self.rows if r[0] == "event")

    def changes(self, trace_id: str, changes: list[TagChange]) -> None:
        """The history events of a trace's ``changes`` (``_tagrules``)."""
        for c in changes:
            value = _NO_VALUE if c.removes else typed(c.new_value)
            self.rows.append(
                ("event", trace_id, c.key, c.operation, c.old_text, c.new_text, value, "")
            )

    def claim(self, trace_id: str, key: str, scope_value: str) -> None:
        self.rows.append(("claim", trace_id, key, "", None, None, _NO_VALUE, scope_value))

    def release(self, trace_id: str, key: str, scope_value: str) -> None:
        self.rows.append(("release", trace_id, key, "", None, None, _NO_VALUE, scope_value))

    def table(self) -> pa.Table:
        n = len(self.rows)
        s = self.stamp
        # The rows' fields as columns, transposed in C (zip) rather than appended one by one.
        kind, tid, key, op, old, new, value, scope = zip(*self.rows) if n else ((),) * 8
        value_type, value_str, value_num, value_bool = zip(*value) if n else ((),) * 4
        cols = {
            "trace_id": tid, "key": key, "version": [s.version] * n,
            "edit_id": [s.edit_id] * n, "seq": range(n), "kind": kind, "ts": [s.ts] * n,
            "operation": op, "source": [self.source] * n, "old_value": old, "new_value": new,
            "value_type": value_type, "value_str": value_str, "value_num": value_num,
            "value_bool": value_bool, "claim_scope": scope,
        }  # fmt: skip
        return pa.table(cols, schema=TAG_EVENT_SCHEMA)  # the schema's order

    def insert(self, conn: Connection) -> None:
        if self.rows:
            conn.insert_arrow("td_tag_events", self.table())


class MetadataRows:
    """Metadata entries of one write (one insert)."""

    def __init__(self, source: str, when: Stamp | None = None) -> None:
        self.source = source
        self.stamp = when or stamp()
        self.rows: list[tuple[str, str, str, Any]] = []  # trace, key, JSON text, ts or None

    def add(self, trace_id: str, key: str, text: str, ts: Any = None) -> None:
        self.rows.append((trace_id, key, text, ts))

    def insert(self, conn: Connection) -> None:
        if self.rows:
            conn.insert_arrow("td_metadata", self.table())

    def table(self) -> pa.Table:
        s = self.stamp
        n = len(self.rows)
        return pa.table(
            {
                "trace_id": [r[0] for r in self.rows],
                "key": [r[1] for r in self.rows],
                "version": [s.version] * n,
                "edit_id": [s.edit_id] * n,
                "seq": list(range(n)),
                "ts": [r[3] or s.ts for r in self.rows],
                "value": [r[2] for r in self.rows],
                "source": [self.source] * n,
            },
            schema=METADATA_SCHEMA,
        )


def exclusive_keys(conn: Connection) -> dict[str, str]:
    """Registered exclusive keys and their scopes (the latest registration of each key)."""
    rows = conn.query(
        "SELECT key, tupleElement(r, 2) FROM (SELECT key, argMax(tuple(exclusive, scope), "
        "tuple(version, edit_id)) AS r FROM td_tag_keys GROUP BY key) WHERE tupleElement(r, 1)"
    )
    return dict(rows)


def register(conn: Connection, key: str, exclusive: bool, scope: str) -> None:
    s = stamp()
    conn.command(
        "INSERT INTO td_tag_keys VALUES ({k:String}, {e:Bool}, {s:String}, {v:UInt64}, {i:UInt64})",
        {"k": key, "e": exclusive, "s": scope, "v": s.version, "i": s.edit_id},
    )


def load_tags(conn: Connection, trace_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Current tags of each trace (traces without tags are left out)."""
    if not trace_ids:
        return {}
    rows = conn.query(
        "SELECT trace_id, key, value FROM "
        f"({current_tags('trace_id IN {ids:Array(String)}', by_key=False)}) "
        "ORDER BY trace_id, key",
        {"ids": trace_ids},
    )
    out: dict[str, dict[str, Any]] = {}
    for tid, key, value in rows:
        out.setdefault(tid, {})[key] = _json.loads(value)
    return out


def load_metadata(conn: Connection, trace_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Latest metadata value per key of each trace, keys in the order they were first logged."""
    if not trace_ids:
        return {}
    rows = conn.query(
        "SELECT trace_id, key, argMax(value, " + LATEST + ") AS v, min(" + LATEST + ") AS first "
        "FROM td_metadata WHERE trace_id IN {ids:Array(String)} GROUP BY trace_id, key "
        "ORDER BY trace_id, first",
        {"ids": trace_ids},
    )
    out: dict[str, dict[str, Any]] = {}
    for tid, key, value, _ in rows:
        out.setdefault(tid, {})[key] = _json.loads(value)
    return out


# A JSON object from (key, JSON text) pairs, keys in the order of ``sort`` (as load_tags and
# load_metadata give them), written as _json.dumps writes it (compact, "/" unescaped).
_DOCUMENT = (
    "concat('{{', arrayStringConcat(arrayMap(x -> tupleElement(x, 2), arraySort(x -> "
    "tupleElement(x, 1), groupArray(({sort}, concat(toJSONString(key), ':', value))))), ','), "
    "'}}')"
)
DOCUMENT_SETTINGS = {"output_format_json_escape_forward_slashes": 0}


def documents(conn: Connection, trace_filter: str, params: dict[str, Any]) -> pa.Table:
    """(trace_id, tags, metadata) of the traces ``trace_filter`` selects (SQL over trace_id),
    current tags and latest metadata as JSON text, computed in the engine: what a table of many
    traces needs, without a round trip of their ids (a parameter of 300,000 ids takes ClickHouse
    longer to parse than the query takes to run)."""
    tags, metadata = document_tables(trace_filter)
    return conn.query_arrow(
        "SELECT trace_id, if(max(tg) = '', '{}', max(tg)) AS tags, "
        "if(max(md) = '', '{}', max(md)) AS metadata FROM ("
        f"SELECT trace_id, tags AS tg, '' AS md FROM ({tags}) UNION ALL "
        f"SELECT trace_id, '', metadata FROM ({metadata})) GROUP BY trace_id",
        params,
        **DOCUMENT_SETTINGS,
    )


def document_tables(trace_filter: str = "", *, narrow_claims: bool = True) -> tuple[str, str]:
    """(trace_id, tags) and (trace_id, metadata) as JSON text, as ``documents`` writes them, for
    joining to a query's rows: one row per trace that has any, of the traces ``trace_filter``
    (SQL over trace_id; a superset of the rows joined is harmless) or of all. Two plain
    aggregations, as a user would join them by hand; the current tag is the latest event's
    value, read without the typed columns the filters need.

    ``narrow_claims``: look for superseded exclusive claims among those traces only (cheap for
    a list of ids); off, among all, which gives the same rows and spares running a filter
    subquery ``trace_filter`` once more (every match of a search: ~15% of its time)."""
    tag_where = f" AND {trace_filter}" if trace_filter else ""
    where = f" WHERE {trace_filter}" if trace_filter else ""
    stale = stale_claims(trace_filter if narrow_claims else "")
    # Keys in the order they were set, as DuckDB keeps them (a Python dict's order): an update
    # keeps a key's place, a key deleted (or moved away) and set again comes last. ``since``:
    # the latest event that found the key absent (old value NULL), the start of its current run.
    tags = (
        f"SELECT trace_id, {_DOCUMENT.format(sort='since')} AS tags FROM (SELECT trace_id, key, "
        f"argMax(new_value, {LATEST}) AS value, argMax(value_type, {LATEST}) AS value_type, "
        f"maxIf({LATEST}, isNull(old_value)) AS since "
        f"FROM td_tag_events WHERE kind = 'event'{tag_where} GROUP BY trace_id, key) "
        f"WHERE value_type != '' AND (key, trace_id) NOT IN ({stale}) GROUP BY trace_id"
    )
    metadata = (
        f"SELECT trace_id, {_DOCUMENT.format(sort='first')} AS metadata FROM (SELECT trace_id, "
        f"key, argMax(value, {LATEST}) AS value, min({LATEST}) AS first FROM td_metadata{where} "
        "GROUP BY trace_id, key) GROUP BY trace_id"
    )
    return tags, metadata


def load_documents(
    conn: Connection, trace_ids: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """``load_tags`` and ``load_metadata`` of a page of traces in one round trip."""
    if not trace_ids:
        return {}, {}
    tags, metadata = document_tables("trace_id IN {ids:Array(String)}")
    rows = conn.query(
        f"SELECT trace_id, 0, tags FROM ({tags}) UNION ALL "
        f"SELECT trace_id, 1, metadata FROM ({metadata})",
        {"ids": trace_ids},
        **DOCUMENT_SETTINGS,
    )
    out: tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]] = ({}, {})
    for tid, which, text in rows:
        out[which][tid] = _json.loads(text)
    return out


def holders(conn: Connection, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The current holder of each (key, scope value) that has one."""
    if not pairs:
        return {}
    rows = conn.query(
        "SELECT key, claim_scope, tupleElement(h, 1) FROM (SELECT key, claim_scope, "
        f"argMax(tuple(trace_id, kind), {LATEST}) AS h FROM td_tag_events "
        "WHERE kind != 'event' AND key IN {keys:Array(String)} GROUP BY key, claim_scope) "
        "WHERE tupleElement(h, 2) = 'claim'",
        {"keys": sorted({k for k, _ in pairs})},
    )
    wanted = set(pairs)
    return {(k, s): t for k, s, t in rows if (k, s) in wanted}


__all__ += ["current_metadata", "register"]
