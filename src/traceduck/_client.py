"""``MlflowClient``: MLflow's client methods for traces and experiments, over a traceduck store.

MLflow's tracing docs use both the fluent calls (``mlflow.search_traces``) and the client
(``MlflowClient().set_trace_tag(trace_id=..., key=..., value=...)``); with
``import traceduck as mlflow`` and ``from traceduck import MlflowClient`` the same code runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import ConfigError, FilterError, TraceduckError
from .model import Experiment, PagedList, Trace
from .store import TraceStore

__all__ = ["MlflowClient"]


class MlflowClient:
    """A client over the default store (``tracking_uri``: another store's path), with MLflow's
    method names and argument names.

    >>> client = MlflowClient()
    >>> for trace in client.search_traces(experiment_ids=["1"], filter_string="status = 'ERROR'"):
    ...     client.set_trace_tag(trace_id=trace.info.trace_id, key="needs_review", value="true")
    """

    def __init__(self, tracking_uri: str | None = None) -> None:
        if tracking_uri is not None and tracking_uri.startswith(("http://", "https://")):
            raise ConfigError(
                f"{tracking_uri!r} is an MLflow server; traceduck's MlflowClient reads a "
                "traceduck store: pass its path (or nothing, for the default store)"
            )
        self.tracking_uri = tracking_uri

    def __repr__(self) -> str:
        return f"MlflowClient({self.tracking_uri!r})"

    def _store(self) -> TraceStore:
        if self.tracking_uri is not None:
            return TraceStore(self.tracking_uri)
        from . import _store

        return _store()

    # -- traces -------------------------------------------------------------------------------

    def search_traces(
        self,
        experiment_ids: Iterable[str] | None = None,
        filter_string: str | None = None,
        max_results: int | None = 100,
        order_by: list[str] | None = None,
        page_token: str | None = None,
        include_spans: bool = True,
        locations: Iterable[str] | None = None,
    ) -> PagedList[Trace]:
        """One page of traces (``.token`` fetches the next), MLflow's argument order; with no
        ``experiment_ids`` or ``locations``, traces of every experiment."""
        return self._store().search_traces(
            filter_string,
            order_by,
            max_results,
            page_token,
            "list",
            include_spans,
            experiment_ids=experiment_ids,
            locations=locations,
        )

    def get_trace(self, trace_id: str) -> Trace:
        return self._store().get_trace(trace_id)

    def set_trace_tag(self, trace_id: str, key: str, value: Any) -> None:
        self._store().set_trace_tag(trace_id, key, value)

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        self._store().delete_trace_tag(trace_id, key)

    def delete_traces(
        self,
        experiment_id: str,
        max_timestamp_millis: int | None = None,
        max_traces: int | None = None,
        trace_ids: list[str] | None = None,
    ) -> int:
        """Delete traces of one experiment (older than ``max_timestamp_millis``, at most
        ``max_traces``, or those ``trace_ids``); returns how many. Without a cutoff or ids it
        is a ``FilterError``, as MLflow refuses it, never the whole experiment."""
        if max_timestamp_millis is None and not trace_ids:
            raise FilterError(
                "delete_traces needs max_timestamp_millis or trace_ids (as in MLflow); to delete "
                "the whole experiment, give max_timestamp_millis=time.time_ns() // 1_000_000"
            )
        store = self._store()
        delete = getattr(store, "delete_traces", None)
        if delete is None:
            raise TraceduckError("this traceduck cannot delete traces yet")
        quoted = str(experiment_id).replace("'", "''")
        result: int = delete(
            f"experiment_id = '{quoted}'",
            trace_ids=trace_ids,
            max_timestamp_millis=max_timestamp_millis,
            max_traces=max_traces,
        )
        return result

    # -- experiments --------------------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Any = None
    ) -> str:
        """A new experiment's id (``ConfigError`` if the name is taken). traceduck keeps no
        artifacts or experiment tags: those two arguments are accepted and not kept."""
        return self._store().create_experiment(name)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._store().get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._store().get_experiment_by_name(name)

    def search_experiments(self) -> list[Experiment]:
        """Every experiment, Default ("0") first."""
        return self._store().search_experiments()
