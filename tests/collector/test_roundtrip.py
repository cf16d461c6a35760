"""Round trip with the stock OTLP exporter: an app traced with traceduck (or plain OpenTelemetry)
sends to a real `traceduck collector`; the collector's store holds the same traces."""

from __future__ import annotations

import json

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from traceduck import TraceStore
from traceduck.collector import Collector

from .conftest import run_python

TAGS = {
    "int": 7,
    "float": 2.5,
    "bool": True,
    "str": "prod",
    "json_looking_str": "[1, 2]",
    "list": [1, 2, 3],
    "str_list": ["a", "b"],
    "mixed_list": [1, "a", None],
    "empty_list": [],
    "dict": {"a": 1, "b": [True, None]},
    "none": None,
    "big_int": 2**70,
}
METADATA = {"user": "u1", "cost": 0.25, "flags": {"beta": True}, "n": None, "ids": [3, 4]}

APP = """
import json, sys
import traceduck as td
td.configure(db={local!r}, otlp_endpoint={endpoint!r}, otlp_protocol={protocol!r},
             service_name="shop")

@td.trace(span_type="TOOL")
def lookup(item, qty=1):
    return {{"item": item, "qty": qty}}

@td.trace(span_type="CHAIN")
def handle(order):
    td.update_current_trace(tags=json.loads({tags!r}), metadata=json.loads({metadata!r}))
    return [lookup(i, qty=2) for i in order]

@td.trace
def fails():
    raise ValueError("boom")

ids = []
for n in range(3):
    handle(["apple", "pear"][: n + 1])
    ids.append(td.get_last_trace_id())
try:
    fails()
except ValueError:
    ids.append(td.get_last_trace_id())
assert td.flush(10)
print(json.dumps(ids))
"""


def _comparable(trace):
    spans = sorted(
        (
            s.span_id,
            s.parent_id,
            s.name,
            s.span_type,
            s.status,
            s.status_message,
            s.start_time_ns,
            s.end_time_ns,
            json.dumps(s.inputs, sort_keys=True),
            json.dumps(s.outputs, sort_keys=True),
            s.service_name,
        )
        for s in trace.spans
    )
    info = trace.info
    return spans, info.name, info.status, info.span_count, info.tags, info.metadata


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_traceduck_app_round_trip(collector: Collector, db: str, tmp_path, protocol: str) -> None:
    local = str(tmp_path / "local.duckdb")
    endpoint = (
        f"http://127.0.0.1:{collector.http_port}"
        if protocol == "http/protobuf"
        else f"http://{collector.grpc_endpoint}"
    )
    code = APP.format(
        local=local,
        endpoint=endpoint,
        protocol=protocol,
        tags=json.dumps(TAGS),
        metadata=json.dumps(METADATA),
    )
    ids = json.loads(run_python(code))
    remote = TraceStore(db)
    mine = TraceStore(local, read_only=True)
    for trace_id in ids:
        got, want = remote.get_trace(trace_id), mine.get_trace(trace_id)
        assert _comparable(got) == _comparable(want)
    handled = remote.get_trace(ids[2])
    assert handled.info.tags == TAGS  # types kept: ints, floats, bools, lists, dicts, null
    assert type(handled.info.tags["float"]) is float and type(handled.info.tags["int"]) is int
    for key, value in METADATA.items():
        assert handled.info.metadata[key] == value
    assert handled.info.service_name == "shop"
    assert [s.span_type for s in handled.spans] == ["CHAIN", "TOOL", "TOOL"]
    assert handled.spans[1].inputs == {"item": "apple", "qty": 2}
    assert handled.info.span_count == 3
    failed = remote.get_trace(ids[3])
    assert failed.info.status == "ERROR" and "boom" in (failed.info.status_message or "")
    assert [e["name"] for e in failed.spans[0].events] == ["exception"]
    found = remote.search_traces("tags.str = 'prod' AND tags.int = 7")
    assert sorted(t.info.trace_id for t in found) == sorted(ids[:3])


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_plain_opentelemetry_spans_arrive(collector: Collector, db: str, protocol: str) -> None:
    exporter = (
        HttpExporter(endpoint=collector.http_endpoint)
        if protocol == "http/protobuf"
        else GrpcExporter(endpoint=collector.grpc_endpoint, insecure=True)
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "plain"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("plain-otel")
    with tracer.start_as_current_span("GET /items", attributes={"http.status_code": 500}) as root:
        with tracer.start_as_current_span("db.query", attributes={"db.rows": [1, 2]}) as child:
            child.add_event("retry", {"attempt": 2})
        # Tags set by any SDK with plain attributes, typed by the documented encoding.
        root.set_attribute("traceduck.tag.env", "prod")
        root.set_attribute("traceduck.tag.owner", '{"team": "search"}')
        root.set_attribute("traceduck.json_keys", ["traceduck.tag.owner"])
        root.set_status(Status(StatusCode.ERROR, "upstream failed"))
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert provider.force_flush(10_000)
    provider.shutdown()
    trace = TraceStore(db).get_trace(trace_id)
    assert [s.name for s in trace.spans] == ["GET /items", "db.query"]
    assert trace.info.tags == {"env": "prod", "owner": {"team": "search"}}
    assert trace.info.status == "ERROR" and trace.info.status_message == "upstream failed"
    assert trace.info.service_name == "plain"
    root_span, child_span = trace.spans
    assert root_span.attributes["http.status_code"] == 500
    assert child_span.attributes["db.rows"] == [1, 2]
    assert child_span.parent_id == root_span.span_id
    assert child_span.events[0]["name"] == "retry"
    assert child_span.events[0]["attributes"] == {"attempt": 2}
