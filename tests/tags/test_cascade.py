"""Cascade tags: on every span under the one where they are set, and carried in W3C baggage to
threads and to another process that receives the context in HTTP headers."""

from __future__ import annotations

import contextvars
import json
import subprocess
import threading
import urllib.request
from pathlib import Path

from opentelemetry import baggage, propagate

import traceduck as td

from .conftest import PYTHON, child_env, last_trace

ATTR = "traceduck.tag."


def _tagged(span: td.Span) -> dict:
    return {k[len(ATTR) :]: v for k, v in span.attributes.items() if k.startswith(ATTR)}


def test_a_cascade_tag_set_in_the_root_is_on_every_span_and_is_a_trace_tag() -> None:
    @td.trace
    def leaf() -> int:
        return 1

    @td.trace
    def middle() -> int:
        with td.start_span("block"):
            return leaf()

    @td.trace(tags=[td.Tag("tenant", "acme", cascade=True), "plain-label"])
    def root() -> int:
        return middle() + leaf()

    root()
    trace = last_trace()
    assert trace.info.tags == {"tenant": "acme", "plain-label": True}
    assert len(trace.spans) == 5
    assert sorted(s.name for s in trace.spans) == ["block", "leaf", "leaf", "middle", "root"]
    assert all(_tagged(s) == {"tenant": "acme"} for s in trace.spans)
    found = td.search_traces(
        "span.name = 'block' AND span.attributes.`traceduck.tag.tenant` = 'acme'"
    )
    assert [t.info.trace_id for t in found] == [trace.info.trace_id]


def test_a_cascade_tag_set_live_covers_the_spans_under_it_not_its_siblings() -> None:
    @td.trace
    def leaf() -> None:
        return None

    @td.trace
    def first() -> None:
        td.update_current_trace(tags=[td.Tag("cost", 3.5, cascade=True)])
        leaf()

    @td.trace
    def second() -> None:
        return None

    @td.trace
    def root() -> None:
        first()
        second()

    root()
    trace = last_trace()
    assert trace.info.tags == {"cost": 3.5}
    stamped = {s.name: _tagged(s) for s in trace.spans}
    assert stamped == {"root": {}, "first": {"cost": 3.5}, "leaf": {"cost": 3.5}, "second": {}}
    assert len(td.search_traces("tags.cost > 3")) == 1


def test_traces_without_cascade_tags_carry_no_tag_attributes() -> None:
    @td.trace(tags={"env": "dev"})
    def root() -> None:
        with td.start_span("inner"):
            pass

    root()
    assert all(_tagged(s) == {} for s in last_trace().spans)


def test_a_thread_with_the_copied_context_inherits_the_cascade_tag() -> None:
    @td.trace
    def worker() -> None:
        return None

    @td.trace(tags=[td.Tag("batch", {"id": 7, "kind": "nightly"}, cascade=True)])
    def root() -> None:
        ctx = contextvars.copy_context()
        thread = threading.Thread(target=ctx.run, args=(worker,))
        thread.start()
        thread.join()

    root()
    trace = last_trace()
    assert {s.name: _tagged(s) for s in trace.spans} == {
        "root": {"batch": {"id": 7, "kind": "nightly"}},
        "worker": {"batch": {"id": 7, "kind": "nightly"}},
    }


def test_the_cascade_tag_travels_in_the_baggage_header_typed() -> None:
    headers: dict[str, str] = {}

    @td.trace(tags=[td.Tag("tenant", "acme", cascade=True), td.Tag("tier", 2, cascade=True)])
    def client() -> None:
        td.update_current_trace(tags=[td.Tag("flag", "true", cascade=True)])  # a string
        propagate.inject(headers)

    client()
    assert "traceparent" in headers
    extracted = baggage.get_all(propagate.extract(headers))
    assert extracted == {
        "traceduck.tag.tenant": "acme",
        "traceduck.tag.tier": "2",
        "traceduck.tag.flag": '"true"',
    }


def test_a_sampled_out_trace_still_carries_its_cascade_tags_downstream(db_path: str) -> None:
    # A service downstream that samples for itself records the tags on its own trace.
    td.configure(db=db_path, sample_ratio=0.0)
    headers: dict[str, str] = {}

    @td.trace(tags=[td.Tag("tenant", "acme", cascade=True)])
    def client() -> None:
        td.update_current_trace(tags=[td.Tag("tier", 2, cascade=True)])
        propagate.inject(headers)

    client()
    td.flush()
    assert baggage.get_all(propagate.extract(headers)) == {
        "traceduck.tag.tenant": "acme",
        "traceduck.tag.tier": "2",
    }
    assert td.search_traces(max_results=10) == []  # and nothing of it was recorded here


def test_a_second_process_receiving_the_context_over_http_carries_the_tags(
    tmp_path: Path,
) -> None:
    service_db = str(tmp_path / "service.duckdb")
    server = subprocess.Popen(
        [PYTHON, str(Path(__file__).with_name("_http_service.py")), service_db],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
        text=True,
    )
    try:
        port = int(server.stdout.readline())

        @td.trace(tags=[td.Tag("tenant", "acme", cascade=True)])
        def client() -> str:
            td.update_current_trace(tags=[td.Tag("cost", 3.5, cascade=True)])
            headers: dict[str, str] = {}
            propagate.inject(headers)
            request = urllib.request.Request(f"http://127.0.0.1:{port}/item", headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read().decode()

        remote_trace_id = client()
        client_trace = last_trace()
        server.stdin.close()
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stdout.close()

    # The service's part of the same trace: every span carries the tags, and so does the trace.
    assert remote_trace_id == client_trace.info.trace_id
    service = td.TraceStore(service_db)
    handled = service.get_trace(remote_trace_id)
    assert handled.info.tags == {"tenant": "acme", "cost": 3.5}
    assert {s.name for s in handled.spans} == {"handle", "lookup"}
    assert all(_tagged(s) == {"tenant": "acme", "cost": 3.5} for s in handled.spans)
    # A new trace started there from the baggage alone has them as its own tags too.
    jobs = service.search_traces("name = 'queued_job'")
    assert len(jobs) == 1
    assert jobs[0].info.trace_id != remote_trace_id
    assert jobs[0].info.tags == {"tenant": "acme", "cost": 3.5}
    assert len(service.search_traces("tags.tenant = 'acme' AND tags.cost > 3")) == 2


def test_a_hand_written_baggage_entry_becomes_a_tag_and_foreign_entries_are_ignored() -> None:
    from opentelemetry import context

    headers = {"baggage": "traceduck.tag.tenant=acme,traceduck.tag.n=3,other=1,traceduck.tag.=x"}
    token = context.attach(propagate.extract(headers))
    try:

        @td.trace
        def job() -> None:
            with td.start_span("inner"):
                pass

        job()
    finally:
        context.detach(token)
    trace = last_trace()
    assert trace.info.tags == {"tenant": "acme", "n": 3}
    assert all(_tagged(s) == {"tenant": "acme", "n": 3} for s in trace.spans)


def test_an_inner_cascade_tag_overrides_an_outer_one_with_its_own_type() -> None:
    @td.trace
    def leaf() -> None:
        return None

    @td.trace(tags=[td.Tag("cfg", "123", cascade=True), td.Tag("step", {"n": 2}, cascade=True)])
    def inner() -> None:
        leaf()

    @td.trace(tags=[td.Tag("cfg", {"a": 1}, cascade=True), td.Tag("batch", [1, 2], cascade=True)])
    def root() -> None:
        inner()
        leaf()

    root()
    trace = last_trace()
    outer = {"cfg": {"a": 1}, "batch": [1, 2]}
    under_inner = {"cfg": "123", "batch": [1, 2], "step": {"n": 2}}  # "123" stays a string
    ids = {s.span_id: s.name for s in trace.spans}
    stamped = sorted((s.name, ids.get(s.parent_id), _tagged(s)) for s in trace.spans)
    assert stamped == [
        ("inner", "root", under_inner),
        ("leaf", "inner", under_inner),
        ("leaf", "root", outer),
        ("root", None, outer),
    ]
    assert trace.info.tags == under_inner  # the last value set per key


def test_the_last_value_of_a_repeated_cascade_key_wins_with_its_type() -> None:
    @td.trace
    def leaf() -> None:
        return None

    @td.trace(tags=[td.Tag("k", [1], cascade=True), td.Tag("k", "7", cascade=True)])
    def root() -> None:
        leaf()

    root()
    trace = last_trace()
    assert trace.info.tags == {"k": "7"}
    assert [_tagged(s) for s in trace.spans] == [{"k": "7"}, {"k": "7"}]


# Strings that json.loads would read as something else, plain strings, and non-strings.
TRICKY_VALUES: list[object] = [
    "acme", "123", " 42", "\t[1]", "NaN", "-Infinity", "null", "true", "", "-", "nul", "é ü",
    '"q"', "{", 3.5, -2, True, None, [1, "a"], {"x": None},
]  # fmt: skip


def test_every_value_reaches_the_spans_under_the_tag_with_its_type() -> None:
    tags = [td.Tag(f"v{i}", value, cascade=True) for i, value in enumerate(TRICKY_VALUES)]
    expected = {f"v{i}": value for i, value in enumerate(TRICKY_VALUES)}

    @td.trace
    def leaf() -> None:
        return None

    @td.trace(tags=tags)
    def root() -> None:
        leaf()

    root()
    trace = last_trace()
    assert trace.info.tags == expected
    for span in trace.spans:
        tagged = _tagged(span)
        assert tagged == expected
        assert [type(tagged[k]) for k in expected] == [type(v) for v in TRICKY_VALUES]


def test_a_generators_cascade_tag_is_on_the_spans_it_starts() -> None:
    import asyncio

    @td.trace
    def leaf() -> int:
        return 1

    @td.trace(tags=[td.Tag("stream", "sync", cascade=True)])
    def numbers() -> object:
        yield leaf()
        yield leaf()

    @td.trace(tags=[td.Tag("stream", "async", cascade=True)])
    async def anumbers() -> object:
        yield leaf()

    assert list(numbers()) == [1, 1]
    trace = last_trace()
    assert [_tagged(s) for s in trace.spans] == [{"stream": "sync"}] * 3

    async def consume() -> list[int]:
        return [x async for x in anumbers()]

    assert asyncio.run(consume()) == [1]
    trace = last_trace()
    assert [_tagged(s) for s in trace.spans] == [{"stream": "async"}] * 2


OTHER_PROCESSOR = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

memory = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(memory))
trace.set_tracer_provider(provider)

import traceduck as td
td.configure(db="t.duckdb")

@td.trace
def child():
    with trace.get_tracer("app").start_as_current_span("app.span"):
        pass

@td.trace(tags=[td.Tag("tenant", "acme", cascade=True), td.Tag("ids", [1, 2], cascade=True)])
def root():
    child()

root()
assert td.flush(timeout_s=20)
print(json.dumps({s.name: {k: v for k, v in s.attributes.items() if k.startswith("traceduck.")}
                  for s in memory.get_finished_spans()}))
"""


def test_the_apps_own_span_processor_sees_the_cascade_attributes(tmp_path: Path) -> None:
    proc = subprocess.run(
        [PYTHON, "-c", OTHER_PROCESSOR],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    stamped = {
        "traceduck.tag.tenant": "acme",
        "traceduck.tag.ids": "[1,2]",
        "traceduck.json_keys": ["traceduck.tag.ids"],
    }
    assert seen == {"root": stamped, "child": stamped, "app.span": stamped}
