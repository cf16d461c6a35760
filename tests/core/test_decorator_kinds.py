"""@trace on every kind of callable: what the caller sees is unchanged, and each call is a span."""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import json
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import traceduck as td

from ._helpers import count, flush, last_trace, span

# -- sync functions -----------------------------------------------------------------------------


def test_sync_function_is_one_span_with_bound_inputs_and_output() -> None:
    @td.trace
    def add(a: int, b: int = 2) -> int:
        return a + b

    assert add(1, b=5) == 6
    trace = last_trace()
    assert trace.info.name == "add"
    assert trace.info.status == "OK"
    assert trace.info.span_count == 1
    (root,) = trace.spans
    assert root.parent_id is None
    assert root.name == "add"
    assert root.status == "OK"
    assert root.span_type == "UNKNOWN"
    assert root.inputs == {"a": 1, "b": 5}
    assert root.outputs == 6
    assert json.loads(trace.info.request_preview) == {"a": 1, "b": 5}
    assert json.loads(trace.info.response_preview) == 6


def test_positional_and_keyword_arguments_are_bound_to_parameter_names() -> None:
    @td.trace
    def f(a, b, *rest, key=None, **extra):
        return [a, b, list(rest), key, extra]

    assert f(1, [2], 3, 4, key="k", z=9) == [1, [2], [3, 4], "k", {"z": 9}]
    inputs = span(last_trace(), "f").inputs
    assert inputs["a"] == 1
    assert inputs["b"] == [2]
    assert inputs["rest"] == [3, 4]
    assert inputs["key"] == "k"
    assert 9 in (inputs.get("z"), (inputs.get("extra") or {}).get("z"))


def test_each_call_is_its_own_trace() -> None:
    @td.trace
    def f(x):
        return td.get_current_trace_id()

    ids = [f(i) for i in range(3)]
    flush()
    assert len(set(ids)) == 3
    assert count("traces") == 3
    assert [td.get_trace(i).spans[0].inputs for i in ids] == [{"x": 0}, {"x": 1}, {"x": 2}]


# -- async functions ----------------------------------------------------------------------------


def test_async_function_span_covers_the_await_and_records_the_result() -> None:
    @td.trace
    async def fetch(url: str) -> dict[str, Any]:
        await asyncio.sleep(0.02)
        return {"url": url, "ok": True}

    assert asyncio.run(fetch("http://x")) == {"url": "http://x", "ok": True}
    root = last_trace().spans[0]
    assert root.name == "fetch"
    assert root.inputs == {"url": "http://x"}
    assert root.outputs == {"url": "http://x", "ok": True}
    assert root.duration_ms >= 15


def test_async_function_stays_lazy_until_awaited() -> None:
    ran = []

    @td.trace
    async def work():
        ran.append(1)
        return 1

    before = td.get_last_trace_id()
    coro = work()
    assert inspect.iscoroutine(coro)
    assert ran == []
    coro.close()
    flush()
    assert td.get_last_trace_id() == before
    assert count("traces") == 0


def test_async_function_with_wrong_arguments_raises_at_the_call_as_undecorated() -> None:
    """Calling a coroutine function with wrong arguments raises its TypeError at the call,
    not at the await: the same with @trace, same message, no coroutine left unawaited."""

    async def fetch(url: str, *, retries: int = 0) -> str:
        return url

    class Client:
        async def get(self, url: str) -> str:
            return url

    traced = td.trace(fetch)
    traced_get = td.trace(Client.get)
    calls = [
        (fetch, traced, ()),
        (fetch, traced, ("a", "b")),
        (fetch, traced, ("a",), {"retry": 1}),
        (Client().get, traced_get.__get__(Client()), ()),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would fail the test
        for plain, decorated, args, *kwargs in calls:
            with pytest.raises(TypeError) as expected:
                plain(*args, **(kwargs[0] if kwargs else {}))
            with pytest.raises(TypeError) as got:
                decorated(*args, **(kwargs[0] if kwargs else {}))
            assert str(got.value) == str(expected.value)
        gc.collect()
    flush()
    assert count("traces") == 0


def test_a_traced_coroutine_closed_or_cancelled_before_it_runs_warns_of_nothing() -> None:
    """Closed unawaited, or its task cancelled before its first step: no span, and no
    "coroutine ... was never awaited" warning (there is none without the decorator either)."""
    ran = []

    @td.trace
    async def work(x: int) -> int:
        ran.append(x)
        return x

    async def cancel_before_start() -> None:
        task = asyncio.ensure_future(work(2))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        work(1).close()
        asyncio.run(cancel_before_start())
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    assert ran == []
    flush()
    assert count("traces") == 0


def test_a_traced_coroutine_bears_its_function_s_names_as_without_the_decorator() -> None:
    """A traced coroutine never awaited warns naming the user's function (not traceduck's
    wrapper), and asyncio and debuggers see the same names as without the decorator."""

    class Jobs:
        @td.trace
        async def fetch(self, x: int) -> int:
            return x

    async def plain(x: int) -> int:
        return x

    coro = Jobs().fetch(1)
    assert (coro.__name__, coro.__qualname__) == ("fetch", Jobs.fetch.__qualname__)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del coro
        undecorated = plain(1)
        del undecorated
        gc.collect()
    never = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert never == [
        f"coroutine '{Jobs.fetch.__qualname__}' was never awaited",
        f"coroutine '{plain.__qualname__}' was never awaited",
    ]
    assert asyncio.run(Jobs().fetch(3)) == 3


def test_a_traced_generator_bears_its_function_s_names() -> None:
    @td.trace
    def numbers(n: int) -> Iterator[int]:
        yield from range(n)

    @td.trace
    async def anumbers(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    async def collect() -> list[int]:
        return [i async for i in anumbers(2)]

    made = numbers(2)
    assert (made.__name__, made.__qualname__) == ("numbers", numbers.__qualname__)
    assert list(made) == [0, 1]
    amade = anumbers(2)
    assert (amade.__name__, amade.__qualname__) == ("anumbers", anumbers.__qualname__)
    asyncio.run(amade.aclose())
    assert asyncio.run(collect()) == [0, 1]


# -- generators ---------------------------------------------------------------------------------


def test_generator_span_covers_whole_iteration_and_records_yielded_items() -> None:
    @td.trace
    def child(i):
        return i * 10

    @td.trace
    def numbers(n):
        for i in range(n):
            time.sleep(0.005)
            yield child(i)

    started = time.time_ns()
    got = []
    for item in numbers(3):
        got.append(item)
    consumed = time.time_ns()
    assert got == [0, 10, 20]
    trace = last_trace()
    root = span(trace, "numbers")
    assert root.parent_id is None
    assert root.inputs == {"n": 3}
    assert root.outputs == [0, 10, 20]
    assert root.start_time_ns >= started
    assert root.end_time_ns <= consumed
    assert root.duration_ms >= 12  # three sleeps inside the iteration
    children = [s for s in trace.spans if s.name == "child"]
    assert len(children) == 3
    assert all(c.parent_id == root.span_id for c in children)


def test_generator_is_lazy_and_untouched_generators_make_no_trace() -> None:
    ran = []

    @td.trace
    def gen():
        ran.append(1)
        yield 1

    before = td.get_last_trace_id()
    g = gen()
    assert inspect.isgenerator(g)
    assert ran == []
    del g
    flush()
    assert td.get_last_trace_id() == before
    assert count("traces") == 0


def test_generator_return_value_passes_through_yield_from() -> None:
    @td.trace
    def inner():
        yield 1
        return "done"

    def outer():
        result = yield from inner()
        yield result

    assert list(outer()) == [1, "done"]
    assert last_trace().spans[0].outputs == [1]


def test_generator_early_break_closes_the_inner_generator_and_ends_the_span() -> None:
    closed = []

    @td.trace
    def count_up():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)

    for i in count_up():
        if i == 2:
            break
    assert closed == [True]
    assert td.get_current_trace_id() is None
    trace = last_trace()
    assert trace.info.name == "count_up"
    assert trace.info.status == "OK"
    assert trace.spans[0].outputs == [0, 1, 2]


def test_generator_close_ends_the_span_cleanly() -> None:
    closed = []

    @td.trace
    def gen():
        try:
            yield "a"
            yield "b"
        finally:
            closed.append(True)

    g = gen()
    assert next(g) == "a"
    g.close()
    assert closed == [True]
    root = last_trace().spans[0]
    assert root.status == "OK"
    assert root.events == []
    assert root.outputs == ["a"]


def test_generator_send_and_throw_reach_the_user_generator() -> None:
    @td.trace
    def echo():
        received = None
        while True:
            try:
                received = yield ("echo", received)
            except ValueError as exc:
                received = f"caught {exc}"

    g = echo()
    assert next(g) == ("echo", None)
    assert g.send("hi") == ("echo", "hi")
    assert g.throw(ValueError("boom")) == ("echo", "caught boom")
    assert g.send(3) == ("echo", 3)
    g.close()
    root = last_trace().spans[0]
    assert root.status == "OK"
    assert root.outputs == [
        ["echo", None],
        ["echo", "hi"],
        ["echo", "caught boom"],
        ["echo", 3],
    ]


def test_generator_frames_run_in_the_span_context() -> None:
    @td.trace
    def gen():
        yield td.get_current_trace_id()
        yield td.get_current_trace_id()

    ids = list(gen())
    assert ids[0] is not None and ids[0] == ids[1]
    assert td.get_current_trace_id() is None
    assert last_trace().info.trace_id == ids[0]


# -- async generators ---------------------------------------------------------------------------


def test_async_generator_span_covers_iteration_and_records_items() -> None:
    @td.trace
    async def child(i):
        return i + 100

    @td.trace
    async def stream(n):
        for i in range(n):
            await asyncio.sleep(0.005)
            yield await child(i)

    async def main():
        return [x async for x in stream(3)]

    assert asyncio.run(main()) == [100, 101, 102]
    trace = last_trace()
    root = span(trace, "stream")
    assert root.inputs == {"n": 3}
    assert root.outputs == [100, 101, 102]
    assert root.duration_ms >= 12
    children = [s for s in trace.spans if s.name == "child"]
    assert len(children) == 3
    assert all(c.parent_id == root.span_id for c in children)


def test_async_generator_aclose_closes_inner_and_ends_span() -> None:
    closed = []

    @td.trace
    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def main():
        g = agen()
        first = await g.__anext__()
        await g.aclose()
        return first

    assert asyncio.run(main()) == 1
    assert closed == [True]
    root = last_trace().spans[0]
    assert root.status == "OK"
    assert root.events == []
    assert root.outputs == [1]


def test_async_generator_early_break_ends_span() -> None:
    closed = []

    @td.trace
    async def agen():
        try:
            for i in range(100):
                yield i
        finally:
            closed.append(True)

    async def main():
        async for i in agen():
            if i == 1:
                break
        for _ in range(10):  # the loop's finalizer hook acloses the dropped generator
            await asyncio.sleep(0)

    asyncio.run(main())
    assert closed == [True]
    trace = last_trace()
    assert trace.info.name == "agen"
    assert trace.info.status == "OK"
    assert trace.spans[0].outputs == [0, 1]


def test_async_generator_asend_and_athrow() -> None:
    @td.trace
    async def echo():
        received = None
        while True:
            try:
                received = yield received
            except KeyError:
                received = "caught"

    async def main():
        g = echo()
        out = [await g.__anext__(), await g.asend("x"), await g.athrow(KeyError("k"))]
        await g.aclose()
        return out

    assert asyncio.run(main()) == [None, "x", "caught"]
    assert last_trace().spans[0].outputs == [None, "x", "caught"]


# -- methods, classmethods, staticmethods -------------------------------------------------------


class Service:
    factor = 3

    def __init__(self, base: int) -> None:
        self.base = base

    @td.trace
    def method(self, x: int) -> int:
        """Add the base."""
        return self.base + x

    @td.trace
    @classmethod
    def cls_outer(cls, x: int) -> int:
        return cls.factor * x

    @classmethod
    @td.trace
    def cls_inner(cls, x: int) -> int:
        return cls.factor * x

    @td.trace
    @staticmethod
    def static_outer(x: int, y: int = 1) -> int:
        return x - y

    @staticmethod
    @td.trace
    def static_inner(x: int, y: int = 1) -> int:
        return x - y

    @td.trace
    async def amethod(self, x: int) -> int:
        return self.base * x

    @td.trace
    def gmethod(self, n: int):
        yield from range(self.base, self.base + n)


@pytest.mark.parametrize(
    ("call", "name", "expected", "inputs"),
    [
        (lambda: Service(10).method(5), "method", 15, {"x": 5}),
        (lambda: Service.cls_outer(4), "cls_outer", 12, {"x": 4}),
        (lambda: Service(1).cls_outer(4), "cls_outer", 12, {"x": 4}),
        (lambda: Service.cls_inner(4), "cls_inner", 12, {"x": 4}),
        (lambda: Service.static_outer(7, y=2), "static_outer", 5, {"x": 7, "y": 2}),
        (lambda: Service(1).static_outer(7, 2), "static_outer", 5, {"x": 7, "y": 2}),
        (lambda: Service.static_inner(7, 2), "static_inner", 5, {"x": 7, "y": 2}),
        (lambda: asyncio.run(Service(2).amethod(4)), "amethod", 8, {"x": 4}),
        (lambda: list(Service(2).gmethod(3)), "gmethod", [2, 3, 4], {"n": 3}),
    ],
)
def test_methods_leave_self_and_cls_out_of_inputs(call, name, expected, inputs) -> None:
    assert call() == expected
    root = last_trace().spans[0]
    assert root.name == name
    assert root.inputs == inputs
    assert root.outputs == expected


def test_method_called_through_the_class_with_explicit_self() -> None:
    svc = Service(10)
    assert Service.method(svc, 1) == 11
    assert last_trace().spans[0].inputs == {"x": 1}


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = balance

    @property
    @td.trace
    def doubled(self) -> int:
        return 2 * self.balance

    @functools.cached_property
    @td.trace
    def tripled(self) -> int:
        return 3 * self.balance

    def deposit(self, amount: int) -> int:
        return self.balance + amount

    @classmethod
    def opening(cls, amount: int) -> int:
        return amount


def test_properties_and_methods_reached_unbound_leave_self_and_cls_out_of_inputs() -> None:
    """``self`` is the receiver, not an input, as in MLflow's @mlflow.trace: left out of a
    @property's, a cached_property's and a method's traced after its class was made."""
    account = Account(5)
    assert account.doubled == 10
    assert last_trace().spans[0].inputs == {}
    assert account.tripled == 15
    assert last_trace().spans[0].inputs == {}
    deposit = td.trace(Account.deposit)
    assert deposit(account, 7) == 12
    assert last_trace().spans[0].inputs == {"amount": 7}
    opening = td.trace(Account.opening.__func__)
    assert opening(Account, 3) == 3
    assert last_trace().spans[0].inputs == {"amount": 3}


def test_a_first_parameter_named_cls_that_is_not_a_class_is_an_input() -> None:
    @td.trace
    def classify(cls: str, text: str) -> str:
        return f"{cls}:{text}"

    assert classify("spam", "buy now") == "spam:buy now"
    assert last_trace().spans[0].inputs == {"cls": "spam", "text": "buy now"}


# -- options ------------------------------------------------------------------------------------


def test_decorator_options_name_type_attributes_tags() -> None:
    @td.trace(
        name="retrieve",
        span_type="RETRIEVER",
        attributes={"k": 1, "model": "m-1", "params": {"top_k": 5}},
        tags={"team": "search"},
    )
    def lookup(query):
        return ["doc1"]

    assert lookup("duck") == ["doc1"]
    trace = last_trace()
    assert trace.info.name == "retrieve"
    assert trace.info.tags == {"team": "search"}
    root = trace.spans[0]
    assert root.name == "retrieve"
    assert root.span_type == "RETRIEVER"
    assert root.attributes["k"] == 1
    assert root.attributes["model"] == "m-1"
    assert root.attributes["params"] == {"top_k": 5}


def test_decorator_with_empty_parentheses() -> None:
    @td.trace()
    def f(x):
        return x

    assert f(2) == 2
    assert last_trace().info.name == "f"


# -- what survives decoration -------------------------------------------------------------------


def _sync(a: int, *, b: str = "x") -> str:
    """Sync doc."""
    return b * a


async def _async(a: int, *, b: str = "x") -> str:
    """Async doc."""
    return b * a


def _gen(a: int, *, b: str = "x"):
    """Gen doc."""
    yield b * a


async def _agen(a: int, *, b: str = "x"):
    """Agen doc."""
    yield b * a


@pytest.mark.parametrize("func", [_sync, _async, _gen, _agen], ids=lambda f: f.__name__)
def test_function_metadata_and_inspect_predicates_survive(func) -> None:
    traced = td.trace(func)
    named = td.trace(name="other", span_type="TOOL")(func)
    for wrapper in (traced, named):
        assert wrapper.__name__ == func.__name__
        assert wrapper.__qualname__ == func.__qualname__
        assert wrapper.__doc__ == func.__doc__
        assert wrapper.__module__ == func.__module__
        assert inspect.signature(wrapper) == inspect.signature(func)
        assert inspect.iscoroutinefunction(wrapper) == inspect.iscoroutinefunction(func)
        assert inspect.isgeneratorfunction(wrapper) == inspect.isgeneratorfunction(func)
        assert inspect.isasyncgenfunction(wrapper) == inspect.isasyncgenfunction(func)
        assert inspect.isfunction(wrapper)
        assert callable(wrapper)


def test_method_metadata_and_inspect_predicates_survive() -> None:
    svc = Service(1)
    assert inspect.ismethod(svc.method)
    assert inspect.ismethod(Service.cls_outer)
    assert inspect.ismethod(svc.amethod)
    assert not inspect.ismethod(Service.static_outer)
    assert svc.method.__name__ == "method"
    assert Service.method.__qualname__ == "Service.method"
    assert svc.method.__doc__ == "Add the base."
    assert list(inspect.signature(svc.method).parameters) == ["x"]
    assert list(inspect.signature(Service.method).parameters) == ["self", "x"]
    assert list(inspect.signature(Service.cls_outer).parameters) == ["x"]
    assert list(inspect.signature(Service.cls_inner).parameters) == ["x"]
    static = inspect.signature(Service.static_outer)
    assert list(static.parameters) == ["x", "y"]
    assert static.parameters["y"].default == 1
    assert inspect.signature(svc.method).return_annotation == "int"  # text: future annotations
    assert inspect.iscoroutinefunction(svc.amethod)
    assert inspect.isgeneratorfunction(svc.gmethod)


# -- capture switches ---------------------------------------------------------------------------


def test_capture_switches_per_decorator() -> None:
    @td.trace(capture_inputs=False)
    def no_inputs(secret):
        return "out"

    @td.trace(capture_outputs=False)
    def no_outputs(x):
        return "secret-output"

    @td.trace(capture_outputs=False)
    def no_outputs_gen():
        yield "secret-item"

    assert no_inputs("pw") == "out"
    root = last_trace().spans[0]
    assert root.inputs is None
    assert root.outputs == "out"

    assert no_outputs(1) == "secret-output"
    root = last_trace().spans[0]
    assert root.inputs == {"x": 1}
    assert root.outputs is None

    assert list(no_outputs_gen()) == ["secret-item"]
    assert last_trace().spans[0].outputs is None
    assert "secret" not in json.dumps(td.sql("SELECT * FROM spans").to_pylist(), default=str)


def test_capture_switches_via_configure(db_path: str) -> None:
    td.configure(db=db_path, capture_inputs=False, capture_outputs=False)

    @td.trace
    def f(x):
        return x + 1

    @td.trace(capture_inputs=True, capture_outputs=True)
    def opted_in(x):
        return x + 2

    assert f(1) == 2
    root = last_trace().spans[0]
    assert (root.inputs, root.outputs) == (None, None)

    assert opted_in(1) == 3
    root = last_trace().spans[0]
    assert (root.inputs, root.outputs) == ({"x": 1}, 3)

    td.configure(db=db_path)  # back to the defaults: capture on
    assert f(5) == 6
    root = last_trace().spans[0]
    assert (root.inputs, root.outputs) == ({"x": 5}, 6)


# -- captured values ----------------------------------------------------------------------------


class Thing:
    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"<Thing {self.n}>"


def test_non_json_values_fall_back_to_repr() -> None:
    @td.trace
    def f(thing, nested):
        return Thing(thing.n + 1)

    result = f(Thing(7), {"t": Thing(1), "items": [Thing(2)]})
    assert isinstance(result, Thing) and result.n == 8
    root = last_trace().spans[0]
    assert root.inputs == {
        "thing": "<Thing 7>",
        "nested": {"t": "<Thing 1>", "items": ["<Thing 2>"]},
    }
    assert root.outputs == "<Thing 8>"


def test_huge_values_are_truncated_but_the_call_is_unchanged() -> None:
    @td.trace
    def echo(text):
        return text

    big = "x" * 300_000
    assert echo(big) is big
    flush()
    lengths = td.sql("SELECT length(inputs) AS i, length(outputs) AS o FROM spans").to_pylist()
    assert lengths[0]["i"] < 70_000
    assert lengths[0]["o"] < 70_000
    root = last_trace().spans[0]
    assert "truncated" in json.dumps(root.inputs)
    assert "truncated" in json.dumps(root.outputs)
    info = last_trace().info
    assert len(info.request_preview) <= 1000
    assert len(info.response_preview) <= 1000


def test_huge_containers_are_capped() -> None:
    @td.trace
    def total(values):
        return sum(values)

    values = list(range(100_000))
    assert total(values) == sum(values)
    flush()
    (row,) = td.sql("SELECT length(inputs) AS n FROM spans").to_pylist()
    assert row["n"] < 70_000


class _Endless(list):
    """A list whose iteration goes on (a lazily extended sequence); this one gives up, with an
    error, after a million items instead of hanging the test."""

    def __iter__(self) -> Iterator[int]:
        yield from range(1_000_000)
        raise RuntimeError("iterated to the end of an endless list")


def test_capture_reads_only_the_items_it_keeps() -> None:
    @td.trace
    def first(values):
        return values[0]

    # Capture keeps 1,000 items of a container; it copied the whole container first, so an
    # endless one hung the call and a list of 10 million cost ~100 ms a call.
    assert first(_Endless(["a"])) == "a"
    root = last_trace().spans[0]
    assert root.inputs["values"] == list(range(1000))


def test_containers_holding_themselves_or_shared_parts_are_captured_in_bounded_time() -> None:
    @td.trace
    def size(values):
        return len(values)

    # Each level holds the level below twice: 2**20 items to the depth limit, which capture
    # walked (~2 s a call; three times, 3**20: it hung); a list holding itself is the same.
    shared: list[Any] = [0]
    for _ in range(25):
        shared = [shared, shared]
    looped: list[Any] = []
    looped.extend([looped, looped])
    for value in (shared, looped):
        started = time.perf_counter()
        assert size(value) == 2
        assert time.perf_counter() - started < 0.5
    flush()
    assert count("traces") == 2


def test_mutable_arguments_are_recorded_as_they_were_at_call_time() -> None:
    @td.trace
    def append_one(items, opts):
        items.append("added inside")
        opts["seen"] = True
        return items

    items = ["a"]
    opts = {"k": 1}
    result = append_one(items, opts)
    items.append("added after")
    result.append("also after")
    opts["later"] = 2
    root = last_trace().spans[0]
    assert root.inputs == {"items": ["a"], "opts": {"k": 1}}
    assert root.outputs == ["a", "added inside"]


def test_yielded_mutable_items_are_recorded_as_they_were_when_yielded() -> None:
    @td.trace
    def progress():
        state = {"n": 0}
        for _ in range(2):
            state["n"] += 1
            yield state  # the same object, changed between yields (a common streaming idiom)

    seen = []
    for item in progress():
        seen.append(dict(item))
    assert seen == [{"n": 1}, {"n": 2}]
    assert last_trace().spans[0].outputs == [{"n": 1}, {"n": 2}]
