"""The exporter reads the SDK's span fields directly; any other span object, read through the
public ReadableSpan properties, gives the same stored row."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from traceduck._export._convert import span_row


class PropertiesOnly:
    """A span as a wrapper library might hand it on: the public properties, no SDK fields."""

    def __init__(self, span: ReadableSpan) -> None:
        self._span = span

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._span, name)


def _finished_spans() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "convert-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("convert-test")
    child_attrs = {"traceduck.inputs": '{"q": 1}', "tags": ("x", "y")}
    with (
        tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={"a": 1}),
        tracer.start_as_current_span("child", attributes=child_attrs) as child,
    ):
        child.add_event("retry", {"attempt": 2})
        child.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_a_span_read_through_its_properties_gives_the_same_row() -> None:
    for span in _finished_spans():
        row, is_root, attrs = span_row(span)
        assert span_row(PropertiesOnly(span)) == (row, is_root, attrs)  # type: ignore[arg-type]


def test_the_row_holds_what_the_span_says() -> None:
    child, root = _finished_spans()
    row, is_root, _ = span_row(child)
    assert not is_root
    assert row[3] == "child"
    assert row[5:7] == ("ERROR", "boom")
    assert row[10] == "INTERNAL"
    assert row[11] == "convert-test"
    assert row[12] == '{"tags":["x","y"]}'
    assert row[13] == '{"q": 1}'
    assert '"name":"retry"' in row[15] and '"attempt":2' in row[15]
    row, is_root, attrs = span_row(root)
    assert is_root and row[2] is None and row[10] == "SERVER" and attrs == {"a": 1}
