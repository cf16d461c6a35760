"""``ack="written"``: the answer says what became of the request's own traces.

The store's write is wrapped (as tests/core/test_resilience.py does) so that it refuses one
trace as bad data, or cannot take any for a while; everything else goes to the real DuckDB file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from traceduck import TraceStore
from traceduck.collector import Collector
from traceduck.errors import StorageError
from traceduck.store._records import WriteBatch

PROTOBUF = {"Content-Type": "application/x-protobuf"}
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _ids(batch: WriteBatch) -> set[str]:
    return {plain[1][0] for plain in batch.plain} | {row.trace_id for row in batch.traces}


def _request(names: list[str]) -> tuple[ExportTraceServiceRequest, list[str]]:
    """One-span traces named ``names``, and their trace ids."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    ids = []
    for name in names:
        span = scope.spans.add(name=name, trace_id=os.urandom(16), span_id=os.urandom(8))
        span.start_time_unix_nano, span.end_time_unix_nano = 1_000, 2_000
        ids.append(span.trace_id.hex())
    return request, ids


@pytest.fixture
def refusing(db: str) -> Iterator[tuple[Collector, set[str]]]:
    """A collector whose store refuses (as DuckDB refuses bad data) the trace ids in the set."""
    c = Collector(db, http_port=0, grpc_port=0, ack="written").start()
    refused: set[str] = set()
    sink = c.ingest.exporter.sink
    write = sink.write

    def refuse_some(batch: WriteBatch, timeout_s: float | None = None) -> None:
        if _ids(batch) & refused:
            raise ValueError("data the store refuses")
        write(batch, timeout_s=timeout_s)

    sink.write = refuse_some  # type: ignore[method-assign]
    try:
        yield c, refused
    finally:
        c.stop()


def _answer(content: bytes) -> ExportTraceServiceResponse:
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(content)
    return answer


def test_http_a_trace_the_store_refuses_is_a_rejected_span_not_a_success(
    refusing: tuple[Collector, set[str]], db: str
) -> None:
    c, refused = refusing
    request, ids = _request(["ok", "poison", "ok"])
    refused.add(ids[1])
    reply = requests.post(
        c.http_endpoint, data=request.SerializeToString(), headers=PROTOBUF, timeout=30
    )
    assert reply.status_code == 200
    answer = _answer(reply.content)
    assert answer.partial_success.rejected_spans == 1
    assert "refused" in answer.partial_success.error_message
    store = TraceStore(db)
    assert sorted(t.info.trace_id for t in store.search_traces()) == sorted([ids[0], ids[2]])
    stats = c.ingest.stats()
    assert (stats["accepted_spans"], stats["rejected_spans"]) == (2, 1)

    # The next request, all good, is a plain success: the refusal was this request's alone.
    fine, _ = _request(["ok"])
    reply = requests.post(
        c.http_endpoint, data=fine.SerializeToString(), headers=PROTOBUF, timeout=30
    )
    assert reply.status_code == 200
    assert not _answer(reply.content).HasField("partial_success")


def test_grpc_a_trace_the_store_refuses_is_a_rejected_span(
    refusing: tuple[Collector, set[str]], db: str
) -> None:
    c, refused = refusing
    request, ids = _request(["poison", "ok"])
    refused.add(ids[0])
    with grpc.insecure_channel(c.grpc_endpoint) as channel:
        call = channel.unary_unary(EXPORT)
        answer = _answer(call(request.SerializeToString(), timeout=30))
    assert answer.partial_success.rejected_spans == 1
    assert "refused" in answer.partial_success.error_message
    assert [t.info.trace_id for t in TraceStore(db).search_traces()] == [ids[1]]


def test_a_store_that_cannot_take_traces_is_a_retryable_error(db: str) -> None:
    """Traces dropped because the store cannot take them (here: it fails until shutdown
    drops them) are a 503 for the client to retry, never a success."""
    c = Collector(db, http_port=0, grpc_port=None, ack="written").start()
    c.ingest.write_timeout_s = 1.0

    def unwritable(batch: WriteBatch, timeout_s: float | None = None) -> None:
        raise StorageError("disk full")

    c.ingest.exporter.sink.write = unwritable  # type: ignore[method-assign]
    try:
        request, _ = _request(["ok"])
        reply = requests.post(
            c.http_endpoint, data=request.SerializeToString(), headers=PROTOBUF, timeout=30
        )
        assert reply.status_code == 503 and reply.headers["Retry-After"]
    finally:
        c.stop(timeout_s=3)
