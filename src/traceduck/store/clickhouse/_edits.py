"""Tags and metadata after the fact on a ClickHouse store: each edit one insert of events.

A tag edit reads the traces' current tags and the exclusive keys, then inserts its events (and
the exclusive claims and releases) in one insert (``EditRows``), so a reader sees all of an edit
or none of it, and an exclusive tag never has two holders (see ``_schema``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import _tagrules
from .._tagrules import apply, check_removal, removal, scope_value
from ._events import EditRows, MetadataRows, exclusive_keys, holders, load_tags, register

if TYPE_CHECKING:
    from ._client import Connection
    from ._query import ClickHouseRunner

__all__ = ["TagEdits"]


class TagEdits:
    """The edit half of ``ClickHouseStore`` (its connection, runner and id resolution)."""

    if TYPE_CHECKING:
        write_conn: Connection
        runner: ClickHouseRunner

        def resolve_trace_id(self, trace_id_or_prefix: str) -> str: ...

    def _trace_name(self, tid: str) -> str | None:
        rows = self.write_conn.query(
            "SELECT name FROM td_traces FINAL WHERE trace_id = {t:String}", {"t": tid}
        )
        return rows[0][0] if rows else None

    def _set_tag(
        self, trace_id: str, key: str, value: Any, exclusive: bool, append: bool, source: str
    ) -> None:
        conn = self.write_conn
        tid = self.resolve_trace_id(trace_id)
        name = self._trace_name(tid)
        tags = load_tags(conn, [tid]).get(tid, {})
        registered = exclusive_keys(conn).get(key)
        change = _tagrules.set_change(tags, key, value, append=append)
        edit = EditRows(source)
        if change is not None:
            edit.changes(tid, [change])
        scope = registered or ""
        if exclusive and not scope:
            register(conn, key, True, "name")
            scope = "name"
        if scope:
            self._claim(edit, [(tid, name)], key, scope)
        edit.insert(conn)

    def _claim(
        self, edit: EditRows, traces: list[tuple[str, str | None]], key: str, scope: str
    ) -> None:
        """Each trace claims ``key`` in its scope; a holder outside the edit loses the tag."""
        wanted = [(key, scope_value(scope, name)) for _, name in traces]
        current = holders(self.write_conn, wanted)
        claimers = {tid for tid, _ in traces}
        losers = sorted({h for h in current.values() if h not in claimers})
        their_tags = load_tags(self.write_conn, losers)
        for tid, name in traces:
            where = scope_value(scope, name)
            old = current.get((key, where))
            if old is not None and old not in claimers and key in their_tags.get(old, {}):
                moved = [removal(their_tags[old], key, "moved")]
                edit.changes(old, moved)
                apply(their_tags[old], moved)
            edit.claim(tid, key, where)

    def _delete_tag(self, trace_id: str, key: str, value: Any, source: str) -> None:
        conn = self.write_conn
        tid = self.resolve_trace_id(trace_id)
        tags = load_tags(conn, [tid]).get(tid, {})
        check_removal(tid, tags, key, value)
        edit = EditRows(source)
        edit.changes(tid, [removal(tags, key)])
        self._release(edit, [tid], key)
        edit.insert(conn)

    def _release(self, edit: EditRows, trace_ids: list[str], key: str) -> None:
        """Traces that held an exclusive ``key`` and lose it leave no holder behind."""
        scope = exclusive_keys(self.write_conn).get(key)
        if not scope:
            return
        rows = self.write_conn.query(
            "SELECT trace_id, name FROM td_traces FINAL WHERE trace_id IN {ids:Array(String)}",
            {"ids": trace_ids},
        )
        pairs = {tid: (key, scope_value(scope, name)) for tid, name in rows}
        current = holders(self.write_conn, list(pairs.values()))
        for tid, pair in pairs.items():
            if current.get(pair) == tid:
                edit.release(tid, key, pair[1])

    def _matching(self, filter_string: str) -> list[tuple[str, str | None]]:
        from ...query import compile_filter

        runner = self.runner
        where, params = compile_filter(filter_string, runner)
        return runner.rows(
            f"SELECT t.trace_id, t.name FROM {runner.dialect.traces_from} WHERE {where}",
            params,
            filter_string,
        )

    def _bulk(
        self,
        filter_string: str,
        updates: Mapping[str, Any],
        changes: Callable[..., list[_tagrules.TagChange]],
        exclusive_now: dict[str, str],
        source: str,
    ) -> int:
        """``TraceStore._bulk``: one insert of events (claims included); a new exclusive key is
        registered only once the edit is known to be allowed."""
        conn = self.write_conn
        rows = self._matching(filter_string)
        exclusive = exclusive_keys(conn)
        new = {k: scope for k, scope in exclusive_now.items() if k not in exclusive}
        exclusive.update(new)
        _tagrules.check_exclusive_bulk([n for _, n in rows], updates, exclusive)
        for key, scope in new.items():  # only once the edit is known to be allowed
            register(conn, key, True, scope)
        current = load_tags(conn, [t for t, _ in rows])
        edit = EditRows(source)
        for tid, _ in rows:
            edit.changes(tid, changes(current.get(tid, {}), updates))
        for key in updates:
            if key in exclusive:
                self._claim(edit, list(rows), key, exclusive[key])
        edit.insert(conn)
        return len(rows)

    def _delete_tags(
        self, filter_string: str, keys: list[str], only: dict[str, str], source: str
    ) -> int:
        conn = self.write_conn
        rows = self._matching(filter_string)
        current = load_tags(conn, [t for t, _ in rows])
        edit = EditRows(source)
        changed: set[str] = set()
        lost: dict[str, list[str]] = {}
        for tid, _ in rows:
            changes = _tagrules.delete_changes(current.get(tid, {}), keys, only)
            edit.changes(tid, changes)
            for change in changes:
                changed.add(tid)
                lost.setdefault(change.key, []).append(tid)
        for key, tids in lost.items():
            self._release(edit, tids, key)
        edit.insert(conn)
        return len(changed)

    def _register_tag(self, key: str, exclusive: bool, scope: str) -> None:
        register(self.write_conn, key, exclusive, scope)

    def _log_metadata(self, trace_id: str, entries: list[tuple[str, str]], source: str) -> None:
        conn = self.write_conn
        tid = self.resolve_trace_id(trace_id)
        rows = MetadataRows(source)
        for key, text in entries:
            rows.add(tid, key, text)
        rows.insert(conn)
