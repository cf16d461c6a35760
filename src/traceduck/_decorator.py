"""``@trace``: every call becomes a span. Built on wrapt; the call path is chosen at decoration.

The caller's thread pays for: starting and ending an OpenTelemetry span, attaching its context,
and recording inputs/outputs in a deferred form (``_capture``). Encoding happens in the exporter's
thread. Anything traceduck does runs under a guard, so the user's function sees the same
arguments, return value and exception object as without the decorator.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace

from . import _cascade, _runtime
from ._capture import parameter_names, snapshot, snapshot_args
from ._context import Tag, _warn, apply_tags, normalize_tags
from ._span import attribute_dict, end_span, fail_span
from .errors import TagError

__all__ = ["trace"]

F = TypeVar("F", bound=Callable[..., Any])
_MAX_YIELDED = 1000  # items of a generator's output kept in the span

_attach = otel_context.attach
_get_current = otel_context.get_current
_detach = otel_context.detach
_in_context = otel_trace.set_span_in_context
_STASH = _runtime.STASH


def _safe_snapshot(value: Any) -> Any:
    try:
        return snapshot(value)
    except Exception as exc:
        _runtime.report_internal_error("output capture", exc)
        return None


def _prepare_cascade(tags: list[Tag]) -> _cascade.Cascade | None:
    """Cascade tags' attributes and baggage texts, worked out at decoration, not per call."""
    if not tags:
        return None
    try:
        return _cascade.Cascade(tags)
    except Exception as exc:
        _runtime.report_internal_error("cascade tags", exc)
        return None


@overload
def trace(func: F) -> F: ...
@overload
def trace(
    func: None = None,
    *,
    name: str | None = None,
    span_type: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    tags: Any = None,
    capture_inputs: bool | None = None,
    capture_outputs: bool | None = None,
) -> Callable[[F], F]: ...


def trace(
    func: Any = None,
    *,
    name: str | None = None,
    span_type: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    tags: Any = None,
    capture_inputs: bool | None = None,
    capture_outputs: bool | None = None,
) -> Any:
    """Trace every call of a function, method, coroutine or (async) generator as a span.

    >>> @trace
    ... def add(a, b):
    ...     return a + b
    >>> @trace(name="retrieve", span_type="RETRIEVER", tags={"team": "search"})
    ... async def retrieve(query): ...

    Nested traced calls form one trace. ``tags`` (a dict, label names or ``Tag`` objects) are
    added to the trace whenever this function runs inside it. ``capture_inputs`` /
    ``capture_outputs`` override ``configure()``'s switches for this function.
    """
    if func is None:
        return functools.partial(
            trace,
            name=name,
            span_type=span_type,
            attributes=attributes,
            tags=tags,
            capture_inputs=capture_inputs,
            capture_outputs=capture_outputs,
        )
    try:
        tag_list = normalize_tags(tags)
    except TagError as exc:
        _warn(f"@trace(tags=...): {exc}; these tags are ignored")
        tag_list = []
    options = _Options(func, name, span_type, attributes, tag_list, capture_inputs, capture_outputs)
    return wrapt.FunctionWrapper(func, options.wrapper())


class _Options:
    """What a decorated function needs at call time, computed once at decoration."""

    def __init__(
        self,
        func: Any,
        name: str | None,
        span_type: str | None,
        attributes: Mapping[str, Any] | None,
        tags: list[Tag],
        capture_inputs: bool | None,
        capture_outputs: bool | None,
    ) -> None:
        inner = func.__func__ if isinstance(func, (classmethod, staticmethod)) else func
        self.is_static = isinstance(func, staticmethod)
        self.name = name or getattr(inner, "__name__", None) or repr(inner)
        # The traced coroutine or generator takes the function's names (``_named``).
        names = (getattr(inner, "__name__", None), getattr(inner, "__qualname__", None))
        self.names_of = names if all(type(n) is str for n in names) else None
        self.span_type = span_type
        self.attributes = None
        if attributes:
            try:
                self.attributes = attribute_dict(attributes)
            except Exception as exc:
                _warn(f"@trace(attributes=...) must be a dict: {exc!r}; they are ignored")
        self.tags = tags
        self.cascade = _prepare_cascade([tag for tag in tags if tag.cascade])
        self.capture_inputs = capture_inputs
        self.capture_outputs = capture_outputs
        self.names = parameter_names(inner)
        self.bound_names = self.names[1:]
        # A first parameter named ``self`` (or ``cls``, when it is given a class) is the
        # method's receiver: never recorded as an input, however the method is reached (as
        # MLflow's @mlflow.trace leaves them out).
        first = self.names[0] if self.names and not self.is_static else ""
        self.receiver = first if first in ("self", "cls") else ""
        # A plain ``async def``: calling it only binds the arguments (see ``_async``).
        self.checks_call = inspect.isfunction(inner) and bool(
            inner.__code__.co_flags & inspect.CO_COROUTINE
        )
        if inspect.isasyncgenfunction(inner):
            self.kind = "asyncgen"
        elif inspect.iscoroutinefunction(inner):
            self.kind = "async"
        elif inspect.isgeneratorfunction(inner):
            self.kind = "gen"
        else:
            self.kind = "sync"

    def wrapper(self) -> Callable[..., Any]:
        return {
            "sync": self._sync,
            "async": self._async,
            "gen": self._gen,
            "asyncgen": self._asyncgen,
        }[self.kind]

    # -- shared pieces ------------------------------------------------------------------------

    def _start(self, instance: Any, args: tuple, kwargs: dict) -> tuple[Any, Any, list[Any] | None]:
        """Start the span, make it current, stash its deferred inputs.

        The record is None when nothing will export the span (sampled out, or no exporter):
        then neither inputs nor outputs are captured."""
        tracer = _runtime.tracer
        if tracer is None:
            from ._config import ensure_configured

            tracer = ensure_configured()
        # The current context, looked up once: the SDK's start, sampler and span processors
        # (cascade tags) would each look it up again when given none.
        parent = _get_current()
        span = tracer.start_span(self.name, parent)
        if self.cascade is not None:  # Tag(..., cascade=True): stamp it, carry in baggage
            token = _attach(_cascade.enter(span, self.cascade, _in_context(span, parent)))
        else:
            token = _attach(_in_context(span, parent))
        record = None
        if _runtime.collecting and span.is_recording():
            record = [self.span_type, self.attributes, None, None]
            ctx = span.context
            _STASH[ctx.span_id] = record
            if len(_STASH) > _runtime.MAX_STASH:
                _runtime.trim_stash()
            try:  # the span is current now: a capture failure must not leave it open
                capture = self.capture_inputs
                if capture or (capture is None and _runtime.capture_inputs):
                    if instance is not None:
                        record[2] = snapshot_args(self.bound_names, args, kwargs)
                    elif (
                        self.receiver
                        and args
                        and (self.receiver == "self" or isinstance(args[0], type))
                    ):
                        # a method reached unbound, its receiver first in ``args``: through
                        # @property / cached_property, or traced after the class was made
                        record[2] = snapshot_args(self.bound_names, args[1:], kwargs)
                    else:
                        record[2] = snapshot_args(self.names, args, kwargs)
                if self.tags:
                    apply_tags(ctx.trace_id, self.tags)
            except Exception as exc:
                _runtime.report_internal_error("input capture", exc)
            except BaseException as exc:  # Ctrl-C while capturing: the span must not stay open
                fail_span(span, exc, "@trace error")
                end_span(span, token, "@trace end")
                raise
        return span, token, record

    def _try_start(self, instance: Any, args: tuple, kwargs: dict) -> Any:
        try:
            return self._start(instance, args, kwargs)
        except Exception as exc:
            _runtime.report_internal_error("@trace start", exc)
            return None

    def _wants_outputs(self) -> bool:
        capture = self.capture_outputs
        return capture or (capture is None and _runtime.capture_outputs)

    # -- the four call paths ------------------------------------------------------------------

    def _sync(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        if not _runtime.enabled:
            return wrapped(*args, **kwargs)
        started = self._try_start(instance, args, kwargs)
        if started is None:  # outside the except block: the user's errors get no __context__
            return wrapped(*args, **kwargs)
        span, token, record = started
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            fail_span(span, exc, "@trace error")
            raise
        else:
            if record is not None and self._wants_outputs():
                record[3] = _safe_snapshot(result)
            return result
        finally:
            end_span(span, token, "@trace end")

    def _async(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        if not _runtime.enabled:
            return wrapped(*args, **kwargs)
        if self.checks_call:
            # As without the decorator, wrong arguments raise their TypeError here, at the
            # call, not at the await. Making the function's coroutine binds the arguments and
            # runs none of its body; it is closed at once (a closed coroutine is never "never
            # awaited"), and the traced one makes its own when awaited. Keeping this one for the
            # await instead would leave it unawaited whenever ours is not run (a task cancelled
            # before its first step), warning about a coroutine the caller never saw.
            wrapped(*args, **kwargs).close()
        return self._named(self._traced_async(wrapped, instance, args, kwargs))

    def _named(self, made: Any) -> Any:
        """Our coroutine or generator, bearing the function's ``__name__`` and ``__qualname__``:
        a warning that it was never awaited, asyncio's task reprs and debuggers name the user's
        function, as without the decorator."""
        if self.names_of is not None:
            made.__name__, made.__qualname__ = self.names_of
        return made

    async def _traced_async(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        started = self._try_start(instance, args, kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        span, token, record = started
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            fail_span(span, exc, "@trace error")
            raise
        else:
            if record is not None and self._wants_outputs():
                record[3] = _safe_snapshot(result)
            return result
        finally:
            end_span(span, token, "@trace end")

    def _gen(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        if not _runtime.enabled:
            return wrapped(*args, **kwargs)
        return self._named(self._traced_gen(wrapped(*args, **kwargs), instance, args, kwargs))

    def _traced_gen(self, gen: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        started = self._try_start(instance, args, kwargs)
        if started is None:
            return (yield from gen)
        span, token, record = started
        _detach(token)
        ctx = _in_context(span)
        if self.cascade is not None:
            ctx = _cascade.with_baggage(self.cascade, ctx)
        items: list[Any] = []
        keep = record is not None and self._wants_outputs()
        to_send: Any = None
        to_throw: BaseException | None = None
        try:
            while True:
                token = _attach(ctx)
                try:
                    if to_throw is not None:
                        exc, to_throw = to_throw, None
                        item = gen.throw(exc)
                    else:
                        item = gen.send(to_send)
                except StopIteration as stop:
                    return stop.value
                finally:
                    _detach(token)
                if keep and len(items) < _MAX_YIELDED:
                    items.append(_safe_snapshot(item))
                try:
                    to_send = yield item
                except GeneratorExit:
                    token = _attach(ctx)
                    try:
                        gen.close()
                    finally:
                        _detach(token)
                    raise
                except BaseException as exc:
                    to_throw, to_send = exc, None
        except BaseException as exc:
            fail_span(span, exc, "@trace error")
            raise
        finally:
            if keep:
                record[3] = items  # each item was snapshotted when it was yielded
            end_span(span, None, "@trace end")  # the generator detached after each step

    def _asyncgen(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        if not _runtime.enabled:
            return wrapped(*args, **kwargs)
        return self._named(self._traced_asyncgen(wrapped(*args, **kwargs), instance, args, kwargs))

    async def _traced_asyncgen(self, agen: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        started = self._try_start(instance, args, kwargs)
        if started is None:
            async for item in agen:
                yield item
            return
        span, token, record = started
        _detach(token)
        ctx = _in_context(span)
        if self.cascade is not None:
            ctx = _cascade.with_baggage(self.cascade, ctx)
        items: list[Any] = []
        keep = record is not None and self._wants_outputs()
        to_send: Any = None
        to_throw: BaseException | None = None
        try:
            while True:
                token = _attach(ctx)
                try:
                    if to_throw is not None:
                        exc, to_throw = to_throw, None
                        item = await agen.athrow(exc)
                    else:
                        item = await agen.asend(to_send)
                except StopAsyncIteration:
                    return
                finally:
                    _detach(token)
                if keep and len(items) < _MAX_YIELDED:
                    items.append(_safe_snapshot(item))
                try:
                    to_send = yield item
                except GeneratorExit:
                    token = _attach(ctx)
                    try:
                        await agen.aclose()
                    finally:
                        _detach(token)
                    raise
                except BaseException as exc:
                    to_throw, to_send = exc, None
        except BaseException as exc:
            fail_span(span, exc, "@trace error")
            raise
        finally:
            if keep:
                record[3] = items  # each item was snapshotted when it was yielded
            end_span(span, None, "@trace end")  # the generator detached after each step
