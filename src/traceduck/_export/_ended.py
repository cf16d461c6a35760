"""An ended span as one plain tuple: the fields traceduck's stores keep of it, and nothing else.

The span processor takes this tuple from an SDK span in ``on_end``, in the caller's thread, and
queues the tuple instead of the span. The span's objects (its context, status, bounded
attribute dict and event list, lock, links...) then die at once, in the thread that made them,
instead of waiting in the queue long enough for Python's cyclic GC to move them into its oldest
generation, where each of them makes every later full collection longer (a tight traced loop
spent a third of its time in the GC that way). The tuple holds plain values only, so the GC
soon stops tracking it (see ``FIELDS``).

The tuple also carries what traceduck keeps beside the span in ``_runtime.STASH`` (its type,
attributes set through traceduck, deferred inputs and outputs), taken out of the stash here.
Reading the span and its stash entry costs the caller's thread about a microsecond.
"""

from __future__ import annotations

from itertools import chain
from operator import attrgetter
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from .. import _runtime
from .._context import REGISTRY

# Positions in an EndedSpan. The GC stops tracking a tuple only when it holds no object that
# may refer to others except tuples it stopped tracking already; a dict, even an empty one, or an
# enum member keeps it tracked for ever. So the attributes and keyword arguments are tuples,
# the Resource a key and enum members their names, and nothing is nested more than two tuples
# deep: the GC stops tracking the tuple of a plain call (scalar arguments, no attributes) at
# its first collection of the middle generation, before it could reach the oldest one, even
# while the span waits in a full queue.
FIELDS = (
    "trace_id",  # int
    "span_id",  # int
    "parent_id",  # int, None for a true root
    "is_root",  # a local root: no parent, or a remote one
    "name",
    "kind",  # the SpanKind's name ("INTERNAL", ...)
    "start",  # unix ns (0 when unknown)
    "end",
    "failed",  # the status is ERROR
    "description",  # the status description, or None
    "resource",  # a key for ``resource()``: the provider's Resource, shared by its spans
    "attribute_keys",  # a tuple, None when there are no attributes
    "attribute_values",  # a tuple, in the order of the keys
    "events",  # a tuple of SDK Events, () when none
    # what traceduck stashed beside the span (``_runtime.STASH``), or None each:
    "span_type",
    "extra",  # attributes set through traceduck (a dict)
    "input_names",  # parameter names of deferred inputs; None: ``inputs`` holds them whole
    "inputs",  # the positional values of deferred inputs, or the captured inputs
    "input_kwargs",  # keyword arguments of deferred inputs (name, value, name, value...), or None
    "outputs",
)
(
    TRACE_ID, SPAN_ID, PARENT_ID, IS_ROOT, NAME, KIND, START, END, FAILED, DESCRIPTION,
    RESOURCE, ATTRIBUTE_KEYS, ATTRIBUTE_VALUES, EVENTS, SPAN_TYPE, EXTRA, INPUT_NAMES, INPUTS,
    INPUT_KWARGS, OUTPUTS,
) = range(len(FIELDS))  # fmt: skip

EndedSpan = tuple[Any, ...]

_FIELDS = ("context", "parent", "name", "kind", "start_time", "end_time", "status", "resource")
# The SDK's ReadableSpan keeps each public property in a field of the same name with "_" before
# it; one C-level getter reads all of them (each property costs a Python call). A span of
# another class, without those fields, is read through its properties.
_PRIVATE = attrgetter(*(f"_{f}" for f in _FIELDS), "_attributes", "_events")
_PUBLIC = attrgetter(*_FIELDS, "attributes", "events")
_stash_pop = _runtime.STASH.pop
_ERROR = StatusCode.ERROR
_NO_RECORD = (None, None, None, None, None, None)
# Resources by key (their id): a process has a provider or a few, so this stays small; an entry
# keeps its Resource alive, so a key never names another one.
_RESOURCES: dict[int, Any] = {}


def ended(span: ReadableSpan) -> EndedSpan:
    """The EndedSpan of an SDK span (of any ReadableSpan), its stash record taken along."""
    try:
        ctx, parent, name, kind, start, end, status, res, attrs, events = _PRIVATE(span)
    except AttributeError:
        ctx, parent, name, kind, start, end, status, res, attrs, events = _PUBLIC(span)
    span_id = ctx[1]  # SpanContext is a tuple: indexing skips its Python-level properties
    record = _stash_pop(span_id, None)
    if record is None:
        stashed: tuple[Any, ...] = _NO_RECORD
    else:
        span_type, extra, inputs, outputs = record
        if type(inputs) is tuple:  # the deferred (names, args, kwargs) of ``snapshot_args``
            names, args, kwargs = inputs
            # keyword arguments flat, name, value, name, value...: a tuple of pairs would nest
            pairs = tuple(chain.from_iterable(kwargs.items())) if kwargs else None
            stashed = (span_type, extra, names, args, pairs, outputs)
        else:
            stashed = (span_type, extra, None, inputs, None, outputs)
    key = id(res)
    if key not in _RESOURCES:
        _RESOURCES[key] = res
    # The SDK's BoundedAttributes and BoundedList keep an OrderedDict and a deque
    attrs = getattr(attrs, "_dict", attrs)
    events = getattr(events, "_dq", events)
    if attrs:
        keys: tuple[str, ...] | None = tuple(attrs)
        values: tuple[Any, ...] | None = tuple(attrs.values())
    else:
        keys = values = None
    return (
        ctx[0],
        span_id,
        parent[1] if parent is not None else None,
        parent is None or parent[2],
        name,
        kind._name_,  # the enum member's own field: ``.name`` is a Python-level property
        start or 0,
        end or start or 0,
        status.status_code is _ERROR,
        status.description,
        key,
        keys,
        values,
        tuple(events) if events else (),
        *stashed,
    )


def forget(span: ReadableSpan | EndedSpan) -> bool:
    """Let go of what traceduck keeps for a span that is dropped: its stash record (an ended
    span carries it already) and, for a local root, its trace's live labels. Whether the span
    was a local root."""
    if type(span) is tuple:
        is_root, trace_id = span[IS_ROOT], span[TRACE_ID]
    else:
        ctx = span.context  # type: ignore[union-attr]
        _stash_pop(ctx.span_id, None)
        parent = span.parent  # type: ignore[union-attr]
        is_root, trace_id = parent is None or parent.is_remote, ctx.trace_id
    if is_root:
        REGISTRY.pop(trace_id)
    return bool(is_root)


def resource(span: EndedSpan) -> Any:
    """The Resource of an ended span's provider."""
    return _RESOURCES.get(span[RESOURCE])


def deferred_inputs(span: EndedSpan) -> Any:
    """The captured inputs as ``encode_inputs`` takes them (None when none were captured)."""
    names = span[INPUT_NAMES]
    if names is None:
        return span[INPUTS]
    return (names, span[INPUTS], kwargs_of(span[INPUT_KWARGS]))


def kwargs_of(flat: tuple[Any, ...] | None) -> dict[str, Any]:
    """Keyword arguments from their flat form (name, value, name, value...)."""
    return dict(zip(flat[::2], flat[1::2])) if flat else {}


def attributes(span: EndedSpan) -> dict[str, Any]:
    """The span's attributes, as a new dict."""
    keys = span[ATTRIBUTE_KEYS]
    return dict(zip(keys, span[ATTRIBUTE_VALUES])) if keys else {}


def with_attributes(span: EndedSpan, attrs: dict[str, Any]) -> EndedSpan:
    """A copy of ``span`` with other attributes."""
    if not attrs:
        return with_fields(span, attribute_keys=None, attribute_values=None)
    return with_fields(span, attribute_keys=tuple(attrs), attribute_values=tuple(attrs.values()))


def with_fields(span: EndedSpan, **fields: Any) -> EndedSpan:
    """A copy of ``span`` with some fields replaced, by name (``attributes=...``)."""
    values = list(span)
    for name, value in fields.items():
        values[_POSITION[name]] = value
    return tuple(values)


_POSITION = {name: i for i, name in enumerate(FIELDS)}
