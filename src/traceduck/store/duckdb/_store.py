"""TraceStore: search, read, tag and annotate the traces in one DuckDB file.

Module-level functions (``traceduck.search_traces`` ...) call the store of the configured default
path; ``TraceStore(path)`` lets a process use several stores, read-only ones included.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import duckdb
import pyarrow as pa

from ... import _experiment, _json
from ..._pandas import require_pandas
from ...errors import ConfigError, StorageError, TagError, TraceduckError
from ...model import Experiment, MetadataEvent, PagedList, TagEvent, Trace, TraceInfo
from . import _experiments, _reader, _tags
from ._connection import Database, get_database, query_arrow

__all__ = ["TraceStore"]

_MISSING: Any = object()
ReturnType = Literal["list", "pandas", "arrow"]


class TraceStore:
    """The query, tag and SQL calls over one store file.

    >>> store = TraceStore("traces.duckdb")
    >>> errors = store.search_traces("status = 'ERROR' AND tags.env = 'prod'", max_results=10)
    >>> store.set_trace_tag(errors[0].info.trace_id, "triaged", True)

    A path with no file yet is an empty store (nothing is created until something is written);
    a corrupt file raises ``StorageError`` and is left as it is.
    """

    def __new__(cls, path: Any = None, *args: Any, **kwargs: Any) -> Any:
        # A ClickHouse URL (chdb://, clickhouse://) gives the ClickHouse engine's store.
        if cls is TraceStore and path is not None:
            from .._names import parse_store_name

            if parse_store_name(path).engine != "duckdb":
                return object.__new__(_clickhouse_store_class())
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = os.fspath(path)
        self.read_only = read_only
        self._db: Database = get_database(self.path, read_only=read_only)

    def __repr__(self) -> str:
        return f"TraceStore({self.path!r}{', read_only=True' if self.read_only else ''})"

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
        """Traces matching a filter, newest first unless ``order_by`` says otherwise.

        >>> page = store.search_traces("tags.env = 'prod' AND execution_time_ms > 500")
        >>> more = store.search_traces("tags.env = 'prod' AND execution_time_ms > 500",
        ...                            page_token=page.token)

        ``return_type="list"`` gives a ``PagedList`` of ``Trace`` (``.token`` is the next
        page's token, None on the last page); "pandas" and "arrow" give one row per trace.

        ``experiment_ids`` (or MLflow 3's ``locations``, the same ids; both: either) keeps the
        traces of those experiments only; ids of no experiment match nothing.

        The filter language, ``order_by`` and page tokens: the "Filter language" section of
        the README.
        """
        from ...query import search_page

        if return_type not in ("list", "pandas", "arrow"):
            raise ValueError(
                f"return_type must be 'list', 'pandas' or 'arrow', not {return_type!r}"
            )
        if return_type == "pandas":
            require_pandas("search_traces(return_type='pandas')")
        orders = [order_by] if isinstance(order_by, str) else order_by
        scope = experiment_scope(experiment_ids, locations)
        with self._db.lease() as cur:
            if return_type != "list":
                # Tables are for analysis (often every match): one query returns the columns.
                table, _ = search_page(
                    cur, filter_string, orders, max_results, page_token,
                    columns=_reader.INFO_COLUMNS, arrow=True, experiment_ids=scope,
                )  # fmt: skip
                return table if return_type == "arrow" else table.to_pandas()
            rows, token = search_page(
                cur, filter_string, orders, max_results, page_token,
                columns=_reader.INFO_COLUMNS, late=None, experiment_ids=scope,
            )  # fmt: skip
            infos = [_reader.info_from_row(r) for r in rows]
            ids = [i.trace_id for i in infos]
            spans = _reader.load_spans(cur, ids) if include_spans else {}
        return PagedList([Trace(i, spans.get(i.trace_id, [])) for i in infos], token)

    def count_traces(self, filter_string: str | None = None) -> int:
        """How many traces match a filter (every trace without one).

        >>> store.count_traces("status = 'ERROR' AND tags.env = 'prod'")
        """
        from ...query import compile_filter

        with self._db.lease() as cur:
            where, params = compile_filter(filter_string, cur)
            return int(
                cur.execute(f"SELECT count(*) FROM traces t WHERE {where}", params).fetchall()[0][0]
            )

    def explain_search(
        self,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        max_results: int | None = 100,
    ) -> tuple[str, list[Any]]:
        """The SQL (and its bound parameters) that ``search_traces`` runs for the trace ids of
        the first page: what ``traceduck search --show-sql`` prints."""
        from ...query import explain

        orders = [order_by] if isinstance(order_by, str) else order_by
        with self._db.lease() as cur:
            return explain(cur, filter_string, orders, max_results)

    def sql(self, query: str, params: list[Any] | None = None) -> pa.Table:
        """Run a read-only SQL query over the documented tables; returns a pyarrow Table.

        >>> store.sql("SELECT status, count(*) FROM traces GROUP BY status")
        """
        try:
            statements = duckdb.extract_statements(query)
        except duckdb.Error as exc:
            raise TraceduckError(f"SQL error: {exc}") from None
        allowed = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
        if len(statements) != 1 or statements[0].type not in allowed:
            raise TraceduckError(
                "td.sql runs one read-only query (SELECT, WITH ... SELECT, EXPLAIN); "
                "change tags with set_trace_tag/set_trace_tags"
            )
        with self._db.lease() as cur:
            try:
                return query_arrow(cur, query, params)
            except duckdb.Error as exc:
                raise TraceduckError(f"SQL error: {str(exc).splitlines()[0]}") from None

    def stats(
        self, filter_string: str | None = None, by: str | None = None
    ) -> list[dict[str, Any]]:
        """Counts, error rate and latency percentiles (ms) per group of the matching traces.

        >>> store.stats("tags.env = 'prod'", by="name")
        [{'group': 'answer', 'count': 120, 'errors': 6, 'error_rate': 0.05, 'p50_ms': 2.1,
          'p95_ms': 8.4, 'p99_ms': 11.9, 'max_ms': 14.0}]

        ``by``: None (one group), ``name``, ``status``, ``service_name``, ``tags.KEY`` or
        ``metadata.KEY``; traces without the key form the group None. Largest group first.
        """
        from ._stats import trace_stats

        with self._db.lease() as cur:
            return trace_stats(cur, filter_string, by)

    def exclusive_tag_keys(self) -> dict[str, str]:
        """The exclusive tag keys and their scopes ("name" or "global")."""
        rows = self.sql("SELECT key, scope FROM tag_keys WHERE exclusive ORDER BY key")
        return {r["key"]: r["scope"] for r in rows.to_pylist()}

    def tag_value_types(self, key: str) -> set[str]:
        """The JSON types ("string", "number", "array", ...) that tag ``key`` holds."""
        rows = self.sql("SELECT DISTINCT value_type FROM trace_tags WHERE key = ?", [key])
        return {r["value_type"] for r in rows.to_pylist()}

    def keys_in_use(self, sample: int = 10_000) -> dict[str, list[str]]:
        """The tag and metadata keys of the newest ``sample`` traces (a full scan would not
        scale): ``{"tags": [...], "metadata": [...]}``, each sorted."""
        out: dict[str, list[str]] = {}
        for column in ("tags", "metadata"):
            rows = self.sql(
                f"SELECT DISTINCT unnest(json_keys({column})) AS k FROM (SELECT {column} FROM "
                f"traces ORDER BY timestamp_ms DESC LIMIT {int(sample)}) ORDER BY k"
            ).to_pylist()
            out[column] = [r["k"] for r in rows]
        return out

    def export_traces(
        self,
        path: str | os.PathLike[str],
        filter_string: str | None = None,
        *,
        progress: Any = None,
    ) -> int:
        """Write the matching traces (spans, tags, metadata, histories) to .parquet or .jsonl.

        >>> store.export_traces("errors.parquet", "status = 'ERROR'")
        12

        ``progress(done, total)`` is called after each chunk. Returns how many traces.
        """
        from ._transfer import export_traces

        return export_traces(self._db, os.fspath(path), filter_string, progress=progress)

    def import_traces(self, path: str | os.PathLike[str], *, progress: Any = None) -> Any:
        """Add the traces of an ``export_traces`` file, in one transaction.

        >>> TraceStore("copy.duckdb").import_traces("errors.parquet")
        ImportResult(imported=12, skipped=0)

        Traces already in the store are skipped (counted in ``skipped``), never overwritten.
        """
        from ._transfer import import_traces

        return import_traces(self._db, os.fspath(path), progress=progress)

    def tag_history(self, trace_id: str) -> list[TagEvent]:
        """Every change of the trace's tags, oldest first."""
        with self._db.lease() as cur:
            return _reader.tag_history(cur, _reader.resolve_id(cur, trace_id))

    def metadata_history(self, trace_id: str) -> list[MetadataEvent]:
        """Every metadata entry of the trace, oldest first."""
        with self._db.lease() as cur:
            return _reader.metadata_history(cur, _reader.resolve_id(cur, trace_id))

    def compare_traces(
        self, ids_or_filter: str | Iterable[str], keys: Iterable[str] | None = None, limit: int = 20
    ) -> Any:
        """Traces side by side, one column per trace (see ``traceduck.compare_traces``)."""
        from ..._compare import compare_traces

        return compare_traces(ids_or_filter, keys, limit=limit, store=self)

    def write_batch(self, batch: Any) -> None:
        """Write a ``WriteBatch`` (the records the exporter and the collector hand to any
        engine) in one transaction."""
        from ._writer import write_batch

        if self.read_only:
            raise TraceduckError(f"store {self.path} was opened read-only; it cannot be changed")
        write_batch(self._db, batch)

    # -- tags ---------------------------------------------------------------------------------

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
        """Set one tag on a finished trace (by id or unique prefix).

        ``append=True`` adds ``value`` to a list value (a scalar becomes a list, a missing key
        starts one). ``exclusive=True`` makes the key exclusive from now on: the trace holding it
        in the same scope loses it (a ``moved`` event in its history).
        """
        _tags.check_key(key)
        _tags.encode_value(value, key)
        with self._write() as cur:
            tid, tags, name, registered = _tags.load_for_edit(cur, trace_id, key)
            now = _tags.utcnow()
            had = key in tags
            old = tags.get(key)
            new = _appended(old, value, had) if append else value
            new_text = _tags.encode_value(new, key)
            old_text = _json.dumps(old) if had else None
            events: list[_tags.Event] = []
            if old_text != new_text:
                tags[key] = new
                _tags.store_tags(cur, tid, tags)
                operation = "update" if had else "set"
                events.append((now, tid, key, old_text, new_text, operation, source))
            scope = registered or ""
            if exclusive and not scope:  # exclusive from now on (load_for_edit read the registry)
                _tags.register(cur, key, True, "name")
                scope = "name"
            if scope:
                events += _tags.claim_exclusive(
                    cur, trace_id=tid, trace_name=name, key=key, scope=scope, source=source, now=now
                )
            _tags.insert_events(cur, events)

    def delete_trace_tag(
        self, trace_id: str, key: str, value: Any = _MISSING, *, source: str = "api"
    ) -> None:
        """Delete a tag; ``TagError`` if the trace has no such tag (or not with ``value``)."""
        with self._write() as cur:
            tid, tags, _, _ = _tags.load_for_edit(cur, trace_id, key)
            if key not in tags:
                raise TagError(f"trace {tid} has no tag {key!r}")
            if value is not _MISSING and _json.dumps(tags[key]) != _json.dumps(value):
                raise TagError(
                    f"trace {tid} has tag {key!r} = {_json.dumps(tags[key])}, not "
                    f"{_json.dumps(value)}; nothing was deleted"
                )
            old = tags.pop(key)
            _tags.store_tags(cur, tid, tags)
            _tags.release_exclusive(cur, tid, key)
            _tags.insert_events(
                cur, [(_tags.utcnow(), tid, key, _json.dumps(old), None, "delete", source)]
            )

    def set_trace_tags(
        self, filter_string: str, tags: Mapping[str, Any] | Iterable[Any], *, source: str = "api"
    ) -> int:
        """Set tags on every trace matching a filter, in one transaction; returns how many."""
        from ..._context import normalize_tags

        items = normalize_tags(tags)
        updates = {t.key: t.value for t in items}
        if not updates:
            return 0
        with self._write() as cur:
            rows = self._matching(cur, filter_string)
            exclusive = _tags.exclusive_keys(cur)
            for tag in items:
                if tag.exclusive and tag.key not in exclusive:
                    _tags.register(cur, tag.key, True, tag.scope)
                    exclusive[tag.key] = tag.scope
            _check_exclusive_bulk(rows, updates, exclusive)
            now = _tags.utcnow()

            def set_keys(tid: str, current: dict[str, Any]) -> list[_tags.Event]:
                out = []
                for key, value in updates.items():
                    new_text = _json.dumps(value)
                    old_text = _json.dumps(current[key]) if key in current else None
                    if old_text != new_text:
                        current[key] = value
                        op = "set" if old_text is None else "update"
                        out.append((now, tid, key, old_text, new_text, op, source))
                return out

            _, events = _rewrite_tags(cur, rows, set_keys)
            for tid, _, name, _ in rows:
                for key in updates:
                    if key in exclusive:
                        events += _tags.claim_exclusive(
                            cur, trace_id=tid, trace_name=name, key=key,
                            scope=exclusive[key], source=source, now=now,
                        )  # fmt: skip
            _tags.insert_events(cur, events)
            return len(rows)

    def append_trace_tags(
        self, filter_string: str, tags: Mapping[str, Any], *, source: str = "api"
    ) -> int:
        """Add each value to the list tag of every matching trace (a scalar becomes a list, a
        missing key starts one), in one transaction; returns how many traces matched."""
        for key, value in tags.items():
            _tags.check_key(key)
            _tags.encode_value(value, key)
        with self._write() as cur:
            rows = self._matching(cur, filter_string)
            now = _tags.utcnow()

            def append(tid: str, current: dict[str, Any]) -> list[_tags.Event]:
                out = []
                for key, value in tags.items():
                    had = key in current
                    old_text = _json.dumps(current[key]) if had else None
                    current[key] = _appended(current.get(key), value, had)
                    new_text = _tags.encode_value(current[key], key)
                    op = "update" if had else "set"
                    out.append((now, tid, key, old_text, new_text, op, source))
                return out

            _, events = _rewrite_tags(cur, rows, append)
            _tags.insert_events(cur, events)
            return len(rows)

    def delete_trace_tags(
        self,
        filter_string: str,
        keys: Iterable[str] | str,
        *,
        values: Mapping[str, Any] | None = None,
        source: str = "api",
    ) -> int:
        """Delete tag keys from every trace matching a filter; returns how many lost a tag.

        ``values={"key": value}`` removes a key only where it has that value (redun's
        ``tag rm key=value``).
        """
        key_list = [keys] if isinstance(keys, str) else list(keys)
        only = {k: _json.dumps(v) for k, v in (values or {}).items()}
        key_list += [k for k in only if k not in key_list]
        for key in key_list:
            _tags.check_key(key)
        with self._write() as cur:
            rows = self._matching(cur, filter_string)
            now = _tags.utcnow()

            def delete(tid: str, current: dict[str, Any]) -> list[_tags.Event]:
                out = []
                for key in key_list:
                    if key in current and (
                        key not in only or _json.dumps(current[key]) == only[key]
                    ):
                        old = current.pop(key)
                        out.append((now, tid, key, _json.dumps(old), None, "delete", source))
                        _tags.release_exclusive(cur, tid, key)
                return out

            changed, events = _rewrite_tags(cur, rows, delete)
            _tags.insert_events(cur, events)
            return len(changed)

    # -- deleting -----------------------------------------------------------------------------

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
        """Delete traces with their spans, tags, metadata and histories; returns how many.

        >>> store.delete_traces("tags.env = 'dev'")
        >>> store.delete_traces(trace_ids=["3fa2c1", "b81c07"])
        >>> store.delete_traces(older_than="30d", max_traces=10_000)   # the oldest first

        MLflow's arguments; the ones given are ANDed, and at least one of ``filter_string``,
        ``trace_ids``, ``max_timestamp_millis`` (roots that started before it) and
        ``older_than`` (a duration: "30d", "12h", "90m", "45s") is required (``FilterError``
        without). ``max_traces`` caps the count, oldest first. A full trace id that is not in
        the store is skipped; a prefix must name one trace. One transaction; an exclusive tag a
        deleted trace held has no holder afterwards; the deletion is recorded in the
        ``deletions`` table. A deletion of at least a tenth of the traces copies the traces
        that stay into a new file that replaces the store, so the file shrinks (README,
        "Deleting traces and retention").
        """
        from ..._selection import Selection
        from ._delete import delete_selected

        if self.read_only:
            raise StorageError(f"store {self.path} was opened read-only; it cannot be changed")
        selection = Selection.of(
            filter_string, trace_ids, max_timestamp_millis, older_than, max_traces
        )
        return delete_selected(self._db, selection, source=source)

    def count_deletable(
        self,
        filter_string: str | None = None,
        *,
        trace_ids: Iterable[str] | None = None,
        max_timestamp_millis: int | None = None,
        older_than: Any = None,
        max_traces: int | None = None,
    ) -> int:
        """How many traces ``delete_traces`` with the same arguments would delete now."""
        from ..._selection import Selection
        from ._delete import count_selected

        selection = Selection.of(
            filter_string, trace_ids, max_timestamp_millis, older_than, max_traces
        )
        with self._db.lease() as cur:
            return count_selected(cur, selection)

    def register_tag(self, key: str, exclusive: bool = True, scope: str = "name") -> None:
        """Declare a key exclusive (one holder per scope: same root name, or "global")."""
        _tags.check_key(key)
        _tags.check_scope(scope)
        with self._write() as cur:
            _tags.register(cur, key, exclusive, scope)

    # -- metadata -----------------------------------------------------------------------------

    def log_metadata(
        self, trace_id: str, metadata: Mapping[str, Any], *, source: str = "api"
    ) -> None:
        """Append metadata entries to a finished trace; the latest value per key is shown."""
        if not isinstance(metadata, Mapping) or not metadata:
            raise TagError("metadata must be a non-empty dict of key -> JSON value")
        entries = []
        for key, value in metadata.items():
            _tags.check_key(key)
            entries.append((key, _tags.encode_value(value, key)))
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

    def create_experiment(self, name: str) -> str:
        """Create an experiment; returns its id ("1", "2", ... in order of creation).
        ``ConfigError`` if one of that name exists (``get_or_create_experiment`` does not)."""
        name = _experiment.check_name(name)
        with self._write() as cur:
            if _experiments.by_name(cur, name) is not None:
                raise ConfigError(f"experiment {name!r} exists already")
            return _experiments.ensure(cur, [name], _tags.utcnow())[name]

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment of that name, created if the store has none."""
        name = _experiment.check_name(name)
        with self._db.lease() as cur:
            found = _experiments.by_name(cur, name)
        if found is not None:
            return found
        with self._write() as cur:
            _experiments.ensure(cur, [name], _tags.utcnow())
            found = _experiments.by_name(cur, name)
        assert found is not None
        return found

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with that id; ``ConfigError`` if there is none."""
        with self._db.lease() as cur:
            found = _experiments.by_id(cur, str(experiment_id))
        if found is None:
            raise ConfigError(f"no experiment with id {experiment_id!r}")
        return found

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment of that name, None if there is none (as in MLflow)."""
        with self._db.lease() as cur:
            return _experiments.by_name(cur, name)

    def search_experiments(self) -> list[Experiment]:
        """Every experiment, Default ("0") first."""
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

        if not filter_string or not str(filter_string).strip():
            raise TagError(
                "a filter is required for a bulk tag change (use 'trace_id LIKE '%'' for all)"
            )
        where, params = compile_filter(filter_string, cur)
        return cur.execute(
            f"SELECT t.trace_id, t.tags, t.name, t.rowid FROM traces t WHERE {where}", params
        ).fetchall()


def _clickhouse_store_class() -> type[TraceStore]:
    try:
        from ..clickhouse import ClickHouseStore
    except ImportError as exc:
        from ...errors import StorageError

        raise StorageError(
            f"ClickHouse stores need the clickhouse extra: pip install 'traceduck[clickhouse]' "
            f"({exc})"
        ) from None
    return ClickHouseStore


def experiment_scope(
    experiment_ids: Iterable[str] | str | None, locations: Iterable[str] | str | None
) -> list[str] | None:
    """The experiment ids a search keeps (None: every trace); MLflow's two spellings."""
    if experiment_ids is None and locations is None:
        return None
    ids: list[str] = []
    for given, what in ((experiment_ids, "experiment_ids"), (locations, "locations")):
        if given is None:
            continue
        items = [given] if isinstance(given, (str, int)) else list(given)
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise ConfigError(f"{what} holds experiment ids (strings), not {item!r}")
            ids.append(str(item).strip())
    return ids


def _appended(old: Any, value: Any, had: bool) -> list[Any]:
    if not had:
        return [value]
    return [*old, value] if isinstance(old, list) else [old, value]


def _check_exclusive_bulk(
    rows: list[tuple[str, str, str]], updates: Mapping[str, Any], exclusive: Mapping[str, str]
) -> None:
    for key in updates:
        scope = exclusive.get(key)
        if not scope:
            continue
        groups: dict[str, int] = {}
        for _, _, name, _ in rows:
            group = _tags.scope_value(scope, name)
            groups[group] = groups.get(group, 0) + 1
        crowded = [g for g, n in groups.items() if n > 1]
        if crowded:
            where = "the store" if scope == "global" else f"traces named {crowded[0][5:]!r}"
            raise TagError(
                f"tag {key!r} is exclusive (one trace per scope) but the filter matches "
                f"{groups[crowded[0]]} {where}; narrow the filter"
            )


def _rewrite_tags(
    cur: duckdb.DuckDBPyConnection,
    rows: list[tuple[str, str, str, int]],
    edit: Callable[[str, dict[str, Any]], list[_tags.Event]],
) -> tuple[dict[str, dict[str, Any]], list[_tags.Event]]:
    """Apply ``edit(trace id, its tags)`` (which changes the dict in place and returns the
    history events) to every matching row; store the traces whose tags changed."""
    changed: dict[str, dict[str, Any]] = {}
    events: list[_tags.Event] = []
    for tid, tags_text, _, _ in rows:
        current = _json.loads(tags_text) or {}
        made = edit(tid, current)
        if made:
            events += made
            changed[tid] = current
    _store_many(cur, changed, {r[0]: r[3] for r in rows})
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
    table = pa.table(
        {
            "rid": pa.array([rowids[t] for t in changed], pa.int64()),
            "tags": [_json.dumps(t) for t in changed.values()],
        }
    )
    cur.register("_td_tag_updates", table)
    try:
        cur.execute(
            "UPDATE traces SET tags = u.tags FROM _td_tag_updates u WHERE traces.rowid = u.rid"
        )
    finally:
        cur.unregister("_td_tag_updates")
