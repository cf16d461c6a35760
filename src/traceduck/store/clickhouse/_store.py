"""ClickHouseStore: TraceStore's query, tag, metadata and SQL calls on ClickHouse.

``TraceStore("chdb:///dir")`` or ``TraceStore("clickhouse://host/db")`` returns one of these.
Every edit is one insert of events (see ``_schema``); reads derive the current state from the
events, so they never see half an edit, and an exclusive tag never has two holders.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ... import _json
from ..._experiment import check_name
from ..._selection import Selection
from ...errors import (
    AmbiguousTraceIdError,
    ConfigError,
    FilterError,
    StorageError,
    TagError,
    TraceduckError,
    TraceNotFoundError,
)
from ...model import Experiment, MetadataEvent, PagedList, Span, TagEvent, Trace, TraceInfo
from .. import TraceStore
from .._names import StoreName, parse_store_name
from ..duckdb._reader import tree_order
from ..duckdb._store import ReturnType, _appended, _check_exclusive_bulk, experiment_scope
from ..duckdb._tags import check_key, check_scope, encode_value, scope_value
from . import _experiments
from ._client import Connection, connect
from ._events import (
    EditRows,
    MetadataRows,
    documents,
    exclusive_keys,
    holders,
    load_metadata,
    load_tags,
    register,
)
from ._query import QUERY_SETTINGS, ClickHouseRunner
from ._schema import migrate
from ._sql import current_tags

__all__ = ["ClickHouseStore"]

_MISSING: Any = object()
_HEX = re.compile(r"^[0-9a-f]{1,32}$")
TRACE_INFO = (
    "trace_id", "name", "status", "timestamp_ms", "execution_time_ms", "span_count",
    "service_name", "request_preview", "response_preview", "status_message", "experiment_id",
    "experiment",
)  # fmt: skip
SPAN_COLUMNS = (
    "span_id", "parent_id", "name", "span_type", "status", "status_message", "start_time_ns",
    "end_time_ns", "attributes", "inputs", "outputs", "events", "trace_id", "service_name",
)  # fmt: skip
LITERAL_IDS = 5_000  # more ids than this are not sent as a parameter (see _documents)
_READ_ONLY = re.compile(r"^\s*(\(\s*)*(SELECT|WITH|EXPLAIN|DESCRIBE|DESC|SHOW)\b", re.IGNORECASE)


class ClickHouseStore(TraceStore):
    """The same calls as the DuckDB TraceStore, on a ClickHouse server or chdb."""

    def __new__(cls, *args: Any, **kwargs: Any) -> ClickHouseStore:
        return object.__new__(cls)

    def __init__(self, path: str | StoreName, *, read_only: bool = False) -> None:
        self.name = parse_store_name(path)
        self.path = self.name.display
        self.read_only = read_only
        self._conn: Connection | None = None

    def __repr__(self) -> str:
        return f"TraceStore({self.name.display!r}{', read_only=True' if self.read_only else ''})"

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            conn = connect(self.name)
            migrate(conn)
            self._conn = conn
        return self._conn

    @property
    def runner(self) -> ClickHouseRunner:
        return ClickHouseRunner(self.conn)

    def _writable(self) -> Connection:
        if self.read_only:
            raise StorageError(f"store {self.path} was opened read-only; it cannot be changed")
        return self.conn

    # -- reading ------------------------------------------------------------------------------

    def resolve_trace_id(self, trace_id_or_prefix: str) -> str:
        if not isinstance(trace_id_or_prefix, str) or not trace_id_or_prefix.strip():
            raise TraceNotFoundError(
                f"a trace id or prefix is required, got {trace_id_or_prefix!r}"
            )
        prefix = trace_id_or_prefix.strip().lower()
        if prefix.startswith("tr-"):
            prefix = prefix[3:]
        if not _HEX.match(prefix):
            raise TraceNotFoundError(
                f"{trace_id_or_prefix!r} is not a trace id: ids are up to 32 hexadecimal characters"
            )
        rows = self.conn.query(
            "SELECT DISTINCT trace_id FROM td_traces WHERE startsWith(trace_id, {p:String}) "
            "ORDER BY trace_id LIMIT 11",
            {"p": prefix},
        )
        if not rows:
            if len(prefix) == 32:
                raise TraceNotFoundError(f"no trace with id {prefix}")
            raise TraceNotFoundError(f"no trace id starts with {prefix!r}")
        if len(rows) > 1:
            raise AmbiguousTraceIdError(prefix, [r[0] for r in rows])
        return str(rows[0][0])

    def _infos(self, trace_ids: list[str]) -> list[TraceInfo]:
        if not trace_ids:
            return []
        rows = self.conn.query(
            f"SELECT {', '.join(TRACE_INFO)} FROM td_traces FINAL "
            "WHERE trace_id IN {ids:Array(String)}",
            {"ids": trace_ids},
        )
        return self._to_infos([dict(zip(TRACE_INFO, r)) for r in rows], trace_ids)

    def _to_infos(
        self, rows: list[dict[str, Any]], order: list[str], filter_string: str | None = None
    ) -> list[TraceInfo]:
        ids = [r["trace_id"] for r in rows]
        if len(ids) > LITERAL_IDS:  # many traces: their documents, found by the filter again
            docs = self._documents(ids, filter_string).to_pylist()
            tags = {d["trace_id"]: _json.loads(d["tags"]) for d in docs}
            metadata = {d["trace_id"]: _json.loads(d["metadata"]) for d in docs}
        else:
            tags = load_tags(self.conn, ids)
            metadata = load_metadata(self.conn, ids)
        by_id = {
            r["trace_id"]: TraceInfo(
                **r, tags=tags.get(r["trace_id"], {}), metadata=metadata.get(r["trace_id"], {})
            )
            for r in rows
        }
        return [by_id[t] for t in order if t in by_id]

    def get_trace_info(self, trace_id_or_prefix: str) -> TraceInfo:
        return self._infos([self.resolve_trace_id(trace_id_or_prefix)])[0]

    def get_trace(self, trace_id_or_prefix: str) -> Trace:
        info = self.get_trace_info(trace_id_or_prefix)
        return Trace(info, self._spans([info.trace_id])[info.trace_id])

    def _spans(self, trace_ids: list[str]) -> dict[str, list[Span]]:
        grouped: dict[str, list[Span]] = {t: [] for t in trace_ids}
        if not trace_ids:
            return grouped
        rows = self.conn.query(
            f"SELECT {', '.join(SPAN_COLUMNS)} FROM spans WHERE trace_id IN {{ids:Array(String)}} "
            "ORDER BY start_time_ns, span_id",
            {"ids": trace_ids},
        )
        for r in rows:
            values = dict(zip(SPAN_COLUMNS, r))
            for key in ("attributes", "inputs", "outputs", "events"):
                values[key] = _json.loads(values[key])
            values["attributes"] = values["attributes"] or {}
            values["events"] = values["events"] or []
            grouped[values["trace_id"]].append(Span(**values))
        return {t: tree_order(spans) for t, spans in grouped.items()}

    def search_traces(
        self,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        max_results: int | None = 100,
        page_token: str | None = None,
        return_type: ReturnType = "list",
        include_spans: bool = False,
        *,
        experiment_ids: Iterable[str] | str | None = None,
        locations: Iterable[str] | str | None = None,
    ) -> Any:
        from ...query import search_page

        if return_type not in ("list", "pandas", "arrow"):
            raise ValueError(
                f"return_type must be 'list', 'pandas' or 'arrow', not {return_type!r}"
            )
        orders = [order_by] if isinstance(order_by, str) else order_by
        scope = experiment_scope(experiment_ids, locations)
        if return_type != "list":
            # Tables are for analysis (often every match): Arrow from the engine throughout.
            # (The tags and metadata found by the filter again ignore the experiment scope: a
            # superset, which the join leaves out.)
            found, _ = search_page(
                self.runner, filter_string, orders, max_results, page_token,
                columns=TRACE_INFO, arrow=True, experiment_ids=scope,
            )  # fmt: skip
            table = self._info_table(found, filter_string)
            return table if return_type == "arrow" else table.to_pandas()
        rows, token = search_page(
            self.runner, filter_string, orders, max_results, page_token, columns=TRACE_INFO,
            experiment_ids=scope,
        )  # fmt: skip
        ids = [r[0] for r in rows]
        infos = self._to_infos([dict(zip(TRACE_INFO, r)) for r in rows], ids, filter_string)
        spans = self._spans(ids) if include_spans else {}
        return PagedList([Trace(i, spans.get(i.trace_id, [])) for i in infos], token)

    def _documents(self, ids: list[str], filter_string: str | None) -> pa.Table:
        """Tags and metadata as JSON text of the traces ``ids`` (found by ``filter_string``):
        by their ids when few, else by the filter again (superset rows are harmless)."""
        if len(ids) <= LITERAL_IDS:
            return documents(self.conn, "trace_id IN {ids:Array(String)}", {"ids": ids})
        from ...query import compile_filter

        runner = self.runner
        where, params = compile_filter(filter_string, runner)
        chosen = f"trace_id IN (SELECT t.trace_id FROM {runner.dialect.traces_from} WHERE {where})"
        return documents(self.conn, chosen, params)

    def _info_table(self, found: pa.Table, filter_string: str | None) -> pa.Table:
        """The search table: ``found``'s columns with the tags and metadata as JSON text."""
        from ..duckdb._reader import INFO_COLUMNS

        docs = self._documents(found.column("trace_id").to_pylist(), filter_string)
        order = pa.table(
            {
                "trace_id": found.column("trace_id"),
                "_i": pa.array(range(found.num_rows), pa.int64()),
            }
        )
        joined = order.join(docs, "trace_id", join_type="left outer").sort_by("_i")
        columns = {
            c: pc.fill_null(joined.column(c), "{}")
            if c in ("tags", "metadata")
            else found.column(c)
            for c in INFO_COLUMNS
        }
        return pa.table(columns)

    def count_traces(self, filter_string: str | None = None) -> int:
        from ...query import compile_filter

        runner = self.runner
        where, params = compile_filter(filter_string, runner)
        sql = f"SELECT count() FROM {runner.dialect.traces_from} WHERE {where}"
        return int(runner.rows(sql, params, filter_string or "")[0][0])

    def explain_search(
        self,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        max_results: int | None = 100,
    ) -> tuple[str, Any]:
        from ...query import explain

        orders = [order_by] if isinstance(order_by, str) else order_by
        return explain(self.runner, filter_string, orders, max_results)

    def sql(self, query: str, params: Any = None) -> pa.Table:
        """One read-only ClickHouse query over the documented names (``{name:Type}`` params).

        Runs with ``readonly = 2``: the server refuses anything that writes."""
        if not isinstance(query, str) or not _READ_ONLY.match(query) or ";" in query.strip()[:-1]:
            raise TraceduckError(
                "td.sql runs one read-only query (SELECT, WITH ... SELECT, EXPLAIN); "
                "change tags with set_trace_tag/set_trace_tags"
            )
        if isinstance(params, (list, tuple)):
            raise TraceduckError(
                "ClickHouse queries bind parameters by name: {name:Type}, params={...}"
            )
        try:
            return self.conn.query_arrow_read_only(
                query.strip().rstrip(";"), params, **QUERY_SETTINGS
            )
        except StorageError as exc:
            if "Code: " not in str(exc.__cause__ or ""):
                raise  # the server, not the query: unreachable, refused credentials
            raise TraceduckError(
                f"SQL error: {str(exc.__cause__ or exc).splitlines()[0]}"
            ) from None

    def stats(
        self, filter_string: str | None = None, by: str | None = None
    ) -> list[dict[str, Any]]:
        from ...query import compile_filter

        runner = self.runner
        where, params = compile_filter(filter_string, runner)
        join, group, is_json = "", "CAST(NULL AS Nullable(String))", False
        if by is not None and by.strip():
            field = by.strip()
            if field in ("name", "status", "service_name"):
                group = f"t.{field}"
            else:
                value, joined = runner.dialect.order_value(_group_field(field, by), 0)
                assert joined is not None
                join, join_params = runner.dialect.render(joined)
                for name in join_params:  # the filter's parameters are named p0, p1, ... too
                    join = join.replace("{" + name + ":", "{g" + name + ":")
                params = {**params, **{"g" + k: v for k, v in join_params.items()}}
                group, is_json = value.text, True
        rows = runner.rows(
            f"SELECT {group} AS grp, count() AS n, countIf(t.status = 'ERROR') AS errors, "
            "quantileExactInclusive(0.5)(t.execution_time_ms), "
            "quantileExactInclusive(0.95)(t.execution_time_ms), "
            "quantileExactInclusive(0.99)(t.execution_time_ms), max(t.execution_time_ms) "
            f"FROM {runner.dialect.traces_from}{join} WHERE {where} "
            "GROUP BY grp ORDER BY n DESC, grp ASC NULLS LAST",
            params,
            filter_string or "",
        )
        from ..duckdb._stats import stat_groups

        return stat_groups(rows, is_json)

    def tag_history(self, trace_id: str) -> list[TagEvent]:
        tid = self.resolve_trace_id(trace_id)
        rows = self.conn.query(
            "SELECT ts, trace_id, key, old_value, new_value, operation, source FROM td_tag_events "
            "WHERE trace_id = {t:String} AND kind = 'event' ORDER BY version, edit_id, seq",
            {"t": tid},
        )
        return [TagEvent.from_row((_naive(r[0]), *r[1:7])) for r in rows]

    def metadata_history(self, trace_id: str) -> list[MetadataEvent]:
        tid = self.resolve_trace_id(trace_id)
        rows = self.conn.query(
            "SELECT ts, trace_id, key, value, source FROM td_metadata WHERE trace_id = {t:String} "
            "ORDER BY version, edit_id, seq",
            {"t": tid},
        )
        return [MetadataEvent(_naive(r[0]), r[1], r[2], _json.loads(r[3]), r[4]) for r in rows]

    # -- experiments --------------------------------------------------------------------------

    def create_experiment(self, name: str) -> str:
        name = check_name(name)
        conn = self._writable()
        if _experiments.by_name(conn, name) is not None:
            raise ConfigError(f"experiment {name!r} exists already")
        return _experiments.ensure(conn, [name])[name]

    def get_or_create_experiment(self, name: str) -> Experiment:
        name = check_name(name)
        found = _experiments.by_name(self.conn, name)
        if found is None:
            _experiments.ensure(self._writable(), [name])
            found = _experiments.by_name(self.conn, name)
        assert found is not None
        return found

    def get_experiment(self, experiment_id: str) -> Experiment:
        found = _experiments.by_id(self.conn, str(experiment_id))
        if found is None:
            raise ConfigError(f"no experiment with id {experiment_id!r}")
        return found

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return _experiments.by_name(self.conn, name)

    def search_experiments(self) -> list[Experiment]:
        return _experiments.every(self.conn)

    def exclusive_tag_keys(self) -> dict[str, str]:
        return dict(sorted(exclusive_keys(self.conn).items()))

    def tag_value_types(self, key: str) -> set[str]:
        rows = self.conn.query(
            f"SELECT DISTINCT value_type FROM ({current_tags('key = {k:String}')})", {"k": key}
        )
        return {r[0] for r in rows}

    def keys_in_use(self, sample: int = 10_000) -> dict[str, list[str]]:
        newest = (
            "trace_id IN (SELECT trace_id FROM td_traces ORDER BY timestamp_ms DESC "
            "LIMIT {n:UInt64})"
        )
        tags = self.conn.query(
            f"SELECT DISTINCT key FROM ({current_tags(newest, by_key=False)}) ORDER BY key",
            {"n": sample},
        )
        metadata = self.conn.query(
            f"SELECT DISTINCT key FROM td_metadata WHERE {newest} ORDER BY key", {"n": sample}
        )
        return {"tags": [r[0] for r in tags], "metadata": [r[0] for r in metadata]}

    def export_traces(
        self,
        path: str | os.PathLike[str],
        filter_string: str | None = None,
        *,
        progress: Any = None,
    ) -> int:
        """Write the matching traces (spans, tags, metadata, histories) to .parquet or .jsonl:
        the same file the DuckDB store writes, so either engine imports it."""
        from ._transfer import export_traces

        return export_traces(self, os.fspath(path), filter_string, progress=progress)

    def import_traces(self, path: str | os.PathLike[str], *, progress: Any = None) -> Any:
        """Add the traces of an export file written by either engine (see ``_transfer``)."""
        from ._transfer import import_traces

        return import_traces(self, os.fspath(path), progress=progress)

    def delete_traces(
        self,
        filter_string: str | None = None,
        *,
        trace_ids: Iterable[str] | None = None,
        max_timestamp_millis: int | None = None,
        older_than: Any = None,
        max_traces: int | None = None,
        source: str = "api",
    ) -> int:
        """As on DuckDB; without a transaction: see ``_delete`` for the order of the steps."""
        from ._delete import delete_selected

        conn = self._writable()
        selection = Selection.of(
            filter_string, trace_ids, max_timestamp_millis, older_than, max_traces
        )
        return delete_selected(conn, self._resolved(selection), source=source)

    def count_deletable(
        self,
        filter_string: str | None = None,
        *,
        trace_ids: Iterable[str] | None = None,
        max_timestamp_millis: int | None = None,
        older_than: Any = None,
        max_traces: int | None = None,
    ) -> int:
        from ._delete import count_selected

        selection = Selection.of(
            filter_string, trace_ids, max_timestamp_millis, older_than, max_traces
        )
        return count_selected(self.conn, self._resolved(selection))

    def _resolved(self, selection: Selection) -> Selection:
        """Each id prefix replaced by the one trace it names (a typo must not pass as "deleted
        0"); a full id not in the store stays, and is skipped."""
        return selection.resolved({p: self.resolve_trace_id(p) for p in selection.prefixes})

    # -- writing ------------------------------------------------------------------------------

    def write_batch(self, batch: Any) -> None:
        """Write a WriteBatch (what the exporter and the collector hand over)."""
        from ._writer import write_batch

        write_batch(self._writable(), batch)

    def _trace_name(self, tid: str) -> tuple[bool, str | None]:
        rows = self.conn.query(
            "SELECT name FROM td_traces FINAL WHERE trace_id = {t:String}", {"t": tid}
        )
        return (bool(rows), rows[0][0] if rows else None)

    def set_trace_tag(
        self,
        trace_id: str,
        key: str,
        value: Any = True,
        exclusive: bool = False,
        append: bool = False,
        *,
        source: str = "api",
    ) -> None:
        check_key(key)
        encode_value(value, key)
        conn = self._writable()
        tid = self.resolve_trace_id(trace_id)
        _, name = self._trace_name(tid)
        tags = load_tags(conn, [tid]).get(tid, {})
        registered = exclusive_keys(conn).get(key)
        had = key in tags
        new = _appended(tags.get(key), value, had) if append else value
        new_text = encode_value(new, key)
        old_text = _json.dumps(tags[key]) if had else None
        edit = EditRows(source)
        if old_text != new_text:
            edit.event(tid, key, old_text, new, "update" if had else "set")
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
        current = holders(self.conn, wanted)
        claimers = {tid for tid, _ in traces}
        losers = sorted({h for h in current.values() if h not in claimers})
        their_tags = load_tags(self.conn, losers)
        for tid, name in traces:
            where = scope_value(scope, name)
            old = current.get((key, where))
            if old is not None and old not in claimers and key in their_tags.get(old, {}):
                text = _json.dumps(their_tags[old].pop(key))
                edit.event(old, key, text, None, "moved", deleted=True)
            edit.claim(tid, key, where)

    def delete_trace_tag(
        self, trace_id: str, key: str, value: Any = _MISSING, *, source: str = "api"
    ) -> None:
        conn = self._writable()
        tid = self.resolve_trace_id(trace_id)
        tags = load_tags(conn, [tid]).get(tid, {})
        if key not in tags:
            raise TagError(f"trace {tid} has no tag {key!r}")
        if value is not _MISSING and _json.dumps(tags[key]) != _json.dumps(value):
            raise TagError(
                f"trace {tid} has tag {key!r} = {_json.dumps(tags[key])}, not "
                f"{_json.dumps(value)}; nothing was deleted"
            )
        edit = EditRows(source)
        edit.event(tid, key, _json.dumps(tags[key]), None, "delete", deleted=True)
        self._release(edit, [tid], key)
        edit.insert(conn)

    def _release(self, edit: EditRows, trace_ids: list[str], key: str) -> None:
        """Traces that held an exclusive ``key`` and lose it leave no holder behind."""
        scope = exclusive_keys(self.conn).get(key)
        if not scope:
            return
        rows = self.conn.query(
            "SELECT trace_id, name FROM td_traces FINAL WHERE trace_id IN {ids:Array(String)}",
            {"ids": trace_ids},
        )
        pairs = {tid: (key, scope_value(scope, name)) for tid, name in rows}
        current = holders(self.conn, list(pairs.values()))
        for tid, pair in pairs.items():
            if current.get(pair) == tid:
                edit.release(tid, key, pair[1])

    def _matching(self, filter_string: str) -> list[tuple[str, str | None]]:
        from ...query import compile_filter

        if not filter_string or not str(filter_string).strip():
            raise TagError(
                "a filter is required for a bulk tag change (use 'trace_id LIKE '%'' for all)"
            )
        runner = self.runner
        where, params = compile_filter(filter_string, runner)
        return runner.rows(
            f"SELECT t.trace_id, t.name FROM {runner.dialect.traces_from} WHERE {where}",
            params,
            filter_string,
        )

    def set_trace_tags(
        self, filter_string: str, tags: Mapping[str, Any] | Iterable[Any], *, source: str = "api"
    ) -> int:
        from ..._context import normalize_tags

        items = normalize_tags(tags)
        updates = {t.key: t.value for t in items}
        if not updates:
            return 0
        conn = self._writable()
        rows = self._matching(filter_string)
        exclusive = exclusive_keys(conn)
        for tag in items:
            if tag.exclusive and tag.key not in exclusive:
                register(conn, tag.key, True, tag.scope)
                exclusive[tag.key] = tag.scope
        _check_exclusive_bulk([(t, "", n, 0) for t, n in rows], updates, exclusive)
        current = load_tags(conn, [t for t, _ in rows])
        edit = EditRows(source)
        for tid, _ in rows:
            have = current.get(tid, {})
            for key, value in updates.items():
                new_text = _json.dumps(value)
                old_text = _json.dumps(have[key]) if key in have else None
                if old_text != new_text:
                    edit.event(tid, key, old_text, value, "set" if old_text is None else "update")
        for key in updates:
            if key in exclusive:
                self._claim(edit, list(rows), key, exclusive[key])
        edit.insert(conn)
        return len(rows)

    def append_trace_tags(
        self, filter_string: str, tags: Mapping[str, Any], *, source: str = "api"
    ) -> int:
        for key, value in tags.items():
            check_key(key)
            encode_value(value, key)
        conn = self._writable()
        rows = self._matching(filter_string)
        current = load_tags(conn, [t for t, _ in rows])
        edit = EditRows(source)
        for tid, _ in rows:
            have = current.get(tid, {})
            for key, value in tags.items():
                had = key in have
                new = _appended(have.get(key), value, had)
                encode_value(new, key)
                edit.event(tid, key, _json.dumps(have[key]) if had else None, new,
                           "update" if had else "set")  # fmt: skip
        edit.insert(conn)
        return len(rows)

    def delete_trace_tags(
        self,
        filter_string: str,
        keys: Iterable[str] | str,
        *,
        values: Mapping[str, Any] | None = None,
        source: str = "api",
    ) -> int:
        key_list = [keys] if isinstance(keys, str) else list(keys)
        only = {k: _json.dumps(v) for k, v in (values or {}).items()}
        key_list += [k for k in only if k not in key_list]
        for key in key_list:
            check_key(key)
        conn = self._writable()
        rows = self._matching(filter_string)
        current = load_tags(conn, [t for t, _ in rows])
        edit = EditRows(source)
        changed: set[str] = set()
        lost: dict[str, list[str]] = {}
        for tid, _ in rows:
            have = current.get(tid, {})
            for key in key_list:
                if key in have and (key not in only or _json.dumps(have[key]) == only[key]):
                    edit.event(tid, key, _json.dumps(have[key]), None, "delete", deleted=True)
                    changed.add(tid)
                    lost.setdefault(key, []).append(tid)
        for key, tids in lost.items():
            self._release(edit, tids, key)
        edit.insert(conn)
        return len(changed)

    def register_tag(self, key: str, exclusive: bool = True, scope: str = "name") -> None:
        check_key(key)
        check_scope(scope)
        register(self._writable(), key, exclusive, scope)

    def log_metadata(
        self, trace_id: str, metadata: Mapping[str, Any], *, source: str = "api"
    ) -> None:
        if not isinstance(metadata, Mapping) or not metadata:
            raise TagError("metadata must be a non-empty dict of key -> JSON value")
        entries = []
        for key, value in metadata.items():
            check_key(key)
            entries.append((key, encode_value(value, key)))
        conn = self._writable()
        tid = self.resolve_trace_id(trace_id)
        rows = MetadataRows(source)
        for key, text in entries:
            rows.add(tid, key, text)
        rows.insert(conn)


def _group_field(field: str, by: str) -> Any:
    from ...query._ast import Predicate
    from ...query._parser import parse

    try:
        node = parse(f"{field} IS NULL")
    except FilterError:
        node = None
    if not isinstance(node, Predicate) or node.field.family not in ("tag", "metadata"):
        raise FilterError(
            f"cannot group by {by!r}: use name, status, service_name, tags.KEY or metadata.KEY"
        )
    return node.field


def _naive(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value
