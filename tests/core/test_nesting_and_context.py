"""Nested calls form one trace; context follows threads (copied context), asyncio tasks,
start_span blocks and plain OpenTelemetry spans."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading

from opentelemetry import trace as otel_trace

import traceduck as td

from ._helpers import count, flush, last_trace, span


def test_nested_calls_form_one_trace_with_correct_parents() -> None:
    @td.trace
    def leaf(x):
        return x + 1

    @td.trace
    def branch(x):
        return leaf(x) + leaf(x)

    @td.trace
    def root(x):
        return branch(x) + leaf(x)

    assert root(1) == 6
    trace = last_trace()
    assert trace.info.name == "root"
    assert trace.info.span_count == 5
    assert len(trace.spans) == 5
    assert {s.trace_id for s in trace.spans} == {trace.info.trace_id}
    root_span = trace.spans[0]
    assert root_span.name == "root" and root_span.parent_id is None
    branch_span = span(trace, "branch")
    assert branch_span.parent_id == root_span.span_id
    leaves = [s for s in trace.spans if s.name == "leaf"]
    assert sorted(s.parent_id for s in leaves) == sorted(
        [branch_span.span_id, branch_span.span_id, root_span.span_id]
    )
    # tree order: each span comes after its parent
    seen: set[str] = set()
    for s in trace.spans:
        assert s.parent_id is None or s.parent_id in seen
        seen.add(s.span_id)
    # children are inside their parent in time
    for s in trace.spans:
        if s.parent_id:
            parent = next(p for p in trace.spans if p.span_id == s.parent_id)
            assert parent.start_time_ns <= s.start_time_ns <= s.end_time_ns <= parent.end_time_ns
    assert count("traces") == 1


def test_start_span_mixed_with_decorated_calls() -> None:
    @td.trace
    def tool(q):
        with td.start_span("lookup", span_type="RETRIEVER", attributes={"index": "docs"}) as s:
            s.set_inputs({"q": q})
            result = helper(q)
            s.set_outputs(result)
        return result

    @td.trace
    def helper(q):
        return [q, q]

    with td.start_span("request", span_type="CHAIN") as outer:
        outer.set_inputs({"user": "u1"})
        assert tool("duck") == ["duck", "duck"]
        outer.set_outputs("done")

    trace = last_trace()
    assert trace.info.name == "request"
    assert [s.name for s in trace.spans] == ["request", "tool", "lookup", "helper"]
    request, tool_span, lookup, helper_span = trace.spans
    assert tool_span.parent_id == request.span_id
    assert lookup.parent_id == tool_span.span_id
    assert helper_span.parent_id == lookup.span_id
    assert request.span_type == "CHAIN"
    assert lookup.span_type == "RETRIEVER"
    assert lookup.attributes["index"] == "docs"
    assert lookup.inputs == {"q": "duck"}
    assert lookup.outputs == ["duck", "duck"]
    assert request.inputs == {"user": "u1"}
    assert request.outputs == "done"


def test_start_span_object_methods_land_in_the_store() -> None:
    with td.start_span("step") as s:
        assert s.trace_id == td.get_current_trace_id()
        s.set_attribute("model", "m-1")
        s.set_attributes({"temperature": 0.7, "stop": ["\n"], "cfg": {"a": 1}})
        s.add_event("retry", {"attempt": 2, "reason": "timeout"})
        s.set_status("ERROR", "quota exceeded")
    trace = last_trace()
    root = trace.spans[0]
    assert root.span_id == s.span_id
    assert root.attributes["model"] == "m-1"
    assert root.attributes["temperature"] == 0.7
    assert root.attributes["stop"] == ["\n"]
    assert root.attributes["cfg"] == {"a": 1}
    (event,) = root.events
    assert event["name"] == "retry"
    assert event["attributes"] == {"attempt": 2, "reason": "timeout"}
    assert root.status == "ERROR"
    assert root.status_message == "quota exceeded"
    assert trace.info.status == "ERROR"


def test_plain_opentelemetry_spans_join_the_trace() -> None:
    tracer = otel_trace.get_tracer("other.instrumentation")

    @td.trace
    def leaf():
        return td.get_current_trace_id()

    @td.trace
    def root():
        with tracer.start_as_current_span("http.request") as otel_span:
            otel_span.set_attribute("http.method", "GET")
            return leaf()

    trace_id = root()
    trace = last_trace()
    assert trace.info.trace_id == trace_id
    assert [s.name for s in trace.spans] == ["root", "http.request", "leaf"]
    root_span, http, leaf_span = trace.spans
    assert http.parent_id == root_span.span_id
    assert leaf_span.parent_id == http.span_id
    assert http.attributes["http.method"] == "GET"


def test_decorated_call_under_a_plain_opentelemetry_root_joins_it() -> None:
    tracer = otel_trace.get_tracer("web.framework")

    @td.trace
    def handler():
        return td.get_current_trace_id()

    with tracer.start_as_current_span("GET /items") as root:
        trace_id = handler()
    assert trace_id == format(root.get_span_context().trace_id, "032x")
    flush()
    trace = td.get_trace(trace_id)
    assert trace.info.name == "GET /items"
    assert [s.name for s in trace.spans] == ["GET /items", "handler"]
    assert trace.spans[1].parent_id == trace.spans[0].span_id


def test_threads_started_with_a_copied_context_stay_in_the_trace() -> None:
    @td.trace
    def worker(i):
        td.update_current_trace(tags={f"worker_{i}": i})
        return td.get_current_trace_id()

    results: dict[int, str | None] = {}

    @td.trace
    def root():
        threads = []
        for i in range(3):
            ctx = contextvars.copy_context()
            t = threading.Thread(target=ctx.run, args=(lambda i=i: results.update({i: worker(i)}),))
            threads.append(t)
            t.start()
        for t in threads:
            t.join(10)
        return td.get_current_trace_id()

    trace_id = root()
    assert set(results.values()) == {trace_id}
    trace = last_trace()
    assert trace.info.trace_id == trace_id
    assert trace.info.span_count == 4
    root_span = trace.spans[0]
    workers = [s for s in trace.spans if s.name == "worker"]
    assert len(workers) == 3
    assert all(w.parent_id == root_span.span_id for w in workers)
    assert sorted(w.inputs["i"] for w in workers) == [0, 1, 2]
    assert trace.info.tags == {"worker_0": 0, "worker_1": 1, "worker_2": 2}


def test_a_thread_without_the_copied_context_starts_its_own_trace() -> None:
    @td.trace
    def background():
        return td.get_current_trace_id()

    out: list[str | None] = []

    @td.trace
    def root():
        t = threading.Thread(target=lambda: out.append(background()))
        t.start()
        t.join(10)
        return td.get_current_trace_id()

    trace_id = root()
    flush()
    assert out[0] is not None and out[0] != trace_id
    assert td.get_trace(out[0]).info.name == "background"
    assert td.get_trace(trace_id).info.span_count == 1


def test_asyncio_tasks_stay_in_the_trace() -> None:
    @td.trace
    async def fetch(i):
        await asyncio.sleep(0.01 * (3 - i))
        td.update_current_trace(metadata={f"fetched_{i}": True})
        return td.get_current_trace_id()

    @td.trace
    async def root():
        ids = await asyncio.gather(*(fetch(i) for i in range(3)))
        task = asyncio.create_task(fetch(9))
        ids.append(await task)
        return td.get_current_trace_id(), ids

    trace_id, ids = asyncio.run(root())
    assert set(ids) == {trace_id}
    trace = last_trace()
    assert trace.info.trace_id == trace_id
    assert trace.info.span_count == 5
    root_span = trace.spans[0]
    assert all(s.parent_id == root_span.span_id for s in trace.spans[1:])
    assert sorted(s.inputs["i"] for s in trace.spans[1:]) == [0, 1, 2, 9]
    assert {k for k in trace.info.metadata if k.startswith("fetched_")} == {
        "fetched_0",
        "fetched_1",
        "fetched_2",
        "fetched_9",
    }


def test_get_current_trace_id_inside_and_outside() -> None:
    assert td.get_current_trace_id() is None

    @td.trace
    def f():
        return td.get_current_trace_id()

    trace_id = f()
    assert isinstance(trace_id, str) and len(trace_id) == 32
    int(trace_id, 16)
    assert td.get_current_trace_id() is None
    with td.start_span("s"):
        inside = td.get_current_trace_id()
    assert inside is not None and inside != trace_id
    assert td.get_current_trace_id() is None


def test_get_last_trace_id_is_the_last_finished_trace_in_the_process() -> None:
    @td.trace
    def child():
        return None

    @td.trace
    def root():
        before = td.get_last_trace_id()
        child()
        # a finished child is not a finished trace
        assert td.get_last_trace_id() == before
        return td.get_current_trace_id()

    first = root()
    assert td.get_last_trace_id() == first
    second = root()
    assert td.get_last_trace_id() == second != first

    out: list[str | None] = []
    t = threading.Thread(target=lambda: out.append(root()))
    t.start()
    t.join(10)
    assert td.get_last_trace_id() == out[0]  # process-wide, any thread

    with td.start_span("block"):
        block_id = td.get_current_trace_id()
    assert td.get_last_trace_id() == block_id
    assert td.get_last_active_trace_id() == block_id
    flush()
    assert td.get_trace(block_id).info.name == "block"


def test_get_current_span_outside_a_trace_is_none() -> None:
    assert td.get_current_span() is None


def test_get_current_span_inside_a_decorated_call_writes_to_that_span() -> None:
    @td.trace
    def f():
        current = td.get_current_span()
        assert current is not None
        current.set_attribute("cache_hit", True)
        current.set_attributes({"tokens": 12})
        current.add_event("checkpoint", {"n": 1})
        return current.span_id, current.trace_id

    span_id, trace_id = f()
    trace = last_trace()
    assert trace.info.trace_id == trace_id
    root = trace.spans[0]
    assert root.span_id == span_id
    assert root.attributes["cache_hit"] is True
    assert root.attributes["tokens"] == 12
    assert [e["name"] for e in root.events] == ["checkpoint"]


def test_get_current_span_set_outputs_lands_in_the_store() -> None:
    @td.trace(capture_outputs=False)
    def streamed():
        td.get_current_span().set_outputs({"text": "assembled"})
        return None

    streamed()
    assert last_trace().spans[0].outputs == {"text": "assembled"}

    with td.start_span("block"):
        td.get_current_span().set_inputs({"q": 1})
        td.get_current_span().set_outputs([1, 2])
    root = last_trace().spans[0]
    assert (root.inputs, root.outputs) == ({"q": 1}, [1, 2])


def test_get_current_span_inside_a_plain_opentelemetry_span() -> None:
    tracer = otel_trace.get_tracer("other")

    @td.trace
    def root():
        with tracer.start_as_current_span("plain"):
            current = td.get_current_span()
            current.set_attribute("k", "v")
            current.set_outputs({"x": 1})

    root()
    plain = span(last_trace(), "plain")
    assert plain.attributes["k"] == "v"
    assert plain.outputs == {"x": 1}


def test_concurrent_traces_in_many_threads_stay_separate() -> None:
    @td.trace
    def inner(worker, n):
        td.update_current_trace(tags={"worker": worker, "n": n})
        return td.get_current_trace_id()

    @td.trace
    def job(worker, n):
        return inner(worker, n)

    results: dict[tuple[int, int], str] = {}

    def run(worker):
        for n in range(50):
            results[(worker, n)] = job(worker, n)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    flush()
    assert len(set(results.values())) == 400
    assert count("traces") == 400
    assert count("traces", "WHERE span_count = 2") == 400
    rows = td.sql("SELECT trace_id, tags FROM traces").to_pylist()
    by_id = {r["trace_id"]: json.loads(r["tags"]) for r in rows}
    for (worker, n), trace_id in results.items():
        assert by_id[trace_id] == {"worker": worker, "n": n}
