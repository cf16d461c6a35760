"""OTLP trace requests (protobuf or JSON bytes) -> the store's rows, grouped per trace.

Each span becomes the same row tuple the in-process exporter builds from an SDK span (same
columns, same handling of ``traceduck.*`` attributes, tags and metadata rebuilt from the root's
attributes by ``_convert.root_labels``), built straight from the protobuf: building SDK
``ReadableSpan`` objects first and converting those cost twice as much per span. Spans that
cannot be stored (a trace id that is not 16 bytes, a span id that is not 8) are counted as
rejected, as OTLP's partial success asks, and the rest of the request is kept.

Each request's spans are grouped by trace into bundles the ``DuckDBSpanExporter`` writes; the
trace row comes from the trace's root when the request has it, else from the earliest of the
spans whose parent is elsewhere. Nothing waits in memory for a parent that may never come: the
store merges the pieces of a trace that arrive in different requests.
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

from .. import _json
from .._constants import (
    DEFAULT_EXPERIMENT,
    DEFAULT_SPAN_TYPE,
    EXCLUSIVE_KEYS_ATTR,
    INPUTS_ATTR,
    JSON_KEYS_ATTR,
    OUTPUTS_ATTR,
    SPAN_TYPE_ATTR,
    STATUS_ERROR,
    STATUS_OK,
)
from .._context import storable_metadata
from .._export._assembler import Bundle, QueuedTrace, RootLabels, make_bundle
from .._export._convert import decode_json_keys, json_text, root_experiment, root_labels
from ..errors import TagError
from ..store import _tagrules

__all__ = ["BadRequest", "Decoded", "decode_json", "decode_protobuf", "response"]

# OTLP span kinds (0 = unspecified) as the SDK's SpanKind names, which the store keeps.
_KINDS = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS_CODE_ERROR = 2
_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
_PARENT = 2  # row positions (SPAN_COLUMNS order)
_START = 7
_MAX_TIME_NS = 2**63 - 1  # OTLP times are fixed64; the store keeps int64 nanoseconds


class BadRequest(ValueError):
    """The payload is not an OTLP trace request (garbage, truncated, wrong JSON)."""


@dataclass
class Decoded:
    """One request's traces ready to write, and what was rejected."""

    bundles: list[Bundle | QueuedTrace] = field(default_factory=list)
    spans: int = 0
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
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("an OTLP/JSON request is a JSON object with 'resourceSpans'")
    _hex_ids_to_base64(data)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise BadRequest(f"not an OTLP/JSON trace request: {exc}") from None
    return decode_request(request)


def response(decoded: Decoded) -> ExportTraceServiceResponse:
    """The OTLP response: empty on full success, partial_success when spans were rejected
    (or, with rejected_spans 0, a warning: tags or metadata the store cannot keep were left out)."""
    out = ExportTraceServiceResponse()
    if decoded.rejected or decoded.errors:
        out.partial_success.rejected_spans = decoded.rejected
        out.partial_success.error_message = decoded.error_message()
    return out


def decode_request(request: ExportTraceServiceRequest) -> Decoded:
    out = Decoded()
    # trace id -> [(row, root attributes or None)]; a span is a root here when its parent is
    # not in this request (the true root has none).
    traces: dict[str, list[tuple[tuple[Any, ...], dict[str, Any] | None]]] = {}
    for resource_spans in request.resource_spans:
        service = None
        for kv in resource_spans.resource.attributes:
            if kv.key == "service.name":
                service = _value(kv.value)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                problem = _invalid(span)
                if problem:
                    out.rejected += 1
                    out.errors.append(problem)
                    continue
                row, attrs = _row(span, service)
                traces.setdefault(row[0], []).append((row, attrs))
                out.spans += 1
    for entries in traces.values():
        out.bundles.append(_bundle(entries, out.errors))
    return out


def _bundle(
    entries: list[tuple[tuple[Any, ...], dict[str, Any] | None]], errors: list[str]
) -> Bundle | QueuedTrace:
    rows = [row for row, _ in entries]
    present = {row[1] for row in rows}
    roots = [(row, attrs) for row, attrs in entries if row[_PARENT] not in present]
    if not roots:  # parents in a cycle (a broken client): the earliest span stands in
        roots = [min(entries, key=lambda e: e[0][_START])]
    # The true root describes the trace; else the earliest span whose parent is elsewhere.
    roots.sort(key=lambda e: (e[0][_PARENT] is None, -e[0][_START]))
    tags: dict[str, Any] = {}
    exclusive: dict[str, str] = {}
    metadata: list[tuple] = []
    experiment = None
    for _, attrs in roots:
        if attrs:
            t, e, m = root_labels(attrs)
            tags.update(t)
            exclusive.update(e)
            metadata.extend(m)
            experiment = root_experiment(attrs) or experiment  # the describing root's wins
    if experiment == DEFAULT_EXPERIMENT:
        experiment = None
    if tags or metadata:
        tags, metadata = _storable(tags, metadata, errors)
    labels = RootLabels(tags, exclusive, metadata, experiment)
    return make_bundle(rows, root=roots[-1][0], labels=labels)


def _storable(
    tags: dict[str, Any], metadata: list[tuple], errors: list[str]
) -> tuple[dict[str, Any], list[tuple]]:
    """The tags and metadata the tag rules allow (as ``update_current_trace`` checks them in
    process): a bad key, a value that is not JSON (NaN) or too large (over 64 KiB of JSON,
    metadata as tags) is left out and said in ``errors``; a metadata value JSON cannot hold
    (NaN, infinity) is kept as its text (``storable_metadata``, as in process)."""
    kept: dict[str, Any] = {}
    for key, value in tags.items():
        try:
            _tagrules.check_key(key)
            _tagrules.encode_value(value, key)
        except TagError as exc:
            errors.append(f"tag left out: {exc}")
            continue
        kept[key] = value
    entries = []
    for key, value, ts in metadata:
        try:
            value = storable_metadata(key, value)
        except TagError as exc:
            errors.append(f"metadata left out: {exc}")
            continue
        entries.append((key, value, ts))
    return kept, entries


def _names(value: Any) -> list[str]:
    """A ``traceduck.*_keys`` attribute as a list of names, whatever a client sent."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [item for item in value if isinstance(item, str)]
    return []


def _row(span: Any, service: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(the span's row in SPAN_COLUMNS order, its attributes with JSON-listed keys decoded)."""
    attrs = {kv.key: _value(kv.value) for kv in span.attributes}
    span_type = inputs = outputs = None
    if attrs:
        for listing in (JSON_KEYS_ATTR, EXCLUSIVE_KEYS_ATTR):
            if listing in attrs:
                attrs[listing] = _names(attrs[listing])
        if JSON_KEYS_ATTR in attrs:
            attrs = decode_json_keys(attrs)
            attrs.pop(JSON_KEYS_ATTR, None)
        span_type = attrs.pop(SPAN_TYPE_ATTR, None)
        inputs = json_text(attrs.pop(INPUTS_ATTR, None))
        outputs = json_text(attrs.pop(OUTPUTS_ATTR, None))
    status = span.status
    failed = status.code == _STATUS_CODE_ERROR
    start = span.start_time_unix_nano
    end = max(span.end_time_unix_nano, start)
    parent = span.parent_span_id
    row = (
        span.trace_id.hex(),
        span.span_id.hex(),
        parent.hex() if parent and any(parent) else None,
        span.name,
        str(span_type) if span_type else DEFAULT_SPAN_TYPE,
        STATUS_ERROR if failed else STATUS_OK,
        (status.message or None) if failed else None,
        start,
        end,
        (end - start) / 1e6,
        _KINDS.get(span.kind, "INTERNAL"),
        service,
        _json.dumps_lenient(attrs) if attrs else "{}",
        inputs,
        outputs,
        _events(span.events) if span.events else "[]",
    )
    return row, attrs


def _events(events: Any) -> str:
    return _json.dumps_lenient(
        [
            {
                "name": e.name,
                "time_ns": e.time_unix_nano,
                "attributes": {kv.key: _value(kv.value) for kv in e.attributes},
            }
            for e in events
        ]
    )


def _invalid(span: Any) -> str | None:
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return f"span {span.name!r}: trace id must be 16 bytes, not all zero"
    if len(span.span_id) != 8 or not any(span.span_id):
        return f"span {span.name!r}: span id must be 8 bytes, not all zero"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return f"span {span.name!r}: parent span id must be empty or 8 bytes"
    if max(span.start_time_unix_nano, span.end_time_unix_nano) > _MAX_TIME_NS:
        return f"span {span.name!r}: start or end time past 2262 (the store keeps int64 ns)"
    return None


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
        return [_value(v) for v in value.array_value.values]
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
