"""traceduck: trace a Python app with OpenTelemetry into DuckDB, then ask questions of its traces.

>>> import traceduck as td
>>> @td.trace
... def answer(question: str) -> str:
...     td.update_current_trace(tags={"env": "dev"}, metadata={"user": "u1"})
...     return "42"
>>> answer("meaning of life?")
'42'
>>> td.flush()
True
>>> td.search_traces("tags.env = 'dev'")[0].info.name
'answer'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import _experiment
from ._client import MlflowClient
from ._compare import compare_traces
from ._config import configure, flush, shutdown, stats
from ._context import (
    Tag,
    TraceduckWarning,
    get_current_trace_id,
    get_last_trace_id,
    update_current_trace,
)
from ._decorator import trace
from ._export._duckdb import DuckDBSpanExporter
from ._redact import default_redactor
from ._span import LiveSpan, get_current_span, start_span
from .errors import (
    AmbiguousTraceIdError,
    ConfigError,
    FilterError,
    StorageError,
    TagError,
    TraceduckError,
    TraceNotFoundError,
)
from .model import Experiment, MetadataEvent, PagedList, Span, TagEvent, Trace, TraceInfo
from .store import TraceStore

__version__ = "0.1.0"

__all__ = [
    "AmbiguousTraceIdError",
    "ConfigError",
    "DuckDBSpanExporter",
    "Experiment",
    "FilterError",
    "LiveSpan",
    "MetadataEvent",
    "MlflowClient",
    "PagedList",
    "Span",
    "StorageError",
    "Tag",
    "TagError",
    "TagEvent",
    "Trace",
    "TraceInfo",
    "TraceNotFoundError",
    "TraceStore",
    "TraceduckError",
    "TraceduckWarning",
    "__version__",
    "compare_traces",
    "configure",
    "default_redactor",
    "delete_trace_tag",
    "delete_trace_tags",
    "delete_traces",
    "flush",
    "get_current_span",
    "get_current_trace_id",
    "get_experiment_by_name",
    "get_last_active_trace_id",
    "get_last_trace_id",
    "get_trace",
    "log_metadata",
    "metadata_history",
    "register_tag",
    "search_traces",
    "set_experiment",
    "set_trace_tag",
    "set_trace_tags",
    "shutdown",
    "sql",
    "start_span",
    "stats",
    "tag_history",
    "trace",
    "update_current_trace",
]

get_last_active_trace_id = get_last_trace_id  # MLflow 3's name


def _store() -> TraceStore:
    """The configured default store (configuring the defaults if needed)."""
    from ._config import current_db

    path = current_db()
    if path is None:
        raise ConfigError("no local store is configured (configure(db=None)); use TraceStore(path)")
    store = TraceStore(path)
    store.traced_into = True  # read before the first trace is written: an empty store
    return store


def search_traces(
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
    max_results: int | None = 100,
    page_token: str | None = None,
    return_type: str = "list",
    include_spans: bool = False,
    *,
    experiment_ids: Iterable[str] | None = None,
    locations: Iterable[str] | None = None,
) -> Any:
    """Search the default store with the filter language; see ``TraceStore.search_traces``.

    >>> td.search_traces("tags.env = 'prod' AND execution_time_ms > 500", max_results=10)
    >>> td.search_traces(experiment_ids=["1"], filter_string="status = 'ERROR'")  # MLflow's

    ``experiment_ids`` / ``locations`` (MLflow's names, keyword arguments here) keep those
    experiments' traces; without them, the active experiment's when one was chosen
    (``set_experiment``, ``configure(experiment=...)``, ``$MLFLOW_EXPERIMENT_NAME``), as in
    MLflow, else every trace.

    The filter language (fields, operators, types, missing keys, lists, span predicates,
    ``order_by``, page tokens and every error): the "Filter language" section of the README
    (README.md, the project's front page), also named by ``traceduck search -h``.
    """
    store = _store()
    if experiment_ids is None and locations is None and _experiment.is_chosen():
        active = store.get_experiment_by_name(_experiment.current())
        experiment_ids = [active.experiment_id] if active and active.experiment_id else []
    return store.search_traces(
        filter_string,
        order_by,
        max_results,
        page_token,
        return_type,  # type: ignore[arg-type]
        include_spans,
        experiment_ids=experiment_ids,
        locations=locations,
    )


def get_trace(trace_id: str) -> Trace:
    """A finished trace by id or unique prefix, with its spans."""
    return _store().get_trace(trace_id)


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Put the traces that start from now on in this experiment (created if new); MLflow's call.

    >>> exp = td.set_experiment("prompt-v2")
    >>> exp.experiment_id
    '1'

    Tracing uses the experiment from this call on even if the store cannot be reached (then
    this raises ``StorageError`` after choosing it). ``experiment_id`` picks an existing one.
    """
    from ._config import current_db

    if (experiment_name is None) == (experiment_id is None):
        raise ConfigError("set_experiment takes an experiment_name or an experiment_id")
    path = current_db()  # configures the defaults first, so the choice below is the last word
    if experiment_id is not None:
        if path is None:
            raise ConfigError("no local store to look experiment ids up in (configure(db=None))")
        found = TraceStore(path).get_experiment(experiment_id)
        _experiment.choose(found.name)
        return found
    name = _experiment.check_name(experiment_name)
    _experiment.choose(name)
    if path is None:
        return Experiment(experiment_id=None, name=name)
    return TraceStore(path).get_or_create_experiment(name)


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment of that name in the default store, None if there is none."""
    return _store().get_experiment_by_name(name)


def set_trace_tag(
    trace_id: str, key: str, value: Any = True, exclusive: bool = False, append: bool = False
) -> None:
    """Set a tag on a finished trace; see ``TraceStore.set_trace_tag``."""
    _store().set_trace_tag(trace_id, key, value, exclusive, append)


def delete_trace_tag(trace_id: str, key: str) -> None:
    """Delete a tag from a finished trace (``TagError`` if it has none)."""
    _store().delete_trace_tag(trace_id, key)


def set_trace_tags(filter_string: str, tags: Mapping[str, Any] | Iterable[Any]) -> int:
    """Tag every trace matching a filter in one transaction; returns how many."""
    return _store().set_trace_tags(filter_string, tags)


def delete_trace_tags(filter_string: str, keys: Iterable[str] | str) -> int:
    """Delete tag keys from every trace matching a filter; returns how many lost a tag."""
    return _store().delete_trace_tags(filter_string, keys)


def delete_traces(
    filter_string: str | None = None,
    *,
    trace_ids: Iterable[str] | None = None,
    max_timestamp_millis: int | None = None,
    older_than: Any = None,
    max_traces: int | None = None,
) -> int:
    """Delete traces from the default store; returns how many (see ``TraceStore.delete_traces``).

    >>> td.delete_traces("tags.env = 'dev'")
    >>> td.delete_traces(older_than="30d")
    """
    return _store().delete_traces(
        filter_string,
        trace_ids=trace_ids,
        max_timestamp_millis=max_timestamp_millis,
        older_than=older_than,
        max_traces=max_traces,
    )


def register_tag(key: str, exclusive: bool = True, scope: str = "name") -> None:
    """Declare a tag key exclusive: one holder per scope ("name": same root name; "global")."""
    _store().register_tag(key, exclusive, scope)


def tag_history(trace_id: str) -> list[TagEvent]:
    """Every change of a trace's tags, oldest first."""
    return _store().tag_history(trace_id)


def metadata_history(trace_id: str) -> list[MetadataEvent]:
    """Every metadata entry of a trace, oldest first."""
    return _store().metadata_history(trace_id)


def log_metadata(metadata: Mapping[str, Any], trace_id: str | None = None) -> None:
    """Add metadata to the running trace, or to a finished one by id or unique prefix.

    >>> td.log_metadata({"eval": {"accuracy": 0.93}}, trace_id="3fa2")
    """
    if trace_id is None:
        update_current_trace(metadata=metadata)
        return
    _store().log_metadata(trace_id, metadata)


def sql(query: str, params: list[Any] | None = None) -> Any:
    """A read-only SQL query over the documented tables, as a pyarrow Table."""
    return _store().sql(query, params)
