"""The span object users touch (``start_span``, ``get_current_span``) over an OTel span."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import Status, StatusCode

from . import _runtime
from ._capture import snapshot
from ._context import _last_trace_id
from ._exception import cut, is_failure, record_error

__all__ = ["LiveSpan", "get_current_span", "start_span"]


class LiveSpan:
    """A running span: set inputs/outputs, attributes, status and events. Never raises."""

    __slots__ = ("_record", "otel_span")

    def __init__(self, otel_span: otel_trace.Span, record: list[Any]) -> None:
        self.otel_span = otel_span
        self._record = record

    @property
    def span_id(self) -> str:
        return format(self.otel_span.get_span_context().span_id, "016x")

    @property
    def trace_id(self) -> str:
        return format(self.otel_span.get_span_context().trace_id, "032x")

    def set_inputs(self, inputs: Any) -> None:
        self._guard("set_inputs", lambda: self._record.__setitem__(2, snapshot(inputs)))

    def set_outputs(self, outputs: Any) -> None:
        self._guard("set_outputs", lambda: self._record.__setitem__(3, snapshot(outputs)))

    def set_attribute(self, key: str, value: Any) -> None:
        self.set_attributes({key: value})

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        def run() -> None:
            extra = self._record[1]
            self._record[1] = dict(extra or {}) | attribute_dict(attributes)

        self._guard("set_attributes", run)

    def set_span_type(self, span_type: str) -> None:
        self._guard("set_span_type", lambda: self._record.__setitem__(0, str(span_type)))

    def set_status(self, status: str, description: str | None = None) -> None:
        def run() -> None:
            code = {"OK": StatusCode.OK, "ERROR": StatusCode.ERROR}.get(str(status).upper())
            if code is None:
                raise ValueError(f"status must be 'OK' or 'ERROR', not {status!r}")
            text = None
            if code is StatusCode.ERROR and description is not None:
                text = cut(description if type(description) is str else str(description))
            self.otel_span.set_status(Status(code, text))

        self._guard("set_status", run)

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        def run() -> None:
            # an event's name and attribute keys as text: anything else costs the span at export
            attrs = {str(k): _attr_value(v) for k, v in (attributes or {}).items()}
            self.otel_span.add_event(name if type(name) is str else str(name), attrs)

        self._guard("add_event", run)

    def record_exception(self, exc: BaseException) -> None:
        self._guard("record_exception", lambda: record_error(self.otel_span, exc))

    def _guard(self, what: str, fn: Any) -> None:
        try:
            fn()
        except Exception as exc:
            _runtime.report_internal_error(f"span.{what}", exc)

    def __repr__(self) -> str:
        return f"<LiveSpan {getattr(self.otel_span, 'name', '?')} {self.span_id}>"


def attribute_dict(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes as recorded: keys as text (a tuple key cannot be encoded at export, which
    would cost the span), values snapshotted."""
    return {k if type(k) is str else str(k): snapshot(v) for k, v in attributes.items()}


def _attr_value(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    from . import _json

    return _json.dumps_lenient(snapshot(value))


def new_record(span_type: str | None, attributes: dict[str, Any] | None) -> list[Any]:
    return [span_type, attributes, None, None]


def register(span: otel_trace.Span, record: list[Any]) -> None:
    stash = _runtime.STASH
    stash[span.get_span_context().span_id] = record
    if len(stash) > _runtime.MAX_STASH:
        _runtime.trim_stash()


@contextmanager
def start_span(
    name: str = "span",
    span_type: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[LiveSpan]:
    """A span around a block; it joins the running trace or starts one.

    >>> with start_span("retrieve", span_type="RETRIEVER") as span:
    ...     span.set_inputs({"query": "duck"})
    ...     span.set_outputs(["doc1"])

    An exception in the block is recorded (ERROR status, exception event) and re-raised as is.
    With ``TRACEDUCK_DISABLED=1`` the span records nothing, as ``@trace`` does.
    """
    from ._config import ensure_configured

    span: otel_trace.Span | None = None
    started = False
    if not _runtime.enabled:
        yield LiveSpan(otel_trace.INVALID_SPAN, new_record(None, None))
        return
    try:
        tracer = _runtime.tracer or ensure_configured()
        attrs = attribute_dict(attributes or {}) or None
        parent = otel_context.get_current()  # once, not again in the SDK and our processor
        span = tracer.start_span(str(name), parent)
        record = new_record(span_type, attrs)
        if _runtime.collecting and span.is_recording():
            register(span, record)
        token = otel_context.attach(otel_trace.set_span_in_context(span, parent))
        started = True
    except Exception as exc:
        _runtime.report_internal_error("start_span", exc)
        if span is not None:
            span.end()
    if not started:  # outside the except block: the user's errors get no __context__
        yield LiveSpan(otel_trace.INVALID_SPAN, new_record(None, None))
        return
    try:
        yield LiveSpan(span, record)
    except BaseException as exc:
        fail_span(span, exc, "start_span")
        raise
    finally:
        end_span(span, token, "start_span end")


def fail_span(span: Any, exc: BaseException, where: str) -> None:
    """Record ``exc`` on ``span`` when it is a failure (not a generator's close, nor
    ``sys.exit()``: see ``is_failure``); a failure of our own is reported as ``where``."""
    if not is_failure(exc):
        return
    try:
        record_error(span, exc)
    except Exception as inner:
        _runtime.report_internal_error(where, inner)


def end_span(span: Any, token: Any, where: str) -> None:
    """Detach ``token`` (if any), end ``span``, and remember its trace as the last finished one
    when ``span`` is a local root. Never raises: a failure is reported as ``where``."""
    try:
        if token is not None:
            otel_context.detach(token)
        span.end()
        parent = getattr(span, "parent", False)  # sampled-out spans have none: not finished
        if parent is None or (parent and parent.is_remote):
            _last_trace_id[0] = span.get_span_context()[0]  # an int: formatted when asked
    except Exception as exc:
        _runtime.report_internal_error(where, exc)


def get_current_span() -> LiveSpan | None:
    """The running span (same methods as ``start_span``'s), or None outside a trace."""
    span = otel_trace.get_current_span()
    if not span.is_recording():
        return None
    span_id = span.get_span_context().span_id
    record = _runtime.STASH.get(span_id)
    if record is None:  # a span from plain OpenTelemetry instrumentation
        record = new_record(None, None)
        register(span, record)
    return LiveSpan(span, record)
