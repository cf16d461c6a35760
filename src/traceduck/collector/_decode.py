"""OTLP trace requests (protobuf or JSON bytes) -> OpenTelemetry SDK ``ReadableSpan`` objects.

The collector hands the spans to the same ``DuckDBSpanExporter`` an in-process app uses, so a
span means the same thing whichever way it arrived. Spans that cannot be stored (a trace id that
is not 16 bytes, a span id that is not 8) are counted as rejected, as OTLP's partial success
asks, and the rest of the request is kept.

Parents: within one request a span whose parent is in the same request waits for it (so a
request's trace fragment is written as one piece); a span whose parent is elsewhere is handed on
as a local root with a remote parent, so nothing waits in memory for a parent that may never
come. The store merges the pieces of a trace that arrive in different requests.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

__all__ = ["BadRequest", "Decoded", "decode_json", "decode_protobuf", "response"]

_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_STATUS = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}
_UNSET = Status(StatusCode.UNSET)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")


class BadRequest(ValueError):
    """The payload is not an OTLP trace request (garbage, truncated, wrong JSON)."""


@dataclass
class Decoded:
    """The spans of one request, in the order to export them, and what was rejected."""

    spans: list[ReadableSpan] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def error_message(self) -> str:
        if not self.errors:
            return ""
        more = f" (and {len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
        return "; ".join(self.errors[:3]) + more


def decode_protobuf(body: bytes) -> Decoded:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise BadRequest(f"not an OTLP ExportTraceServiceRequest protobuf: {exc}") from None
    return decode_request(request)


def decode_json(body: bytes) -> Decoded:
    """OTLP/JSON: ids are hex strings (protobuf's JSON mapping would want base64)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("an OTLP/JSON request is a JSON object with 'resourceSpans'")
    _hex_ids_to_base64(data)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise BadRequest(f"not an OTLP/JSON trace request: {exc}") from None
    return decode_request(request)


def response(decoded: Decoded) -> ExportTraceServiceResponse:
    """The OTLP response: empty on full success, partial_success when spans were rejected."""
    out = ExportTraceServiceResponse()
    if decoded.rejected:
        out.partial_success.rejected_spans = decoded.rejected
        out.partial_success.error_message = decoded.error_message()
    return out


def decode_request(request: ExportTraceServiceRequest) -> Decoded:
    out = Decoded()
    valid: list[tuple[Any, Resource, InstrumentationScope]] = []
    for resource_spans in request.resource_spans:
        resource = Resource(_attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            instrumentation = InstrumentationScope(
                scope.name, scope.version or None, scope_spans.schema_url or None
            )
            for span in scope_spans.spans:
                problem = _invalid(span)
                if problem:
                    out.rejected += 1
                    out.errors.append(problem)
                else:
                    valid.append((span, resource, instrumentation))
    present = {(s.trace_id, s.span_id) for s, _, _ in valid}
    roots: list[ReadableSpan] = []
    for span, resource, scope in valid:
        parent_bytes = span.parent_span_id
        waits = bool(parent_bytes) and (span.trace_id, parent_bytes) in present
        readable = _readable(span, resource, scope, waits)
        (out.spans if waits else roots).append(readable)
    # A fragment's spans before its root: the exporter writes the fragment when the root comes.
    out.spans.extend(roots)
    return out


def _readable(span: Any, resource: Resource, scope: InstrumentationScope, waits: bool) -> Any:
    trace_id = int.from_bytes(span.trace_id, "big")
    parent_bytes = span.parent_span_id
    parent = None
    if parent_bytes and any(parent_bytes):
        parent = SpanContext(trace_id, int.from_bytes(parent_bytes, "big"), is_remote=not waits)
    status = span.status
    return ReadableSpan(
        name=span.name,
        context=SpanContext(trace_id, int.from_bytes(span.span_id, "big"), False, _SAMPLED),
        parent=parent,
        resource=resource,
        attributes=_attributes(span.attributes),
        events=[
            Event(e.name, _attributes(e.attributes), e.time_unix_nano or None) for e in span.events
        ],
        links=[_link(link) for link in span.links if len(link.trace_id) == 16],
        kind=_KINDS.get(span.kind, SpanKind.INTERNAL),
        status=Status(_STATUS.get(status.code, StatusCode.UNSET), status.message or None)
        if status.code or status.message
        else _UNSET,
        start_time=span.start_time_unix_nano,
        end_time=max(span.end_time_unix_nano, span.start_time_unix_nano),
        instrumentation_scope=scope,
    )


def _invalid(span: Any) -> str | None:
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return f"span {span.name!r}: trace id must be 16 bytes, not all zero"
    if len(span.span_id) != 8 or not any(span.span_id):
        return f"span {span.name!r}: span id must be 8 bytes, not all zero"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return f"span {span.name!r}: parent span id must be empty or 8 bytes"
    return None


def _link(link: Any) -> Link:
    context = SpanContext(
        int.from_bytes(link.trace_id, "big"), int.from_bytes(link.span_id or b"\0", "big"), True
    )
    return Link(context, _attributes(link.attributes))


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        return value.double_value
    if which == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def _hex_ids_to_base64(data: dict[str, Any]) -> None:
    """Rewrite OTLP/JSON hex ids in place into the base64 protobuf's JSON parser expects."""
    for resource_spans in _list(data.get("resourceSpans", data.get("resource_spans"))):
        if not isinstance(resource_spans, dict):
            continue
        scopes = resource_spans.get("scopeSpans", resource_spans.get("scope_spans"))
        for scope_spans in _list(scopes):
            if not isinstance(scope_spans, dict):
                continue
            for span in _list(scope_spans.get("spans")):
                if not isinstance(span, dict):
                    continue
                _fix_ids(span)
                for link in _list(span.get("links")):
                    if isinstance(link, dict):
                        _fix_ids(link)


def _fix_ids(obj: dict[str, Any]) -> None:
    for key in _ID_FIELDS:
        value = obj.get(key)
        if isinstance(value, str):
            try:
                obj[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError:
                raise BadRequest(f"{key} {value[:40]!r} is not hex") from None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
