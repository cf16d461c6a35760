"""Export traces to Parquet or JSON Lines and import them back, losing nothing: DuckDB's side.

The file (one record per trace with its spans, tag history and metadata entries) is
``store/_transfer.py``'s; here DuckDB reads the records of a chunk of traces in one query and
imports a file in one transaction.

>>> store = TraceStore("traces.duckdb")
>>> store.export_traces("errors.parquet", "status = 'ERROR'")
>>> TraceStore("copy.duckdb").import_traces("errors.parquet")
ImportResult(imported=12, skipped=0)
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from ... import _json
from ..._constants import DEFAULT_EXPERIMENT
from ...errors import TraceduckError
from .. import _tagrules
from .. import _transfer as _format
from .._records import EMPTY_JSON
from .._transfer import (
    FORMAT_VERSION,
    NESTED,
    ImportResult,
    Layout,
    Progress,
    read_jsonl,
    read_parquet,
)
from . import _experiments, _tags
from ._arrow import query_arrow
from ._connection import Database
from ._runner import DuckDBRunner

__all__ = ["ImportResult", "export_traces", "import_traces"]

# -- export -------------------------------------------------------------------------------------


def export_traces(
    db: Database,
    path: str,
    filter_string: str | None = None,
    *,
    progress: Progress | None = None,
) -> int:
    """Write the traces matching the filter to ``path`` (.parquet or .jsonl); returns how many.

    The file is written next to ``path`` and renamed into place when complete.
    """
    from ...query import compile_filter

    # One lease for the whole export: between chunks the connection would otherwise go idle,
    # be closed, and reopen with cold caches (measured 8x slower per chunk).
    with db.lease() as cur:
        where, params = compile_filter(filter_string, DuckDBRunner(cur))
        ids = [
            r[0]
            for r in cur.execute(
                f"SELECT t.trace_id FROM traces t WHERE {where} "
                "ORDER BY t.timestamp_ms, t.trace_id",
                params,
            ).fetchall()
        ]
        layout = _Layout.read(cur)
        header = {
            "traceduck_export": FORMAT_VERSION,
            "tag_keys": [
                {"key": k, "exclusive": e, "scope": s}
                for k, e, s in cur.execute(
                    "SELECT key, exclusive, scope FROM tag_keys ORDER BY key"
                ).fetchall()
            ],
        }
        return _format.write_export(
            path, header, ids, lambda chunk: layout.records(cur, chunk), layout, progress
        )


class _Layout(Layout):
    """The export layout read from the DuckDB store's own columns."""

    @classmethod
    def read(cls, cur: duckdb.DuckDBPyConnection) -> _Layout:
        columns: dict[str, list[str]] = {}
        json_cols: dict[str, set[str]] = {}
        for table in ("traces", *[src for src, _, _ in NESTED.values()]):
            rows = cur.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? AND table_schema = current_schema() "
                "ORDER BY ordinal_position",
                [table],
            ).fetchall()
            columns[table] = [r[0] for r in rows]
            json_cols[table] = {r[0] for r in rows if r[1] == "JSON"}
        return cls(columns, json_cols)

    def records(self, cur: duckdb.DuckDBPyConnection, ids: list[str]) -> pa.Table:
        """One row per trace id (in the order given), nested lists included."""

        def col(alias: str, table: str, name: str) -> str:
            cast = "::VARCHAR" if name in self.json[table] else ""
            return f'{alias}."{name}"{cast}'

        select = [f'{col("t", "traces", c)} AS "{c}"' for c in self.columns["traces"]]
        groups, joins = [], []
        for n, (name, (source, _, order)) in enumerate(NESTED.items()):
            fields = ", ".join(f'"{c}" := {col("x", source, c)}' for c in self.nested_fields(name))
            # A join against the chunk's ids and one GROUP BY per table: correlated subqueries
            # here cost a scan of the whole table per chunk (measured ~7x slower).
            groups.append(
                f"g{n} AS (SELECT x.trace_id, list(struct_pack({fields}) ORDER BY {order}) "
                f"AS items FROM {source} x JOIN _td_export_ids i ON i.trace_id = x.trace_id "
                "GROUP BY x.trace_id)"
            )
            select.append(f'g{n}.items AS "{name}"')
            joins.append(f"LEFT JOIN g{n} ON g{n}.trace_id = t.trace_id")
        query = (
            f"WITH {', '.join(groups)} SELECT {', '.join(select)} FROM _td_export_ids i "
            f"JOIN traces t ON t.trace_id = i.trace_id {' '.join(joins)} ORDER BY i._ord"
        )
        cur.register("_td_export_ids", pa.table({"trace_id": ids, "_ord": range(len(ids))}))
        try:
            return query_arrow(cur, query)
        finally:
            cur.unregister("_td_export_ids")


# -- import -------------------------------------------------------------------------------------


def import_traces(
    db: Database,
    path: str,
    fmt: str,
    *,
    progress: Progress | None = None,
    source: str = "api",
) -> ImportResult:
    """Add the traces of an export file to the store, in one transaction.

    Traces already in the store (same id) are skipped and counted, never overwritten. Exclusive
    tag keys of the file are registered unless the store already defines them; an imported
    trace holding an exclusive tag whose scope already has a holder in the store gives it up
    (a ``moved`` event in its history, from ``source``), so each scope keeps one holder.
    """
    imported = skipped = done = 0
    with db.transaction() as cur:
        layout = _Layout.read(cur)
        schema = layout.records(cur, []).schema
        reader = read_parquet(path) if fmt == "parquet" else read_jsonl(path, schema, layout)
        header, total, chunks = reader
        _register_tag_keys(cur, header)
        for table in chunks:
            added, seen = _insert_chunk(cur, table, layout, source)
            imported += added
            skipped += seen - added
            done += seen
            if progress is not None:
                progress(done, total)
    return ImportResult(imported, skipped)


def _register_tag_keys(cur: duckdb.DuckDBPyConnection, header: dict[str, Any]) -> None:
    for item in header.get("tag_keys") or []:
        cur.execute(
            "INSERT INTO tag_keys (key, exclusive, scope) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING",
            [item["key"], bool(item.get("exclusive")), item.get("scope") or "name"],
        )


def _insert_chunk(
    cur: duckdb.DuckDBPyConnection, table: pa.Table, layout: _Layout, source: str
) -> tuple[int, int]:
    """Insert the chunk's new traces; returns (inserted, traces in the chunk)."""
    if "trace_id" not in table.column_names:
        raise TraceduckError("the file is not a traceduck export (no trace_id column)")
    ids = table.column("trace_id").to_pylist()
    cur.register("_td_import_ids", pa.table({"trace_id": ids}))
    try:
        existing = {
            r[0]
            for r in cur.execute(
                "SELECT t.trace_id FROM traces t JOIN _td_import_ids i USING (trace_id)"
            ).fetchall()
        }
    finally:
        cur.unregister("_td_import_ids")
    keep, seen = [], set(existing)
    for tid in ids:
        keep.append(tid is not None and tid not in seen)
        seen.add(tid)
    table = table.filter(pa.array(keep, pa.bool_()))
    if table.num_rows == 0:
        return 0, len(ids)
    table = table.append_column("_ord", pa.array(range(table.num_rows), pa.int64()))
    before = cur.execute(  # the chunk's history comes after these
        "SELECT (SELECT coalesce(max(event_id), -1) FROM tag_events), "
        "(SELECT coalesce(max(entry_id), -1) FROM trace_metadata)"
    ).fetchall()[0]
    cur.register("_td_import", table)
    try:
        # Experiment ids are this store's own: the name says which experiment, the id follows.
        columns = [
            c for c in layout.columns["traces"] if c in table.column_names and c != "experiment_id"
        ]
        names = ", ".join(f'"{c}"' for c in columns)
        cur.execute(f"INSERT INTO traces ({names}) SELECT {names} FROM _td_import")
        if "experiment" in columns:
            _link_experiments(cur)
        for name, (target, _, _) in NESTED.items():
            if name not in table.column_names:
                continue
            item_type = table.schema.field(name).type
            if not pa.types.is_list(item_type) or not pa.types.is_struct(item_type.value_type):
                raise TraceduckError(f"the file's {name!r} column is not a list of records")
            present = {
                item_type.value_type.field(i).name for i in range(item_type.value_type.num_fields)
            }
            fields = [c for c in layout.nested_fields(name) if c in present]
            if not fields:
                continue
            empty = EMPTY_JSON if target == "spans" else {}
            values = ", ".join(
                f"COALESCE(NULLIF(x.\"{c}\"::VARCHAR, 'null'), '{empty[c]}')" if c in empty
                else f'x."{c}"'
                for c in fields
            )  # fmt: skip
            missing = [c for c in empty if c not in fields]
            values = ", ".join([values, *(f"'{empty[c]}'" for c in missing)])
            targets = ", ".join(f'"{c}"' for c in ["trace_id", *fields, *missing])
            cur.execute(
                f"INSERT INTO {target} ({targets}) "
                f"SELECT trace_id, {values} FROM ("
                f'  SELECT trace_id, _ord, unnest("{name}") AS x, '
                f'         generate_subscripts("{name}", 1) AS i FROM _td_import'
                ") ORDER BY _ord, i"
            )
        _explain_labels(cur, source, table.column_names, before)
        _claim_exclusive(cur, source)
    finally:
        cur.unregister("_td_import")
    return table.num_rows, len(ids)


def _link_experiments(cur: duckdb.DuckDBPyConnection) -> None:
    """Give the imported traces this store's ids of their experiments (created if new)."""
    cur.execute(
        "UPDATE traces SET experiment = ? WHERE experiment IS NULL "
        "AND trace_id IN (SELECT trace_id FROM _td_import)",
        [DEFAULT_EXPERIMENT],
    )
    names = cur.execute(
        "SELECT DISTINCT experiment FROM _td_import WHERE experiment IS NOT NULL ORDER BY 1"
    ).fetchall()
    _experiments.ensure(cur, [DEFAULT_EXPERIMENT] + [n for (n,) in names], _tags.utcnow())
    cur.execute(
        "UPDATE traces SET experiment_id = e.experiment_id FROM experiments e "
        "WHERE e.name = traces.experiment AND traces.trace_id IN (SELECT trace_id FROM _td_import)"
    )


# Traces whose tags or metadata the file's history might not end in, by the engine's text of
# each value: the rest (every trace of an export) need no Python. A number DuckDB may read
# as a double (16 digits or more, an exponent) is looked at in Python all the same. (json_keys
# and one extraction per key by JSON pointer, which names any key: a quarter of json_each's
# time.)
_UNEXPLAINED = """
WITH imported AS (SELECT trace_id, $TAGS::JSON AS tags, $METADATA::JSON AS metadata
                  FROM _td_import),
tag_now AS (SELECT trace_id, key, json_extract(tags, $POINTER)::VARCHAR AS v
            FROM (SELECT trace_id, unnest(json_keys(tags)) AS key, tags FROM imported)),
tag_was AS (SELECT trace_id, key, arg_max([new_value::VARCHAR], event_id)[1] AS v
            FROM tag_events WHERE event_id > $events GROUP BY trace_id, key),
meta_now AS (SELECT trace_id, key, json_extract(metadata, $POINTER)::VARCHAR AS v
             FROM (SELECT trace_id, unnest(json_keys(metadata)) AS key, metadata
                   FROM imported)),
meta_was AS (SELECT trace_id, key, arg_max(value::VARCHAR, entry_id) AS v
             FROM trace_metadata WHERE entry_id > $entries GROUP BY trace_id, key)
SELECT coalesce(n.trace_id, w.trace_id) FROM tag_now n
FULL JOIN tag_was w ON w.trace_id = n.trace_id AND w.key = n.key
WHERE json(w.v)::VARCHAR IS DISTINCT FROM n.v OR regexp_matches(n.v, '[0-9]{16}|[eE][-+]?[0-9]')
UNION
SELECT n.trace_id FROM meta_now n LEFT JOIN meta_was w ON w.trace_id = n.trace_id AND w.key = n.key
WHERE json(w.v)::VARCHAR IS DISTINCT FROM n.v OR regexp_matches(n.v, '[0-9]{16}|[eE][-+]?[0-9]')
""".replace("$POINTER", "'/' || replace(replace(key, '~', '~0'), '/', '~1')")  # RFC 6901


def _explain_labels(
    cur: duckdb.DuckDBPyConnection, source: str, columns: list[str], before: tuple[int, int]
) -> None:
    """Tags and metadata of a hand-made file that its history does not end in: the import sets
    them now, with an event or entry of its own (``source``), as on ClickHouse, where the
    current tags and metadata are the history's; a file exported by traceduck gets none.

    The history is the record of every change: a tag with no event (or a metadata value with
    no entry) would be a change nobody can see. The chunk's traces are new, so the history
    read here is the file's.
    """
    present = set(columns)
    query = _UNEXPLAINED
    for column in ("tags", "metadata"):
        query = query.replace(f"${column.upper()}", column if column in present else "NULL")
    ids = [r[0] for r in cur.execute(query, {"events": before[0], "entries": before[1]}).fetchall()]
    if not ids:
        return
    where = "trace_id IN (SELECT unnest(?::VARCHAR[]))"
    rows = cur.execute(
        f"SELECT trace_id, tags::VARCHAR, metadata::VARCHAR FROM traces WHERE {where}", [ids]
    ).fetchall()
    folded: dict[str, dict[str, str]] = {}
    for tid, key, new in cur.execute(
        f"SELECT trace_id, key, new_value::VARCHAR FROM tag_events WHERE {where} ORDER BY event_id",
        [ids],
    ).fetchall():
        keys = folded.setdefault(tid, {})
        if new is None:
            keys.pop(key, None)
        else:
            keys[key] = _json.dumps(_json.loads(new))
    latest: dict[tuple[str, str], str] = {
        (tid, key): _json.dumps(_json.loads(value))
        for tid, key, value in cur.execute(
            f"SELECT trace_id, key, value::VARCHAR FROM trace_metadata WHERE {where} "
            "ORDER BY entry_id",
            [ids],
        ).fetchall()
    }
    now = _tags.utcnow()
    events: list[_tags.Event] = []
    entries: list[Any] = []
    for tid, tags_text, metadata_text in sorted(rows):
        tags = _json.loads(tags_text) or {}
        history = folded.get(tid, {})
        for key in sorted(set(tags) | set(history)):
            want = _json.dumps(tags[key]) if key in tags else None
            if history.get(key) != want:
                op = "delete" if want is None else ("update" if key in history else "set")
                events.append((now, tid, key, history.get(key), want, op, source))
        for key, value in (_json.loads(metadata_text) or {}).items():
            text = _json.dumps(value)
            if latest.get((tid, key)) != text:
                entries += [now, tid, key, text, source]
    _tags.insert_events(cur, events)
    if entries:
        cur.execute(
            "INSERT INTO trace_metadata (ts, trace_id, key, value, source) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?)"] * (len(entries) // 5)),
            entries,
        )


def _claim_exclusive(cur: duckdb.DuckDBPyConnection, source: str) -> None:
    """Each imported trace holding an exclusive tag becomes its holder, if the scope is free."""
    exclusive = _tags.exclusive_keys(cur)
    if not exclusive:
        return
    now = _tags.utcnow()
    events: list[_tags.Event] = []
    for key, scope in exclusive.items():
        rows = cur.execute(
            "SELECT trace_id, name FROM _td_import WHERE json_extract(tags, ?) IS NOT NULL "
            "ORDER BY timestamp_ms DESC",
            [f'$."{key}"' if '"' not in key else "$.__never__"],
        ).fetchall()
        for tid, name in rows:
            where = _tagrules.scope_value(scope, name)
            holder = cur.execute(
                "SELECT trace_id FROM exclusive_holders WHERE key = ? AND scope = ?", [key, where]
            ).fetchone()
            if holder is None:
                cur.execute("INSERT INTO exclusive_holders VALUES (?, ?, ?)", [key, where, tid])
                continue
            tags, _ = _tags.load_tags(cur, tid)
            if key in tags:
                old = tags.pop(key)
                _tags.store_tags(cur, tid, tags)
                events.append((now, tid, key, _json.dumps(old), None, "moved", source))
    _tags.insert_events(cur, events)
