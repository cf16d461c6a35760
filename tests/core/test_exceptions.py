"""Exceptions pass through tracing untouched and are recorded; traceduck's own failures never
reach the user's code."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Mapping
from typing import Any

import pytest
from opentelemetry.trace import NonRecordingSpan, SpanContext

import traceduck as td
from traceduck import _runtime

from ._helpers import count, exception_event, flush, last_trace, span


class PaymentError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Abort(BaseException):
    """Not an Exception: like KeyboardInterrupt, must still pass through unchanged."""


def _frames(exc: BaseException) -> list[str]:
    return [f.name for f in traceback.extract_tb(exc.__traceback__)]


def _assert_recorded(span_: td.Span, exc_type: str, message: str, frame: str) -> None:
    assert span_.status == "ERROR"
    assert exc_type in span_.status_message
    assert message in span_.status_message
    attrs = exception_event(span_)
    assert attrs["exception.type"].endswith(exc_type)
    assert attrs["exception.message"] == message
    assert frame in attrs["exception.stacktrace"]
    assert message in attrs["exception.stacktrace"]


# -- sync ---------------------------------------------------------------------------------------


def test_sync_exception_is_the_same_object_with_the_users_traceback() -> None:
    raised: list[BaseException] = []
    cause = KeyError("root cause")

    @td.trace
    def charge(amount):
        err = PaymentError("card declined", code=402)
        raised.append(err)
        raise err from cause

    with pytest.raises(PaymentError) as info:
        charge(10)
    exc = info.value
    assert exc is raised[0]
    assert type(exc) is PaymentError
    assert exc.code == 402
    assert exc.__cause__ is cause
    frames = _frames(exc)
    assert frames[-1] == "charge"  # the raising frame is the user's, not a wrapper's
    assert traceback.extract_tb(exc.__traceback__)[-1].line == "raise err from cause"

    trace = last_trace()
    assert trace.info.status == "ERROR"
    assert "card declined" in (trace.info.status_message or "")
    _assert_recorded(trace.spans[0], "PaymentError", "card declined", "charge")
    assert trace.spans[0].inputs == {"amount": 10}
    assert trace.spans[0].outputs is None


def test_base_exception_passes_through_unchanged() -> None:
    signal = Abort("stop now")

    @td.trace
    def work():
        raise signal

    with pytest.raises(Abort) as info:
        work()
    assert info.value is signal
    assert last_trace().spans[0].status == "ERROR"


def test_exception_caught_by_the_caller_marks_only_the_failing_span() -> None:
    @td.trace
    def flaky():
        raise ValueError("try again")

    @td.trace
    def root():
        try:
            flaky()
        except ValueError:
            return "recovered"

    assert root() == "recovered"
    trace = last_trace()
    assert trace.info.status == "OK"
    assert span(trace, "root").status == "OK"
    assert span(trace, "root").events == []
    _assert_recorded(span(trace, "flaky"), "ValueError", "try again", "flaky")


def test_exception_through_nested_calls_marks_every_span_and_the_trace() -> None:
    @td.trace
    def inner():
        raise RuntimeError("deep failure")

    @td.trace
    def middle():
        return inner()

    @td.trace
    def outer():
        return middle()

    with pytest.raises(RuntimeError) as info:
        outer()
    assert _frames(info.value)[-1] == "inner"
    trace = last_trace()
    assert trace.info.status == "ERROR"
    assert trace.info.span_count == 3
    for name in ("outer", "middle", "inner"):
        _assert_recorded(span(trace, name), "RuntimeError", "deep failure", "inner")


# -- async, generators, start_span --------------------------------------------------------------


def test_async_exception_is_the_same_object_and_recorded() -> None:
    raised: list[BaseException] = []

    @td.trace
    async def fetch():
        await asyncio.sleep(0)
        err = TimeoutError("upstream slow")
        raised.append(err)
        raise err

    with pytest.raises(TimeoutError) as info:
        asyncio.run(fetch())
    assert info.value is raised[0]
    assert _frames(info.value)[-1] == "fetch"
    trace = last_trace()
    assert trace.info.status == "ERROR"
    _assert_recorded(trace.spans[0], "TimeoutError", "upstream slow", "fetch")


def test_generator_exception_mid_iteration_is_the_same_object_and_recorded() -> None:
    raised: list[BaseException] = []

    @td.trace
    def rows():
        yield 1
        yield 2
        err = ValueError("bad row 3")
        raised.append(err)
        raise err

    got = []
    with pytest.raises(ValueError) as info:
        for row in rows():
            got.append(row)
    assert got == [1, 2]
    assert info.value is raised[0]
    assert _frames(info.value)[-1] == "rows"
    trace = last_trace()
    assert trace.info.status == "ERROR"
    root = trace.spans[0]
    assert root.outputs == [1, 2]
    _assert_recorded(root, "ValueError", "bad row 3", "rows")


def test_generator_throw_unhandled_propagates_the_thrown_object() -> None:
    @td.trace
    def gen():
        yield 1
        yield 2

    g = gen()
    next(g)
    thrown = LookupError("from caller")
    with pytest.raises(LookupError) as info:
        g.throw(thrown)
    assert info.value is thrown
    _assert_recorded(last_trace().spans[0], "LookupError", "from caller", "gen")


def test_async_generator_exception_is_the_same_object_and_recorded() -> None:
    raised: list[BaseException] = []

    @td.trace
    async def stream():
        yield "a"
        err = ConnectionError("stream cut")
        raised.append(err)
        raise err

    async def main():
        got = []
        async for item in stream():
            got.append(item)
        return got

    with pytest.raises(ConnectionError) as info:
        asyncio.run(main())
    assert info.value is raised[0]
    assert _frames(info.value)[-1] == "stream"
    root = last_trace().spans[0]
    assert root.outputs == ["a"]
    _assert_recorded(root, "ConnectionError", "stream cut", "stream")


def test_start_span_block_exception_is_the_same_object_and_recorded() -> None:
    err = ArithmeticError("overflowed")
    with pytest.raises(ArithmeticError) as info, td.start_span("compute", span_type="TOOL"):
        raise err
    assert info.value is err
    trace = last_trace()
    assert trace.info.status == "ERROR"
    root = trace.spans[0]
    assert root.span_type == "TOOL"
    _assert_recorded(root, "ArithmeticError", "overflowed", "test_start_span_block_exception")


# -- failures inside traceduck ------------------------------------------------------------------


class _BrokenTracer:
    def __init__(self) -> None:
        self.calls = 0

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise RuntimeError("tracer exploded")


class _BadEndSpan(NonRecordingSpan):
    def end(self, end_time: int | None = None) -> None:
        raise RuntimeError("end exploded")


class _BadEndTracer:
    def __init__(self) -> None:
        self.calls = 0

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return _BadEndSpan(SpanContext(trace_id=1, span_id=2, is_remote=False))


@td.trace
def _sync_value(x):
    return x * 2


@td.trace
async def _async_value(x):
    return x * 2


@td.trace
def _gen_value(x):
    yield x
    yield x * 2


@td.trace
async def _agen_value(x):
    yield x
    yield x * 2


async def _collect(agen):
    return [item async for item in agen]


def _with_start_span(x):
    with td.start_span("block") as s:
        s.set_inputs({"x": x})
        s.set_attribute("k", "v")
        s.set_outputs(x * 2)
        return x * 2


CALLS = {
    "sync": (lambda: _sync_value(21), 42),
    "async": (lambda: asyncio.run(_async_value(21)), 42),
    "generator": (lambda: list(_gen_value(21)), [21, 42]),
    "async generator": (lambda: asyncio.run(_collect(_agen_value(21))), [21, 42]),
    "start_span": (lambda: _with_start_span(21), 42),
}


@pytest.mark.parametrize("tracer_type", [_BrokenTracer, _BadEndTracer], ids=["start", "end"])
@pytest.mark.parametrize("kind", list(CALLS))
def test_a_failing_tracer_never_reaches_user_code(monkeypatch, tracer_type, kind) -> None:
    tracer = tracer_type()
    monkeypatch.setattr(_runtime, "tracer", tracer)
    call, expected = CALLS[kind]
    assert call() == expected
    assert tracer.calls == 1  # the failure was really injected
    assert td.get_current_trace_id() is None


def _raise_sync(err):
    @td.trace
    def fails():
        raise err

    fails()


def _raise_async(err):
    @td.trace
    async def fails():
        raise err

    asyncio.run(fails())


def _raise_gen(err):
    @td.trace
    def fails():
        yield 1
        raise err

    list(fails())


def _raise_agen(err):
    @td.trace
    async def fails():
        yield 1
        raise err

    asyncio.run(_collect(fails()))


def _raise_block(err):
    with td.start_span("x"):
        raise err


RAISERS = {
    "sync": _raise_sync,
    "async": _raise_async,
    "generator": _raise_gen,
    "async generator": _raise_agen,
    "start_span": _raise_block,
}


@pytest.mark.parametrize("kind", list(RAISERS))
def test_user_exceptions_propagate_unchanged_when_the_tracer_fails(monkeypatch, kind) -> None:
    tracer = _BrokenTracer()
    monkeypatch.setattr(_runtime, "tracer", tracer)
    err = ValueError("user error")
    with pytest.raises(ValueError) as info:
        RAISERS[kind](err)
    assert info.value is err
    assert tracer.calls == 1
    # traceduck's own failure must not be chained onto the user's exception either
    assert err.__context__ is None
    assert "tracer exploded" not in "".join(traceback.format_exception(err))


class _UnreadableMapping(Mapping):
    """A mapping whose contents cannot be read (e.g. a lazy view over a closed resource)."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("resource closed")

    def __iter__(self):
        raise RuntimeError("resource closed")

    def __len__(self) -> int:
        return 1


@td.trace
def handle(request: Any) -> str:
    return "handled"


def _next_call_is_a_stored_root() -> None:
    """No span left current: the next traced call is a trace of its own, and it is stored."""
    assert td.get_current_trace_id() is None

    @td.trace
    def next_request() -> str | None:
        return td.get_current_trace_id()

    trace_id = next_request()
    flush()
    trace = td.get_trace(trace_id)
    assert trace.info.name == "next_request"
    assert trace.spans[0].parent_id is None


def test_input_capture_failure_never_reaches_user_code_nor_leaks_the_span() -> None:
    assert handle(_UnreadableMapping()) == "handled"
    _next_call_is_a_stored_root()


class _InterruptedMapping(Mapping):
    """Ctrl-C arriving while traceduck reads the argument (a big one takes a while)."""

    def __getitem__(self, key):
        raise KeyError(key)

    def __iter__(self):
        raise KeyboardInterrupt

    def __len__(self) -> int:
        return 1


def test_ctrl_c_during_input_capture_leaves_no_span_open() -> None:
    with pytest.raises(KeyboardInterrupt):
        handle(_InterruptedMapping())
    # The interrupted call's span must end and leave the context, or every later trace of
    # this thread (a notebook's kernel goes on after Ctrl-C) is a child of it, never stored.
    _next_call_is_a_stored_root()
    interrupted = td.search_traces("name = 'handle'")
    assert [t.info.status for t in interrupted] == ["ERROR"]


def test_output_capture_failure_never_reaches_user_code() -> None:
    value = _UnreadableMapping()

    @td.trace
    def produce():
        return value

    assert produce() is value
    trace = last_trace()
    assert trace.info.name == "produce"
    assert trace.info.status == "OK"


def test_unrepresentable_values_never_reach_user_code() -> None:
    class NoRepr:
        def __repr__(self) -> str:
            raise RuntimeError("repr exploded")

    @td.trace
    def f(x):
        return NoRepr()

    assert isinstance(f(NoRepr()), NoRepr)
    root = last_trace().spans[0]
    assert "NoRepr" in str(root.inputs["x"])
    assert "NoRepr" in str(root.outputs)


def test_an_exporter_failure_never_reaches_user_code(monkeypatch) -> None:
    from traceduck._export import _convert

    def broken(span):
        raise RuntimeError("convert exploded")

    monkeypatch.setattr(_convert, "row_of", broken)

    @td.trace
    def f():
        return "fine"

    assert f() == "fine"
    td.flush(timeout_s=5)
    assert "convert exploded" in (td.stats()["last_error"] or "")
    monkeypatch.undo()
    assert f() == "fine"
    flush()
    assert count("traces") == 1


def test_an_exception_whose_str_fails_is_still_recorded_as_an_error() -> None:
    class Opaque(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text for this error")

    raised = Opaque()

    @td.trace
    def f():
        raise raised

    with pytest.raises(Opaque) as info:
        f()
    assert info.value is raised
    trace = last_trace()
    assert trace.info.status == "ERROR"
    root = trace.spans[0]
    assert root.status == "ERROR"
    assert "Opaque" in (root.status_message or "")


@pytest.mark.parametrize("where", ["set_attributes", "start_span", "decorator"])
def test_attributes_with_non_string_keys_keep_the_span(where: str) -> None:
    # A dict with tuple keys (a config keyed by (layer, head), say) once made the exporter give
    # up on the span ("keys must be str ..."), so the whole trace was dropped. Keys become text.
    attrs: dict[Any, Any] = {("layer", 1): 0.5, 7: "seven", "plain": True}

    if where == "set_attributes":
        with td.start_span("work") as live:
            live.set_attributes(attrs)
    elif where == "start_span":
        with td.start_span("work", attributes=attrs):
            pass
    else:
        td.trace(name="work", attributes=attrs)(lambda: None)()
    flush()
    assert td.stats()["dropped_spans"] == 0
    assert last_trace().spans[0].attributes == {
        "('layer', 1)": 0.5,
        "7": "seven",
        "plain": True,
    }


def test_misused_span_methods_and_decorator_options_never_raise() -> None:
    class NoText:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    with td.start_span("work") as live:
        live.set_span_type(NoText())  # used to raise RuntimeError into the block
        live.set_span_type("TOOL")
    with pytest.warns(td.TraceduckWarning, match="attributes"):

        @td.trace(attributes=["not", "a", "dict"])  # used to raise AttributeError at import
        def f(x: int) -> int:
            return x + 1

    assert f(1) == 2
    flush()
    assert last_trace().spans[0].name == "f"
    assert td.get_trace(td.search_traces("name = 'work'")[0].info.trace_id).spans[0].span_type == (
        "TOOL"
    )


def test_an_event_named_by_a_number_or_with_odd_keys_keeps_the_trace() -> None:
    class NoText:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    with td.start_span("evented") as live:
        live.add_event(5, {("layer", 1): 0.5})  # type: ignore[arg-type, dict-item]
        live.add_event(NoText())  # type: ignore[arg-type]: its name cannot be text: left out
        live.add_event("done")
    flush()
    assert td.stats()["dropped_traces"] == 0
    trace = td.get_trace(td.search_traces("name = 'evented'")[0].info.trace_id)
    events = trace.spans[0].events
    assert [e["name"] for e in events] == ["5", "done"]
    assert events[0]["attributes"] == {"('layer', 1)": 0.5}


def test_text_with_a_lone_surrogate_keeps_the_trace() -> None:
    # Text from bytes read with surrogateescape (a file name, argv) cannot be stored as UTF-8
    # as it is: the store refused the whole trace for the span's name, type or error message.
    name = "load-\udcff"
    raised = ValueError(f"cannot read {name}")

    @td.trace(name=name, span_type=name)
    def load():
        with td.start_span(name):
            raise raised

    with pytest.raises(ValueError) as info:
        load()
    assert info.value is raised
    trace = last_trace()
    assert td.stats()["dropped_traces"] == 0
    # as in captured values, U+FFFD for what UTF-8 cannot hold
    kept = name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    assert [s.name for s in trace.spans] == [kept, kept]
    root = trace.spans[0]
    assert root.span_type == kept
    assert root.status_message == f"ValueError: cannot read {kept}"
