"""Value objects returned by the query API: Trace, TraceInfo, Span, TagEvent, MetadataEvent."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

__all__ = ["Experiment", "MetadataEvent", "PagedList", "Span", "TagEvent", "Trace", "TraceInfo"]

T = TypeVar("T")


@dataclass(frozen=True)
class TraceInfo:
    """A finished trace's summary: one row of the ``traces`` table."""

    trace_id: str
    name: str | None
    status: str
    timestamp_ms: int
    execution_time_ms: float
    span_count: int
    tags: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    service_name: str | None = None
    request_preview: str | None = None
    response_preview: str | None = None
    status_message: str | None = None
    experiment_id: str = "0"  # MLflow's field: the id of the experiment (below) in this store
    experiment: str = "Default"  # the experiment's name

    @property
    def request_id(self) -> str:
        """MLflow's name for the trace id."""
        return self.trace_id


@dataclass(frozen=True)
class Span:
    """One span of a trace. ``inputs``/``outputs`` are the captured JSON values."""

    span_id: str
    parent_id: str | None
    name: str
    span_type: str
    status: str
    status_message: str | None
    start_time_ns: int
    end_time_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    inputs: Any = None
    outputs: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)
    trace_id: str = ""
    service_name: str | None = None

    @property
    def duration_ms(self) -> float:
        return (self.end_time_ns - self.start_time_ns) / 1e6


@dataclass(frozen=True)
class Trace:
    """A trace: its ``info`` and (when loaded) its ``spans``, parents before children."""

    info: TraceInfo
    spans: list[Span] = field(default_factory=list)

    @property
    def root(self) -> Span | None:
        ids = {s.span_id for s in self.spans}
        return next((s for s in self.spans if s.parent_id not in ids), None)

    def children(self, span_id: str) -> list[Span]:
        return [s for s in self.spans if s.parent_id == span_id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "info": dataclasses.asdict(self.info),
            "spans": [dataclasses.asdict(s) | {"duration_ms": s.duration_ms} for s in self.spans],
        }


@dataclass(frozen=True)
class TagEvent:
    """One change of one tag: ``operation`` is set, update, delete or moved."""

    time: datetime
    trace_id: str
    key: str
    old_value: Any
    new_value: Any
    operation: str
    source: str
    had_old: bool = True
    has_new: bool = True

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> TagEvent:
        """From (time, trace_id, key, old JSON text, new JSON text, operation, source), as
        both engines' histories read it (None text: no old value / deleted)."""
        time, trace_id, key, old, new, operation, source = row
        return cls(
            time=time,
            trace_id=trace_id,
            key=key,
            old_value=None if old is None else json.loads(old),
            new_value=None if new is None else json.loads(new),
            operation=operation,
            source=source,
            had_old=old is not None,
            has_new=new is not None,
        )


@dataclass(frozen=True)
class MetadataEvent:
    """One metadata entry (metadata is append-only)."""

    time: datetime
    trace_id: str
    key: str
    value: Any
    source: str


@dataclass(frozen=True)
class Experiment:
    """An experiment, MLflow's grouping of traces: every trace belongs to one ("Default", id
    "0", unless ``td.set_experiment`` chose another). Ids are assigned by the store in order of
    creation ("1", "2", ...), as MLflow's SQL stores do."""

    experiment_id: str | None  # None only when no local store was there to give one
    name: str
    creation_time: int | None = None  # ms since the epoch
    lifecycle_stage: str = "active"


class PagedList(list[T], Generic[T]):
    """A page of results; ``token`` fetches the next page (``None`` on the last page)."""

    def __init__(self, items: list[T], token: str | None) -> None:
        super().__init__(items)
        self.token = token
