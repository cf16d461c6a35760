"""DuckDBStore: the TraceStore of one DuckDB file (what ``TraceStore(path)`` returns).

Reads lease a connection of the file's ``Database`` (released when idle, so other processes can
take turns); every edit is one DuckDB transaction over ``traces.tags``, ``tag_events`` and
``exclusive_holders`` (see ``_tags``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa

from ... import _json
from ..._selection import Selection
from ...errors import TraceduckError
from ...model import Experiment, MetadataEvent, PagedList, TagEvent, Trace, TraceInfo
from .. import _tagrules
from .._base import READ_ONLY_SQL, TraceStore, experiment_exists
from . import _experiments, _reader, _tags
from ._arrow import query_arrow, registered
from ._connection import Database
from ._databases import get_database
from ._runner import DuckDBRunner

if TYPE_CHECKING:
    pass

__all__ = ["DuckDBStore"]


class DuckDBStore(TraceStore):
    """The TraceStore calls over one DuckDB file."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = os.fspath(path)
        self.read_only = read_only
        self._db: Database = get_database(self.path, read_only=read_only)

    # -- reading ------------------------------------------------------------------------------

    def get_trace(self, trace_id_or_prefix: str) -> Trace:
        """The trace with that id or unique id prefix, with its spans."""
        with self._db.lease() as cur:
            return _reader.get_trace(cur, trace_id_or_prefix)

    def get_trace_info(self, trace_id_or_prefix: str) -> TraceInfo:
        """The trace's info (tags, metadata, status, latency...) without its spans."""
        with self._db.lease() as cur:
            return _reader.load_infos(cur, [_reader.resolve_id(cur, trace_id_or_prefix)])[0]

    def resolve_trace_id(self, trace_id_or_prefix: str) -> str:
        with self._db.lease() as cur:
            return _reader.resolve_id(cur, trace_id_or_prefix)

    @contextmanager
    def _reading(self) -> Iterator[DuckDBRunner]:
        with self._db.lease() as cur:
            yield DuckDBRunner(cur)

    def _search_list(
        self,
        filter_string: str | None,
        order_by: list[str] | None,
        max_results: int | None,
        page_token: str | None,
        experiment_ids: list[str] | None,
        include_spans: bool,
    ) -> PagedList[Trace]:
        from ...query import search_page

        with self._db.lease() as cur:
            rows, token = search_page(
                DuckDBRunner(cur), filter_string, order_by, max_results, page_token,
                columns=_reader.INFO_COLUMNS, late=None, experiment_ids=experiment_ids,
            )  # fmt: skip
            infos = [_reader.info_from_row(r) for r in rows]
            ids = [i.trace_id for i in infos]
            spans = _reader.load_spans(cur, ids) if include_spans else {}
        return PagedList([Trace(i, spans.get(i.trace_id, [])) for i in infos], token)

    def _search_table(
        self,
        filter_string: str | None,
        order_by: list[str] | None,
        max_results: int | None,
        page_token: str | None,
        experiment_ids: list[str] | None,
    ) -> pa.Table:
        from ...query import search_page

        with self._db.lease() as cur:
            table, _ = search_page(
                DuckDBRunner(cur), filter_string, order_by, max_results, page_token,
                columns=_reader.INFO_COLUMNS, arrow=True, experiment_ids=experiment_ids,
            )  # fmt: skip
        return table

    def sql(self, query: str, params: list[Any] | None = None) -> pa.Table:
        """One read-only DuckDB query over the documented tables (``?`` parameters)."""
        if not isinstance(query, str):
            raise TraceduckError(READ_ONLY_SQL)
        try:
            statements = duckdb.extract_statements(query)
        except duckdb.Error as exc:
            raise TraceduckError(f"SQL error: {exc}") from None
        allowed = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
        if len(statements) != 1 or statements[0].type not in allowed:
            raise TraceduckError(READ_ONLY_SQL)
        with self._db.lease() as cur:
            try:
                return query_arrow(cur, query, params)
            except duckdb.Error as exc:
                raise TraceduckError(f"SQL error: {str(exc).splitlines()[0]}") from None

    def stats(
        self, filter_string: str | None = None, by: str | None = None
    ) -> list[dict[str, Any]]:
        from ._stats import trace_stats

        with self._db.lease() as cur:
            return trace_stats(cur, filter_string, by)

    def exclusive_tag_keys(self) -> dict[str, str]:
        rows = self.sql("SELECT key, scope FROM tag_keys WHERE exclusive ORDER BY key")
        return {r["key"]: r["scope"] for r in rows.to_pylist()}

    def tag_value_types(self, key: str) -> set[str]:
        rows = self.sql("SELECT DISTINCT value_type FROM trace_tags WHERE key = ?", [key])
        return {r["value_type"] for r in rows.to_pylist()}

    def keys_in_use(self, sample: int = 10_000) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for column in ("tags", "metadata"):
            rows = self.sql(
                f"SELECT DISTINCT unnest(json_keys({column})) AS k FROM (SELECT {column} FROM "
                f"traces ORDER BY timestamp_ms DESC LIMIT {int(sample)}) ORDER BY k"
            ).to_pylist()
            out[column] = [r["k"] for r in rows]
        return out

    def _export_traces(self, path: str, filter_string: str | None, progress: Any) -> int:
        from ._transfer import export_traces

        return export_traces(self._db, path, filter_string, progress=progress)

    def _import_traces(self, path: str, fmt: str, progress: Any, source: str) -> Any:
        """In one transaction."""
        from ._transfer import import_traces

        return import_traces(self._db, path, fmt, progress=progress, source=source)

    def tag_history(self, trace_id: str) -> list[TagEvent]:
        with self._db.lease() as cur:
            return _reader.tag_history(cur, _reader.resolve_id(cur, trace_id))

    def metadata_history(self, trace_id: str) -> list[MetadataEvent]:
        with self._db.lease() as cur:
            return _reader.metadata_history(cur, _reader.resolve_id(cur, trace_id))

    def _write_batch(self, batch: Any) -> None:
        from ._writer import write_batch

        write_batch(self._db, batch)

    # -- tags ---------------------------------------------------------------------------------

    def _set_tag(
        self, trace_id: str, key: str, value: Any, exclusive: bool, append: bool, source: str
    ) -> None:
        with self._write() as cur:
            tid, tags, name, registered = _tags.load_for_edit(cur, trace_id, key)
            now = _tags.utcnow()
            change = _tagrules.set_change(tags, key, value, append=append)
            events: list[_tags.Event] = []
            if change is not None:
                _tags.store_tags(cur, tid, _tagrules.apply(tags, [change]))
                events += _tags.events_of(now, tid, [change], source)
            scope = registered or ""
            if exclusive and not scope:  # exclusive from now on (load_for_edit read the registry)
                _tags.register(cur, key, True, "name")
                scope = "name"
            if scope:
                events += _tags.claim_exclusive(
                    cur, trace_id=tid, trace_name=name, key=key, scope=scope, source=source, now=now
                )
            _tags.insert_events(cur, events)

    def _delete_tag(self, trace_id: str, key: str, value: Any, source: str) -> None:
        with self._write() as cur:
            tid, tags, _, _ = _tags.load_for_edit(cur, trace_id, key)
            _tagrules.check_removal(tid, tags, key, value)
            change = [_tagrules.removal(tags, key)]
            _tags.store_tags(cur, tid, _tagrules.apply(tags, change))
            _tags.release_exclusive(cur, tid, key)
            _tags.insert_events(cur, _tags.events_of(_tags.utcnow(), tid, change, source))

    def _bulk(
        self,
        filter_string: str,
        updates: Mapping[str, Any],
        changes: Callable[..., list[_tagrules.TagChange]],
        exclusive_now: dict[str, str],
        source: str,
    ) -> int:
        """``TraceStore._bulk``, in one transaction (a refused edit registers nothing)."""
        with self._write() as cur:
            rows = self._matching(cur, filter_string)
            exclusive = _tags.exclusive_keys(cur)
            for key, scope in exclusive_now.items():
                if key not in exclusive:  # rolled back with the edit if it is refused
                    _tags.register(cur, key, True, scope)
                    exclusive[key] = scope
            _tagrules.check_exclusive_bulk([r[2] for r in rows], updates, exclusive)
            now = _tags.utcnow()
            _, events = _rewrite_tags(cur, rows, partial(changes, updates=updates), now, source)
            claims = [
                (tid, key, _tagrules.scope_value(exclusive[key], name))
                for tid, _, name, _ in rows
                for key in updates
                if key in exclusive
            ]
            if claims:
                events += _tags.claim_all(cur, claims, source=source, now=now)
            _tags.insert_events(cur, events)
            return len(rows)

    def _delete_tags(
        self, filter_string: str, keys: list[str], only: dict[str, str], source: str
    ) -> int:
        with self._write() as cur:
            rows = self._matching(cur, filter_string)
            changes = partial(_tagrules.delete_changes, keys=keys, only=only)
            changed, events = _rewrite_tags(cur, rows, changes, _tags.utcnow(), source)
            for tid, lost in changed.items():
                for change in lost:
                    _tags.release_exclusive(cur, tid, change.key)
            _tags.insert_events(cur, events)
            return len(changed)

    # -- deleting -----------------------------------------------------------------------------

    def _delete(self, selection: Selection, source: str) -> int:
        from ._delete import delete_selected

        return delete_selected(self._db, selection, source=source)

    def _count_deletable(self, selection: Selection) -> int:
        from ._delete import count_selected

        with self._db.lease() as cur:
            return count_selected(cur, selection)

    def _register_tag(self, key: str, exclusive: bool, scope: str) -> None:
        with self._write() as cur:
            _tags.register(cur, key, exclusive, scope)

    # -- metadata -----------------------------------------------------------------------------

    def _log_metadata(self, trace_id: str, entries: list[tuple[str, str]], source: str) -> None:
        with self._write() as cur:
            tid = _reader.lookup_id(cur, trace_id)
            row = cur.execute("SELECT metadata FROM traces WHERE trace_id = ?", [tid]).fetchall()
            if not row:
                _reader.resolve_id(cur, trace_id)  # raises the not-found error
            latest = _json.loads(row[0][0]) or {}
            now = _tags.utcnow()
            for key, text in entries:
                latest[key] = _json.loads(text)
            cur.execute(  # one statement for every entry (executemany runs one per row)
                "INSERT INTO trace_metadata (ts, trace_id, key, value, source) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?)"] * len(entries)),
                [v for key, text in entries for v in (now, tid, key, text, source)],
            )
            cur.execute(
                "UPDATE traces SET metadata = ? WHERE trace_id = ?", [_json.dumps(latest), tid]
            )

    # -- experiments --------------------------------------------------------------------------

    def _create_experiment(self, name: str) -> str:
        with self._write() as cur:
            if _experiments.by_name(cur, name) is not None:
                raise experiment_exists(name)
            return _experiments.ensure(cur, [name], _tags.utcnow())[name]

    def _ensure_experiment(self, name: str) -> None:
        with self._write() as cur:
            _experiments.ensure(cur, [name], _tags.utcnow())

    def _experiment_by_id(self, experiment_id: str) -> Experiment | None:
        with self._db.lease() as cur:
            return _experiments.by_id(cur, experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._db.lease() as cur:
            return _experiments.by_name(cur, name)

    def search_experiments(self) -> list[Experiment]:
        with self._db.lease() as cur:
            return _experiments.every(cur)

    # -- helpers ------------------------------------------------------------------------------

    def _write(self) -> Any:
        return self._db.transaction()

    def _matching(
        self, cur: duckdb.DuckDBPyConnection, filter_string: str
    ) -> list[tuple[str, str, str, int]]:
        """(trace id, tags JSON, name, rowid) of every trace the filter matches."""
        from ...query import compile_filter

        where, params = compile_filter(filter_string, DuckDBRunner(cur))
        return cur.execute(
            f"SELECT t.trace_id, t.tags, t.name, t.rowid FROM traces t WHERE {where}", params
        ).fetchall()


def _rewrite_tags(
    cur: duckdb.DuckDBPyConnection,
    rows: list[tuple[str, str, str, int]],
    changes_of: Callable[[dict[str, Any]], list[_tagrules.TagChange]],
    now: datetime,
    source: str,
) -> tuple[dict[str, list[_tagrules.TagChange]], list[_tags.Event]]:
    """Apply ``changes_of(a trace's tags)`` to every matching row and store the traces whose
    tags changed; (each changed trace's changes, the history events)."""
    changed: dict[str, list[_tagrules.TagChange]] = {}
    new_tags: dict[str, dict[str, Any]] = {}
    events: list[_tags.Event] = []
    for tid, tags_text, _, _ in rows:
        current = _json.loads(tags_text) or {}
        changes = changes_of(current)
        if changes:
            new_tags[tid] = _tagrules.apply(current, changes)
            changed[tid] = changes
            events += _tags.events_of(now, tid, changes, source)
    _store_many(cur, new_tags, {r[0]: r[3] for r in rows})
    return changed, events


def _store_many(
    cur: duckdb.DuckDBPyConnection, changed: dict[str, dict[str, Any]], rowids: dict[str, int]
) -> None:
    """Write the new tags of ``changed`` traces, addressed by the rowids read in this same
    transaction (a join on trace_id would hash every id in the store)."""
    if not changed:
        return
    if len(changed) <= 8:
        for tid, tags in changed.items():
            _tags.store_tags(cur, tid, tags)
        return
    table = {  # NumPy, not Arrow from Python values (that imports pandas: see ``_records``)
        "rid": np.fromiter((rowids[t] for t in changed), np.int64, len(changed)),
        "tags": np.array([_json.dumps(t) for t in changed.values()], dtype=object),
    }
    with registered(cur, "_td_tag_updates", table):
        cur.execute(
            "UPDATE traces SET tags = u.tags FROM _td_tag_updates u WHERE traces.rowid = u.rid"
        )
