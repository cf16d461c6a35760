"""ClickHouseStore: the TraceStore of a ClickHouse server or of chdb in the process.

``TraceStore("chdb:///dir")`` or ``TraceStore("clickhouse://host/db")`` returns one of these.
Every edit is one insert of events (see ``_schema``); reads derive the current state from the
events, so they never see half an edit, and an exclusive tag never has two holders.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ... import _json
from ..._selection import Selection
from ...errors import StorageError, TraceduckError
from ...model import Experiment, MetadataEvent, PagedList, Span, TagEvent, Trace, TraceInfo
from .._base import READ_ONLY_SQL, TraceStore, experiment_exists
from .._names import StoreName, missing_store, parse_store_name
from .._rows import INFO_COLUMNS, SPAN_COLUMNS, id_prefix, one_trace, spans_by_trace
from .._stats import group_field, stat_groups
from . import _experiments
from ._client import Connection, connect
from ._edits import TagEdits
from ._events import (
    DOCUMENT_SETTINGS,
    document_tables,
    documents,
    exclusive_keys,
    load_documents,
)
from ._query import QUERY_SETTINGS, ClickHouseRunner
from ._schema import migrate
from ._sql import current_tags

__all__ = ["ClickHouseStore"]

# The info columns of td_traces (tags and metadata are derived from their events).
TRACE_INFO = tuple(c for c in INFO_COLUMNS if c not in ("tags", "metadata"))
LITERAL_IDS = 5_000  # more ids than this are not sent as a parameter (see _documents)
_READ_ONLY = re.compile(r"^\s*(\(\s*)*(SELECT|WITH|EXPLAIN|DESCRIBE|DESC|SHOW)\b", re.IGNORECASE)
# Quoted text and comments, which may hold anything (a ';', a leading "-- how many").
_TEXT_OR_COMMENT = re.compile(
    r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|`(?:[^`\\]|\\.|``)*`|--[^\n]*|/\*.*?\*/",
    re.DOTALL,
)


def _one_read_only(query: object) -> bool:
    """Whether ``query`` is one statement that starts as a read-only one does (the server's
    ``readonly = 2`` refuses any write anyway; this gives the clear message)."""
    if not isinstance(query, str):
        return False
    code = _TEXT_OR_COMMENT.sub(lambda m: " " if m.group(0)[0] in "-/" else "''", query).strip()
    return bool(_READ_ONLY.match(code)) and ";" not in code.rstrip(";")


class ClickHouseStore(TagEdits, TraceStore):
    """The TraceStore calls on a ClickHouse server or chdb."""

    def __init__(self, path: str | StoreName, *, read_only: bool = False) -> None:
        self.name = parse_store_name(path)
        self.path = self.name.display
        self.read_only = read_only
        self._conn: Connection | None = None

    @property
    def conn(self) -> Connection:
        """The connection; reading a chdb directory that does not exist is a StorageError (a
        store is created by its first write: ``write_conn``), not a new store on disk, unless
        this process traces into it (``traced_into``)."""
        if self._conn is None and not self.traced_into:
            why = missing_store(self.name)
            if why is not None:
                raise StorageError(
                    f"no store at {self.path} ({why}); a store is created by its first write"
                )
        return self.write_conn

    @property
    def write_conn(self) -> Connection:
        """The connection, creating the store (directory and schema) if it is new."""
        if self._conn is None:
            conn = connect(self.name)
            migrate(conn)
            self._conn = conn
        return self._conn

    @property
    def runner(self) -> ClickHouseRunner:
        return ClickHouseRunner(self.conn)

    @contextmanager
    def _reading(self) -> Iterator[ClickHouseRunner]:
        yield self.runner

    # -- reading ------------------------------------------------------------------------------

    def resolve_trace_id(self, trace_id_or_prefix: str) -> str:
        prefix = id_prefix(trace_id_or_prefix)
        rows = self.conn.query(
            "SELECT DISTINCT trace_id FROM td_traces WHERE startsWith(trace_id, {p:String}) "
            "ORDER BY trace_id LIMIT 11",
            {"p": prefix},
        )
        return one_trace(prefix, [r[0] for r in rows])

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
            tags, metadata = load_documents(self.conn, ids)
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
        if not trace_ids:
            return {}
        rows = self.conn.query(
            f"SELECT {', '.join(SPAN_COLUMNS)} FROM spans WHERE trace_id IN {{ids:Array(String)}} "
            "ORDER BY start_time_ns, span_id",
            {"ids": trace_ids},
        )
        return spans_by_trace(rows, trace_ids)

    def _search_list(
        self,
        filter_string: str | None,
        order_by: list[str] | None,
        max_results: int | None,
        page_token: str | None,
        experiment_ids: list[str] | None,
        include_spans: bool,
    ) -> PagedList[Trace]:
        from ...query._search import run_search_rows

        # The type probes of tag predicates under OR (~15 ms each on 100,000 traces) wait for
        # the page's tags, which usually prove them (CompiledFilter.settle).
        rows, token, compiled = run_search_rows(
            self.runner, filter_string, order_by, max_results, page_token, TRACE_INFO,
            experiment_ids=experiment_ids, settle=True,
        )  # fmt: skip
        ids = [r[0] for r in rows]
        infos = self._to_infos([dict(zip(TRACE_INFO, r)) for r in rows], ids, filter_string)
        compiled.settle(i.tags for i in infos)
        spans = self._spans(ids) if include_spans else {}
        return PagedList([Trace(i, spans.get(i.trace_id, [])) for i in infos], token)

    def _search_table(
        self,
        filter_string: str | None,
        order_by: list[str] | None,
        max_results: int | None,
        page_token: str | None,
        experiment_ids: list[str] | None,
    ) -> pa.Table:
        from ...query._search import run_search_table

        if max_results is None:
            return self._every_match(filter_string, order_by, page_token, experiment_ids)
        # Arrow from the engine throughout. (The tags and metadata found by the filter again
        # ignore the experiment scope: a superset, which the join leaves out.)
        found, _, compiled = run_search_table(
            self.runner, filter_string, order_by, max_results, page_token, TRACE_INFO,
            experiment_ids, settle=True,
        )  # fmt: skip
        table = self._info_table(found, filter_string)
        if compiled.unsettled:  # (an empty page has run every probe)
            compiled.settle(_json.loads(text.as_py()) for text in table.column("tags"))
        return table

    def _every_match(
        self,
        filter_string: str | None,
        orders: list[str] | None,
        page_token: str | None,
        scope: list[str] | None,
    ) -> pa.Table:
        """Every match as the search table, in one query: the search's rows joined to the tags
        and metadata documents of the traces the filter selects (read without FINAL: a superset,
        which the join leaves out), as a user writes it by hand. Run as two queries (the rows,
        then the documents found by the filter again) this took 1.8x the hand-written query on
        1M traces (benchmarks/README.md)."""
        from ...query._dialect import sql
        from ...query._search import _order_by, build_search

        runner = self.runner
        query, plan, _, compiled = build_search(
            runner, filter_string, orders, None, page_token, defer_probes=True,
            columns=TRACE_INFO, experiment_ids=scope,
        )  # fmt: skip
        tags, metadata = document_tables(
            "trace_id IN ({})" if filter_string else "", narrow_claims=False
        )
        chosen = sql("SELECT t.trace_id FROM td_traces AS t WHERE {}", compiled.frag)
        empty = "concat('{', '}')"  # '{}' would be a hole of the template
        shown = {"tags": f"ifNull(g.tags, {empty})", "metadata": f"ifNull(m.metadata, {empty})"}
        columns = ", ".join(f"{shown.get(c, 's.' + c)} AS {c}" for c in INFO_COLUMNS)
        keys = [f"s._k{i}" for i in range(len(plan.keys))]
        template = (
            f"SELECT {columns} FROM ({{}}) AS s LEFT JOIN ({tags}) AS g ON g.trace_id = "
            f"s.trace_id LEFT JOIN ({metadata}) AS m ON m.trace_id = s.trace_id "
            f"ORDER BY {_order_by(keys, plan.keys)}"
        )
        fills = [chosen] * (template.count("{}") - 1)
        text, params = runner.dialect.render(sql(template, query, *fills))
        table = runner.arrow(text, params, filter_string or "", **DOCUMENT_SETTINGS)
        if table.num_rows == 0:
            compiled.finish()  # an empty result may hide a type mismatch: probe now
        return pa.table({c: table.column(c) for c in INFO_COLUMNS})  # as the other tables

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

    def sql(self, query: str, params: Any = None) -> pa.Table:
        """One read-only ClickHouse query over the documented names (``{name:Type}`` params).

        Runs with ``readonly = 2``: the server refuses anything that writes."""
        if not _one_read_only(query):
            raise TraceduckError(READ_ONLY_SQL)
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
        from ...query._compiler import compile_filter_frag
        from ...query._dialect import Frag, sql

        runner = self.runner
        where = compile_filter_frag(filter_string, runner)
        join, group, is_json = Frag(""), Frag("CAST(NULL AS Nullable(String))"), False
        field = group_field(by)
        if isinstance(field, str):
            group = Frag(f"t.{field}")
        elif field is not None:
            group, joined = runner.dialect.order_value(field, 0)
            assert joined is not None
            join, is_json = joined, True
        # One rendering of the whole query: the group's join and the filter share the
        # parameter numbering (p0, p1, ...).
        query, params = runner.dialect.render(
            sql(
                "SELECT {} AS grp, count() AS n, countIf(t.status = 'ERROR') AS errors, "
                "quantileExactInclusive(0.5)(t.execution_time_ms), "
                "quantileExactInclusive(0.95)(t.execution_time_ms), "
                "quantileExactInclusive(0.99)(t.execution_time_ms), max(t.execution_time_ms) "
                f"FROM {runner.dialect.traces_from}{{}} WHERE {{}} "
                "GROUP BY grp",
                group,
                join,
                where,
            )
        )
        rows = runner.rows(query, params, filter_string or "")
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

    def _create_experiment(self, name: str) -> str:
        conn = self.write_conn
        if _experiments.by_name(conn, name) is not None:
            raise experiment_exists(name)
        return _experiments.ensure(conn, [name])[name]

    def get_or_create_experiment(self, name: str) -> Experiment:
        if not self.read_only:
            _ = self.write_conn  # a write: it creates a store not made yet, as on DuckDB
        return super().get_or_create_experiment(name)

    def _ensure_experiment(self, name: str) -> None:
        _experiments.ensure(self.write_conn, [name])

    def _experiment_by_id(self, experiment_id: str) -> Experiment | None:
        return _experiments.by_id(self.conn, experiment_id)

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

    def _export_traces(self, path: str, filter_string: str | None, progress: Any) -> int:
        from ._transfer import export_traces

        return export_traces(self, path, filter_string, progress=progress)

    def _import_traces(self, path: str, fmt: str, progress: Any, source: str) -> Any:
        """See ``_import``."""
        from ._import import import_traces

        return import_traces(self, path, fmt, progress=progress, source=source)

    def _delete(self, selection: Selection, source: str) -> int:
        """As on DuckDB; without a transaction: see ``_delete`` for the order of the steps."""
        from ._delete import delete_selected

        return delete_selected(self.conn, self._resolved(selection), source=source)

    def _count_deletable(self, selection: Selection) -> int:
        from ._delete import count_selected

        return count_selected(self.conn, self._resolved(selection))

    def _resolved(self, selection: Selection) -> Selection:
        """Each id prefix replaced by the one trace it names (a typo must not pass as "deleted
        0"); a full id not in the store stays, and is skipped."""
        return selection.resolved({p: self.resolve_trace_id(p) for p in selection.prefixes})

    # -- writing ------------------------------------------------------------------------------

    def _write_batch(self, batch: Any) -> None:
        from ._writer import write_batch

        write_batch(self.write_conn, batch)


def _naive(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value
