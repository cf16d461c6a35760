"""``RedactingExporter``: the one place where spans are scrubbed, in front of every exporter.

It runs in the span processor's export thread, before the DuckDB exporter, the OTLP fan-out (and
any store added later) see a batch, so nothing leaves the process unscrubbed and the caller's
thread pays nothing. For each span it scrubs, with the configured ``_redact.Redactor``:

- what traceduck keeps beside the span in ``_runtime.STASH`` (captured inputs and outputs,
  attributes set through traceduck) and, for a local root, the trace's live tags and metadata
  in ``_context.REGISTRY``: in place, as they are ours;
- the SDK span's attributes, event attributes (exception messages and stack traces), link
  attributes and status description: the span itself is never changed (the application's other
  span processors share it); a span with something scrubbed is handed on as a copy.

A redactor that fails on a span (a bug) costs that span its data, never its secrecy: the span
goes on without attributes, events, status description, inputs, outputs, tags or metadata.

The automatic labels (the context, ``traceduck run``'s tags and metadata) are added by each
exporter as it converts a root, after this one ran: ``AutoLabels`` passes them through
``redact_labels`` as it hands them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from .. import _json, _redact, _runtime
from .._capture import _bind
from .._context import REGISTRY, TraceState
from ._ended import (
    ATTRIBUTE_KEYS,
    DESCRIPTION,
    EVENTS,
    EXTRA,
    IS_ROOT,
    OUTPUTS,
    SPAN_TYPE,
    TRACE_ID,
    EndedSpan,
    attributes,
    deferred_inputs,
    forget,
    with_attributes,
    with_fields,
)

__all__ = [
    "RedactingExporter",
    "redact_labels",
    "redact_row",
    "redact_rows",
    "redact_span",
    "redact_spans",
]

_ATTRIBUTE_TYPES = (str, bool, int, float)
_SCALARS = frozenset({int, float, bool, type(None)})
_stash_get = _runtime.STASH.get
_NAMES = ("context", "parent", "attributes", "events", "links", "status")
# The SDK's ReadableSpan keeps each property in a field named with a "_" before it: one C-level
# getter reads them all (each property is a Python call, and ``attributes`` makes a proxy).
_PRIVATE = attrgetter(*(f"_{name}" for name in _NAMES))
_PUBLIC = attrgetter(*_NAMES)


def _fields(span: ReadableSpan) -> tuple[Any, ...]:
    try:
        return _PRIVATE(span)
    except AttributeError:
        return _PUBLIC(span)


class RedactingExporter(SpanExporter):
    """Scrubs each span of a batch (``configure(redact=...)``), then exports via ``inner``;
    flushes and shuts down through it, and answers any other attribute from it (the span
    processor reads the store exporter's ``dropping`` and ``last_error``)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    @property
    def takes_rows(self) -> bool:
        """Whether ``export_rows`` may be used: the exporter behind takes EndedSpans."""
        return bool(getattr(self.inner, "takes_rows", False))

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export(redact_spans(spans))

    def export_rows(self, spans: Sequence[EndedSpan]) -> SpanExportResult:
        return self.inner.export_rows(redact_rows(spans))  # type: ignore[attr-defined]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def redact_spans(spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
    """``spans`` scrubbed with the rules in force (as they are when redaction is off)."""
    redactor = _redact.active()
    if redactor is None:
        return spans
    return [redact_span(redactor, span) for span in spans]


def redact_span(redactor: _redact.Redactor, span: ReadableSpan) -> ReadableSpan:
    """``span`` scrubbed (itself, or a copy if its own fields changed); never raises."""
    try:
        return _scrub(redactor, span)
    except Exception as exc:
        _runtime.report_internal_error("redaction", exc)
        return _bare(span)


def redact_rows(spans: Sequence[EndedSpan]) -> Sequence[EndedSpan]:
    """Ended spans scrubbed with the rules in force (as they are when redaction is off)."""
    redactor = _redact.active()
    if redactor is None:
        return spans
    return [redact_row(redactor, span) for span in spans]


def redact_row(redactor: _redact.Redactor, span: EndedSpan) -> EndedSpan:
    """An ended span scrubbed (itself, or a copy if anything changed); never raises. One that
    cannot be scrubbed goes on with nothing that could hold a secret."""
    try:
        return _scrub_row(redactor, span)
    except Exception as exc:
        _runtime.report_internal_error("redaction", exc)
        forget(span)  # its trace's live labels, unscrubbed
        return with_fields(
            span,
            attribute_keys=None,
            attribute_values=None,
            events=(),
            description=None,
            extra=None,
            input_names=None,
            inputs=None,
            input_kwargs=None,
            outputs=None,
        )


def _scrub_row(r: _redact.Redactor, span: EndedSpan) -> EndedSpan:
    changes: dict[str, Any] = {}
    inputs = deferred_inputs(span)
    if inputs is not None or span[EXTRA] or span[OUTPUTS] is not None:
        record = [span[SPAN_TYPE], span[EXTRA], inputs, span[OUTPUTS]]
        _scrub_record(r, record)
        if record[1] is not span[EXTRA]:
            changes["extra"] = record[1]
        if record[3] is not span[OUTPUTS]:
            changes["outputs"] = record[3]
        if record[2] is not inputs:  # scrubbed: whole, no longer deferred
            changes.update(input_names=None, inputs=record[2], input_kwargs=None)
    if span[IS_ROOT] and REGISTRY.states:
        state = REGISTRY.states.get(span[TRACE_ID])
        if state is not None:
            _scrub_state(r, state)
    if span[ATTRIBUTE_KEYS]:
        new = _attributes(r, ("attributes",), attributes(span))
        if new is not None:
            span = with_attributes(span, new)
    events = span[EVENTS]
    if events:
        new_events = _events(r, events)
        if new_events is not None:
            changes["events"] = tuple(new_events)
    description = span[DESCRIPTION]
    if description:
        scrubbed = _leaf(r, ("status_message",), description)
        if scrubbed != description:
            changes["description"] = str(scrubbed)
    return with_fields(span, **changes) if changes else span


def _events(r: _redact.Redactor, events: Sequence[Event]) -> list[Event] | None:
    """Events with their attributes scrubbed, or None when nothing changed."""
    new_events = None
    for i, event in enumerate(events):
        scrubbed = _attributes(r, ("events", i), event.attributes)
        if scrubbed is not None:
            if new_events is None:
                new_events = list(events)
            new_events[i] = Event(event.name, scrubbed, event.timestamp)
    return new_events


def _scrub(r: _redact.Redactor, span: ReadableSpan) -> ReadableSpan:
    ctx, parent, attributes, events, links, status = _fields(span)
    record = _stash_get(ctx.span_id)
    if record is not None:
        _scrub_record(r, record)
    if (parent is None or parent.is_remote) and REGISTRY.states:
        state = REGISTRY.states.get(ctx.trace_id)
        if state is not None:
            _scrub_state(r, state)
    # The SDK keeps a plain dict in its BoundedAttributes and a deque in its BoundedList, whose
    # own __len__ (for a truth test) is a Python call.
    plain = getattr(attributes, "_dict", attributes)
    new_attributes = _attributes(r, ("attributes",), plain) if plain else None
    events = getattr(events, "_dq", events)
    new_events = _events(r, events) if events else None
    links = getattr(links, "_dq", links)
    new_links = None
    if links:
        for i, link in enumerate(links):
            scrubbed = _attributes(r, ("links", i), link.attributes)
            if scrubbed is not None:
                if new_links is None:
                    new_links = list(links)
                new_links[i] = Link(link.context, scrubbed)
    new_status = None
    description = status.description
    if description:
        scrubbed = _leaf(r, ("status_message",), description)
        if scrubbed != description:
            new_status = Status(status.status_code, str(scrubbed))
    if new_attributes is None and new_events is None and new_links is None and new_status is None:
        return span
    return _copy(
        span,
        attributes if new_attributes is None else new_attributes,
        events if new_events is None else new_events,
        links if new_links is None else new_links,
        status if new_status is None else new_status,
    )


def _scrub_record(r: _redact.Redactor, record: list[Any]) -> None:
    """The stash record [span type, attributes, deferred inputs, deferred outputs], in place."""
    _, extra, inputs, outputs = record
    if r.func is None:
        if extra:
            record[1] = r.value(extra)
        if inputs is not None:
            record[2] = r.inputs(inputs)
        if outputs is not None and type(outputs) not in _SCALARS:
            record[3] = r.value(outputs)
        return
    if extra:
        record[1] = {k: r.leaves(("attributes", k), v) for k, v in extra.items()}
    if inputs is not None:
        if type(inputs) is tuple:  # the deferred (names, args, kwargs) form
            inputs = _bind(*inputs)
        record[2] = r.leaves(("inputs",), inputs)
    if outputs is not None:
        record[3] = r.leaves(("outputs",), outputs)


def _scrub_state(r: _redact.Redactor, state: TraceState) -> None:
    """A trace's live tags and metadata entries, in place."""
    if r.func is not None:
        state.tags = {k: r.leaves(("tags", k), v) for k, v in state.tags.items()}
    elif state.tags:
        state.tags = r.value(state.tags)
    state.metadata = _entries(r, state.metadata)


def _entries(r: _redact.Redactor, entries: list[tuple[str, Any, int]]) -> list[Any]:
    """Metadata entries (key, value, timestamp) scrubbed (the same list if nothing changed)."""
    if r.func is not None:
        return [(k, r.leaves(("metadata", k), v), ts) for k, v, ts in entries]
    out = entries
    for i, (key, value, ts) in enumerate(entries):
        # The automatic context is one dict shared by every trace of the process.
        new = r.shared(value) if key == "context" else r.keyed(key, value)
        if new is not value:
            if out is entries:
                out = list(entries)
            out[i] = (key, new, ts)
    return out


def redact_labels(
    entries: list[tuple[str, Any, int]], tags: dict[str, Any]
) -> tuple[list[tuple[str, Any, int]], dict[str, Any]]:
    """Automatic metadata entries and tags, scrubbed with the configured rules (as they are
    when redaction is off). Never raises: what cannot be scrubbed is left out."""
    r = _redact.active()
    if r is None or not (entries or tags):
        return entries, tags
    try:
        if r.func is not None:
            tags = {k: r.leaves(("tags", k), v) for k, v in tags.items()}
        elif tags:
            tags = r.value(tags)
        return _entries(r, entries), tags
    except Exception as exc:
        _runtime.report_internal_error("redaction", exc)
        return [], {}


def _attributes(r: _redact.Redactor, path: tuple[Any, ...], attributes: Any) -> Any:
    """OTel attributes scrubbed, or None when nothing changed."""
    plain = attributes
    if type(plain) is not dict:
        plain = getattr(attributes, "_dict", None)  # the SDK's BoundedAttributes keeps a dict
        if type(plain) is not dict:
            plain = dict(attributes) if isinstance(attributes, Mapping) else {}
    if not plain:
        return None
    if r.func is None:
        new = r.value(plain)
        return None if new is plain else new
    out: dict[str, Any] = {}
    changed = False
    for key, value in plain.items():
        new = _attribute_value(r.leaves((*path, key), value))
        changed = changed or new != value
        if new is not None:
            out[key] = new
    return out if changed else None


def _attribute_value(value: Any) -> Any:
    """What a redact callable returned, as an OTel attribute value (None: leave it out)."""
    if value is None or isinstance(value, _ATTRIBUTE_TYPES):
        return value
    if isinstance(value, (list, tuple)) and value:
        kind = type(value[0])
        if kind in _ATTRIBUTE_TYPES and all(type(v) is kind for v in value):
            return tuple(value)
    return _json.dumps_lenient(value)


def _leaf(r: _redact.Redactor, path: tuple[Any, ...], text: str) -> Any:
    return r.text(text) if r.func is None else r.leaves(path, text)


def _bare(span: ReadableSpan) -> ReadableSpan:
    """``span`` with nothing that could hold a secret (after a failure to scrub it)."""
    try:
        forget(span)  # its stash record and its trace's live labels, unscrubbed
        return _copy(span, {}, (), (), Status(span.status.status_code))
    except Exception as exc:
        _runtime.report_internal_error("redaction fallback", exc)
        return span


def _copy(
    span: ReadableSpan, attributes: Any, events: Sequence[Event], links: Any, status: Status
) -> ReadableSpan:
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
