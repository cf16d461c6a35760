"""TraceStore: the one store interface, with what every engine does the same way.

``TraceStore(name)`` opens the engine the name denotes (a path: DuckDB; ``chdb:///dir`` or
``clickhouse://host/db``: ClickHouse) and returns that engine's subclass, so
``isinstance(TraceStore(url), TraceStore)`` holds for every name. The public methods live here:
they check their arguments (tag keys and values, filters a bulk edit needs, delete selectors,
experiment names), shape results (lists, pandas, Arrow) and leave the engine's work to the
abstract methods each engine package implements (``duckdb/``, ``clickhouse/``; Ibis's model of
one base class, many backends).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from .._pandas import require_pandas
from .._selection import Selection
from ..errors import StorageError, TagError
from ..model import MetadataEvent, PagedList, TagEvent, Trace, TraceInfo
from . import _tagrules
from ._experiments import ExperimentCalls, experiment_exists, experiment_scope
from ._rows import INFO_COLUMNS
from ._tagrules import MISSING
from ._transfer_calls import TransferCalls

if TYPE_CHECKING:
    from .._context import Tag
    from ..query import Runner

__all__ = [
    "MISSING",
    "READ_ONLY_SQL",
    "ReturnType",
    "TraceStore",
    "experiment_exists",
    "experiment_scope",
]

ReturnType = Literal["list", "pandas", "arrow"]

# The search table's columns and types, the same on every engine (pandas dtypes included).
_NUMBERS = {"timestamp_ms": pa.int64(), "execution_time_ms": pa.float64(), "span_count": pa.int64()}
INFO_SCHEMA = pa.schema([(c, _NUMBERS.get(c, pa.string())) for c in INFO_COLUMNS])
READ_ONLY_SQL = (  # what sql() says to anything but one read-only query, on every engine
    "td.sql runs one read-only query (SELECT, WITH ... SELECT, EXPLAIN); "
    "change tags with set_trace_tag/set_trace_tags"
)


class TraceStore(ExperimentCalls, TransferCalls, ABC):
    """The query, tag and SQL calls over one store.

    >>> store = TraceStore("traces.duckdb")          # or "chdb:///dir", "clickhouse://host/db"
    >>> errors = store.search_traces("status = 'ERROR' AND tags.env = 'prod'", max_results=10)
    >>> store.set_trace_tag(errors[0].info.trace_id, "triaged", True)

    A path with no file yet is an empty store (nothing is created until something is written);
    a corrupt file raises ``StorageError`` and is left as it is.
    """

    path: str
    read_only: bool

    # The store this process traces into (``configure``'s), which its first write creates
    # anyway: read before that write, it answers as an empty store on every engine (a chdb
    # directory is made then; another chdb directory not there yet is an error to read).
    traced_into = False

    def __new__(cls, path: Any = None, *args: Any, **kwargs: Any) -> Any:
        if cls is TraceStore:
            cls = _engine_class(path)
        return super().__new__(cls)

    @abstractmethod
    def __init__(self, path: Any, *, read_only: bool = False) -> None: ...

    def __repr__(self) -> str:
        return f"TraceStore({self.path!r}{', read_only=True' if self.read_only else ''})"

    def _check_writable(self) -> None:
        """StorageError on a store opened read-only: each public call that writes checks once,
        here, after its arguments and before the engine's work."""
        if self.read_only:
            raise StorageError(f"store {self.path} was opened read-only; it cannot be changed")

    # -- what the query module runs on --------------------------------------------------------

    @abstractmethod
    def _reading(self) -> AbstractContextManager[Runner]:
        """A Runner (the store's Dialect and queries) for the reads of one call."""

    # -- reading ------------------------------------------------------------------------------

    @abstractmethod
    def get_trace(self, trace_id_or_prefix: str) -> Trace:
        """The trace with that id or unique id prefix, with its spans."""

    @abstractmethod
    def get_trace_info(self, trace_id_or_prefix: str) -> TraceInfo:
        """The trace's info (tags, metadata, status, latency...) without its spans."""

    @abstractmethod
    def resolve_trace_id(self, trace_id_or_prefix: str) -> str:
        """The full id of the one trace an id or unique prefix names."""

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
        if return_type not in ("list", "pandas", "arrow"):
            raise ValueError(
                f"return_type must be 'list', 'pandas' or 'arrow', not {return_type!r}"
            )
        if return_type == "pandas":
            require_pandas("search_traces(return_type='pandas')")
        orders = [order_by] if isinstance(order_by, str) else order_by
        scope = experiment_scope(experiment_ids, locations)
        if return_type == "list":
            return self._search_list(
                filter_string, orders, max_results, page_token, scope, include_spans
            )
        # Tables are for analysis (often every match): one query returns the columns.
        table = self._search_table(filter_string, orders, max_results, page_token, scope)
        if table.schema != INFO_SCHEMA:  # DuckDB's span_count is INTEGER, ClickHouse's Int64
            table = table.cast(INFO_SCHEMA)
        return table if return_type == "arrow" else table.to_pandas()

    @abstractmethod
    def _search_list(
        self,
        filter_string: str | None,
        order_by: list[str] | None,
        max_results: int | None,
        page_token: str | None,
        experiment_ids: list[str] | None,
        include_spans: bool,
    ) -> PagedList[Trace]:
        """One page of traces and the next page's token."""

    @abstractmethod
    def _search_table(
        self,
        filter_string: str | None,
        order_by: list[str] | None,
        max_results: int | None,
        page_token: str | None,
        experiment_ids: list[str] | None,
    ) -> pa.Table:
        """One page as a table of ``_rows.INFO_COLUMNS`` (tags and metadata as JSON text)."""

    def count_traces(self, filter_string: str | None = None) -> int:
        """How many traces match a filter (every trace without one).

        >>> store.count_traces("status = 'ERROR' AND tags.env = 'prod'")
        """
        from ..query import compile_filter

        with self._reading() as runner:
            where, params = compile_filter(filter_string, runner)
            query = f"SELECT count(*) FROM {runner.dialect.traces_from} WHERE {where}"
            return int(runner.rows(query, params, filter_string or "")[0][0])

    def explain_search(
        self,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        max_results: int | None = 100,
    ) -> tuple[str, Any]:
        """The SQL (and its bound parameters) that ``search_traces`` runs for the trace ids of
        the first page: what ``traceduck search --show-sql`` prints."""
        from ..query import explain

        orders = [order_by] if isinstance(order_by, str) else order_by
        with self._reading() as runner:
            return explain(runner, filter_string, orders, max_results)

    @abstractmethod
    def sql(self, query: str, params: Any = None) -> pa.Table:
        """Run a read-only SQL query over the documented tables; returns a pyarrow Table.

        >>> store.sql("SELECT status, count(*) FROM traces GROUP BY status")
        """

    @abstractmethod
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

    @abstractmethod
    def exclusive_tag_keys(self) -> dict[str, str]:
        """The exclusive tag keys and their scopes ("name" or "global")."""

    @abstractmethod
    def tag_value_types(self, key: str) -> set[str]:
        """The JSON types ("string", "number", "array", ...) that tag ``key`` holds."""

    @abstractmethod
    def keys_in_use(self, sample: int = 10_000) -> dict[str, list[str]]:
        """The tag and metadata keys of the newest ``sample`` traces (a full scan would not
        scale): ``{"tags": [...], "metadata": [...]}``, each sorted."""

    @abstractmethod
    def tag_history(self, trace_id: str) -> list[TagEvent]:
        """Every change of the trace's tags, oldest first."""

    @abstractmethod
    def metadata_history(self, trace_id: str) -> list[MetadataEvent]:
        """Every metadata entry of the trace, oldest first."""

    def compare_traces(
        self, ids_or_filter: str | Iterable[str], keys: Iterable[str] | None = None, limit: int = 20
    ) -> Any:
        """Traces side by side, one column per trace (see ``traceduck.compare_traces``)."""
        from .._compare import compare_traces

        return compare_traces(ids_or_filter, keys, limit=limit, store=self)

    # -- writing ------------------------------------------------------------------------------

    def write_batch(self, batch: Any) -> None:
        """Write a ``WriteBatch`` (the records the exporter and the collector hand to any
        engine): all of it or none."""
        self._check_writable()
        self._write_batch(batch)

    @abstractmethod
    def _write_batch(self, batch: Any) -> None: ...

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
        _tagrules.check_key(key)
        _tagrules.encode_value(value, key)
        self._check_writable()
        self._set_tag(trace_id, key, value, exclusive, append, source)

    @abstractmethod
    def _set_tag(
        self, trace_id: str, key: str, value: Any, exclusive: bool, append: bool, source: str
    ) -> None:
        """``set_trace_tag`` with a valid key and value."""

    def delete_trace_tag(
        self, trace_id: str, key: str, value: Any = MISSING, *, source: str = "api"
    ) -> None:
        """Delete a tag; ``TagError`` if the trace has no such tag (or not with ``value``)."""
        self._check_writable()
        self._delete_tag(trace_id, key, value, source)

    @abstractmethod
    def _delete_tag(self, trace_id: str, key: str, value: Any, source: str) -> None:
        """``delete_trace_tag``; check the current tags with ``_tagrules.check_removal``."""

    def set_trace_tags(
        self, filter_string: str, tags: Mapping[str, Any] | Iterable[Any], *, source: str = "api"
    ) -> int:
        """Set tags on every trace matching a filter, all at once; returns how many."""
        from .._context import normalize_tags

        items = normalize_tags(tags)
        if not items:
            return 0
        _require_filter(filter_string)
        self._check_writable()
        return self._set_tags(filter_string, items, source)

    def _set_tags(self, filter_string: str, items: list[Tag], source: str) -> int:
        """``set_trace_tags`` with valid tags (``Tag``: key, value, exclusive, scope)."""
        updates = {t.key: t.value for t in items}
        new = {t.key: t.scope for t in items if t.exclusive}
        return self._bulk(filter_string, updates, _tagrules.set_changes, new, source)

    def append_trace_tags(
        self, filter_string: str, tags: Mapping[str, Any], *, source: str = "api"
    ) -> int:
        """Add each value to the list tag of every matching trace (a scalar becomes a list, a
        missing key starts one), all at once; returns how many traces matched."""
        if not isinstance(tags, Mapping):
            raise TagError(f"tags to append must be a dict of key -> value, not {tags!r}")
        for key, value in tags.items():
            _tagrules.check_key(key)
            _tagrules.encode_value(value, key)
        _require_filter(filter_string)
        self._check_writable()
        return self._append_tags(filter_string, tags, source)

    def _append_tags(self, filter_string: str, tags: Mapping[str, Any], source: str) -> int:
        """``append_trace_tags`` with valid keys and values."""
        return self._bulk(filter_string, tags, _tagrules.append_changes, {}, source)

    @abstractmethod
    def _bulk(
        self,
        filter_string: str,
        updates: Mapping[str, Any],
        changes: Callable[..., list[_tagrules.TagChange]],
        exclusive_now: dict[str, str],
        source: str,
    ) -> int:
        """Set or append (``changes``: ``set_changes``/``append_changes``) ``updates`` on every
        trace matching ``filter_string``, all at once; keys in ``exclusive_now`` (key -> scope)
        become exclusive unless they are already. An exclusive key moves to the matches (as
        ``set_trace_tag`` moves it), one match per scope. How many traces matched."""

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
        if not isinstance(keys, (str, Iterable)):
            raise TagError(f"give the tag keys to delete as a list of strings, not {keys!r}")
        key_list = [keys] if isinstance(keys, str) else list(keys)
        only = {k: _tagrules.encode_value(v, k) for k, v in (values or {}).items()}
        key_list += [k for k in only if k not in key_list]
        for key in key_list:
            _tagrules.check_key(key)
        _require_filter(filter_string)
        self._check_writable()
        return self._delete_tags(filter_string, key_list, only, source)

    @abstractmethod
    def _delete_tags(
        self, filter_string: str, keys: list[str], only: dict[str, str], source: str
    ) -> int:
        """``delete_trace_tags``: ``only`` maps a key to the JSON text it must have to go."""

    def register_tag(self, key: str, exclusive: bool = True, scope: str = "name") -> None:
        """Declare a key exclusive (one holder per scope: same root name, or "global")."""
        _tagrules.check_key(key)
        _tagrules.check_scope(scope)
        self._check_writable()
        self._register_tag(key, exclusive, scope)

    @abstractmethod
    def _register_tag(self, key: str, exclusive: bool, scope: str) -> None: ...

    # -- metadata -----------------------------------------------------------------------------

    def log_metadata(
        self, trace_id: str, metadata: Mapping[str, Any], *, source: str = "api"
    ) -> None:
        """Append metadata entries to a finished trace; the latest value per key is shown."""
        if not isinstance(metadata, Mapping) or not metadata:
            raise TagError("metadata must be a non-empty dict of key -> JSON value")
        entries = []
        for key, value in metadata.items():
            _tagrules.check_key(key, "metadata")
            entries.append((key, _tagrules.encode_value(value, key, "metadata")))
        self._check_writable()
        self._log_metadata(trace_id, entries, source)

    @abstractmethod
    def _log_metadata(self, trace_id: str, entries: list[tuple[str, str]], source: str) -> None:
        """``log_metadata`` with valid (key, JSON text) entries."""

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
        the store is skipped; a prefix must name one trace. An exclusive tag a deleted trace
        held has no holder afterwards; the deletion is recorded in the ``deletions`` table.
        On DuckDB: one transaction, and a deletion of at least a tenth of the traces copies
        the traces that stay into a new file that replaces the store, so the file shrinks
        (README, "Deleting traces and retention").
        """
        self._check_writable()
        selection = Selection.of(
            filter_string, trace_ids, max_timestamp_millis, older_than, max_traces
        )
        return self._delete(selection, source)

    @abstractmethod
    def _delete(self, selection: Selection, source: str) -> int:
        """``delete_traces`` of a checked selection (id prefixes not resolved yet)."""

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
        selection = Selection.of(
            filter_string, trace_ids, max_timestamp_millis, older_than, max_traces
        )
        return self._count_deletable(selection)

    @abstractmethod
    def _count_deletable(self, selection: Selection) -> int: ...


def _require_filter(filter_string: str | None) -> None:
    if not filter_string or not str(filter_string).strip():
        raise TagError(
            "a filter is required for a bulk tag change (use 'trace_id LIKE '%'' for all)"
        )


def _engine_class(name: Any) -> type[TraceStore]:
    """The TraceStore subclass of the engine a store name denotes."""
    from ._names import parse_store_name

    if name is None or parse_store_name(name).engine == "duckdb":
        from .duckdb import DuckDBStore

        return DuckDBStore
    try:
        from .clickhouse import ClickHouseStore
    except ImportError as exc:
        raise StorageError(
            f"ClickHouse stores need the clickhouse extra: pip install 'traceduck[clickhouse]' "
            f"({exc})"
        ) from None
    return ClickHouseStore
