"""The running trace's pending tags and metadata, held in-process until its local root ends.

Tags and metadata set while a trace runs (``update_current_trace``, ``@trace(tags=...)``) are kept
per trace id, typed, and handed to the exporter with the root span; the exporter also writes
them as ``traceduck.tag.*`` / ``traceduck.metadata.*`` attributes for OTLP backends. Nothing here
raises into user code: misuse is a warning pointing at the caller's line.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace as otel_trace

from . import _json, _runtime
from ._capture import snapshot
from .errors import TagError
from .store import _tagrules

__all__ = ["Tag", "get_current_trace_id", "get_last_trace_id", "update_current_trace"]

MAX_LIVE_TRACES = 100_000
logger = logging.getLogger("traceduck")


@dataclass(frozen=True)
class Tag:
    """A tag where a tag list is taken: ``Tag("latest", exclusive=True)``, ``Tag("env", "prod")``.

    ``exclusive``: at most one trace per scope holds the key (scope: traces with the same root
    name, or ``scope="global"``). ``cascade``: also stamped on every span started under the one
    where it is set, and carried in W3C baggage to downstream work.
    """

    key: str
    value: Any = True
    exclusive: bool = False
    cascade: bool = False
    scope: str = "name"


@dataclass
class TraceState:
    tags: dict[str, Any] = field(default_factory=dict)
    exclusive: dict[str, str] = field(default_factory=dict)
    metadata: list[tuple[str, Any, int]] = field(default_factory=list)


class _Registry:
    """trace id (int) -> TraceState, bounded: the oldest states go first if traces never end."""

    def __init__(self) -> None:
        self.states: dict[int, TraceState] = {}
        self.lock = threading.Lock()
        self.evicted = 0

    def get(self, trace_id: int) -> TraceState:
        with self.lock:
            state = self.states.get(trace_id)
            if state is None:
                if len(self.states) >= MAX_LIVE_TRACES:
                    self.states.pop(next(iter(self.states)))
                    self.evicted += 1
                state = self.states[trace_id] = TraceState()
            return state

    def pop(self, trace_id: int) -> TraceState | None:
        if not self.states:  # fast path: nothing was ever tagged
            return None
        with self.lock:
            return self.states.pop(trace_id, None)


REGISTRY = _Registry()
# The last local root to end, by trace id (an int: a tight loop ends one per call, and the
# text is made only when asked for).
_last_trace_id: list[int | None] = [None]


def _new_registry_lock() -> None:
    REGISTRY.lock = threading.Lock()  # another thread may have held it at the fork


_runtime.after_fork_in_child(_new_registry_lock)


def normalize_tags(tags: Any) -> list[Tag]:
    """Tags given as a dict, a list of names / Tag objects / dicts, or one Tag; validated."""
    if tags is None:
        return []
    if isinstance(tags, (Tag, str)):
        tags = [tags]
    items: list[Tag] = []
    if isinstance(tags, Mapping):
        items = [Tag(k, v) for k, v in tags.items()]
    elif isinstance(tags, Iterable):
        for item in tags:
            if isinstance(item, Tag):
                items.append(item)
            elif isinstance(item, str):
                items.append(Tag(item))
            elif isinstance(item, Mapping):
                items.extend(Tag(k, v) for k, v in item.items())
            else:
                raise TagError(f"a tag is a name, a dict or traceduck.Tag, not {item!r}")
    else:
        raise TagError(f"tags must be a dict, a list of names or Tag objects, not {tags!r}")
    for tag in items:
        _tagrules.check_key(tag.key)
        _tagrules.encode_value(tag.value, tag.key)
        if tag.exclusive:
            _tagrules.check_scope(tag.scope)
    return items


def apply_tags(trace_id: int, tags: list[Tag]) -> None:
    """Set validated tags on the live trace ``trace_id`` (last value per key wins)."""
    state = REGISTRY.get(trace_id)
    for tag in tags:
        state.tags[tag.key] = tag.value
        if tag.exclusive:
            state.exclusive[tag.key] = tag.scope


def _current_trace_int() -> int | None:
    ctx = otel_trace.get_current_span().get_span_context()
    return ctx.trace_id if ctx.is_valid else None


def update_current_trace(
    tags: Any = None, metadata: Mapping[str, Any] | None = None, **_ignored: Any
) -> None:
    """Add tags and metadata to the running trace.

    >>> @trace
    ... def handle(request):
    ...     update_current_trace(tags={"env": "prod", "cost": 3.2}, metadata={"user": "u1"})

    Tags: a dict, or a list of label names (``"reviewed"`` means ``reviewed = true``) and
    ``Tag`` objects; values are any JSON value and keep their type; the last value per key
    wins. Metadata is append-only: one entry per top-level key, the latest shown. Outside a
    trace, or with a bad key or value, this warns and does nothing: it never raises.
    """
    try:
        span = otel_trace.get_current_span()
        span_context = span.get_span_context()
        if not span_context.is_valid:
            _warn("update_current_trace() called outside a trace; nothing was recorded")
            return
        trace_id = span_context.trace_id
        items = normalize_tags(tags)
        entries = _metadata_entries(metadata)
        cascade = [tag for tag in items if tag.cascade]
        if cascade:  # carried in baggage even when this trace is not recorded
            from . import _cascade

            _cascade.stamp_current(span, cascade)
        if not (_runtime.collecting and span.is_recording()):
            return  # sampled out, or no exporter: nothing to attach them to
        if items:
            apply_tags(trace_id, items)
        if entries:
            REGISTRY.get(trace_id).metadata.extend(entries)
    except TagError as exc:
        _warn(f"update_current_trace(): {exc}; nothing was recorded")
    except Exception as exc:  # never into user code
        _warn(f"update_current_trace() failed inside traceduck: {exc!r}")


def _metadata_entries(metadata: Mapping[str, Any] | None) -> list[tuple[str, Any, int]]:
    if metadata is None:
        return []
    if not isinstance(metadata, Mapping):
        raise TagError(f"metadata must be a dict, not {type(metadata).__name__}")
    now = time.time_ns()
    return [(key, storable_metadata(key, value), now) for key, value in metadata.items()]


def storable_metadata(key: object, value: Any) -> Any:
    """A live metadata entry's value as stored, its key checked: the value as it is when JSON
    holds it, else a JSON-safe snapshot (NaN and infinity as their text, a value JSON cannot
    hold as its repr); TagError for a bad key or a value over the size limit (as a tag's, and
    as the store's ``log_metadata``). Metadata from this process and from any SDK through the
    collector go through here."""
    _tagrules.check_key(key, "metadata")
    try:
        text = _json.dumps(value)
    except (TypeError, ValueError):
        value = snapshot(value)
        if isinstance(value, float):  # a bare NaN or infinity stays a float: its text
            value = repr(value)
        _tagrules.encode_value(value, str(key), "metadata")
        return value
    _tagrules.check_size(text, str(key), "metadata")
    return value


def get_current_trace_id() -> str | None:
    """The running trace's id (32 hex chars), or None outside a trace."""
    trace_id = _current_trace_int()
    return None if trace_id is None else format(trace_id, "032x")


def get_last_trace_id() -> str | None:
    """The id of the last trace that finished in this process (any thread), or None."""
    trace_id = _last_trace_id[0]
    return None if trace_id is None else format(trace_id, "032x")


def _warn(message: str) -> None:
    try:
        warnings.warn(message, TraceduckWarning, stacklevel=3)
    except Exception:  # warnings turned into errors (-W error) must still not reach the app
        logger.warning(message)


class TraceduckWarning(UserWarning):
    """Misuse of the tracing API: reported, never raised."""
