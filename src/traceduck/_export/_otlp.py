"""OTLP out: the stock ``opentelemetry-exporter-otlp`` exporter beside (or instead of) DuckDB.

What traceduck keeps in-process while a trace runs (captured inputs/outputs and span type in
``_runtime.STASH``, the live tags and metadata in ``_context.REGISTRY``) would never reach an
OTLP backend. ``OtlpFanOut`` runs in the batch processor's thread: it takes those for each span,
writes them as attributes on a copy of the span, and hands the copies to the OTLP exporter (via
its own batch queue, so a slow or absent collector never holds up the DuckDB writer) and the
originals' data to the DuckDB exporter. The DuckDB-only path does not come through here.

Attribute encoding (documented in the README and DESIGN): ``traceduck.span_type``,
``traceduck.inputs`` / ``traceduck.outputs`` (JSON text); on the local root
``traceduck.tag.<key>`` and ``traceduck.metadata.<key>`` (latest entry per key). Strings,
booleans, 64-bit ints, floats and non-empty lists of one of those types travel as themselves;
any other value (object, null, mixed or empty list, huge int) travels as JSON text and its
attribute key is listed in ``traceduck.json_keys``. Exclusive tags: ``traceduck.exclusive_keys``
and ``traceduck.exclusive_scope.<key>``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.util.re import parse_env_headers

from .. import _json, _runtime
from .._autocontext import AutoLabels
from .._capture import encode, encode_inputs
from .._constants import (
    EXCLUSIVE_KEYS_ATTR,
    EXCLUSIVE_SCOPE_ATTR_PREFIX,
    INPUTS_ATTR,
    JSON_KEYS_ATTR,
    METADATA_ATTR_PREFIX,
    OUTPUTS_ATTR,
    SPAN_TYPE_ATTR,
    TAG_ATTR_PREFIX,
)
from .._context import REGISTRY, TraceState
from ..errors import ConfigError
from ._batch import CountingBatchSpanProcessor

__all__ = ["OtlpFanOut", "label_attributes", "make_exporter", "resolve"]

PROTOCOLS = ("http/protobuf", "grpc")
ENV_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
ENV_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_INT64 = (-(2**63), 2**63 - 1)
_PRIMITIVES = (str, bool, int, float)
_LOOPBACK = ("127.", "localhost:", "[::1]:")


def resolve(
    endpoint: str | None, protocol: str | None, headers: Mapping[str, str] | str | None
) -> dict[str, Any] | None:
    """Where OTLP goes, from configure()'s arguments then the standard OTEL_* variables.

    None when neither names an endpoint. An explicit argument wins over the environment; with
    only the environment, the stock exporter reads endpoint and headers itself (both the
    ``_TRACES_`` and the general variables, with their own precedence)."""
    from_env = endpoint is None
    if from_env and not any(os.environ.get(name) for name in ENV_ENDPOINTS):
        return None
    if protocol is None:
        protocol = next((os.environ[n] for n in ENV_PROTOCOLS if os.environ.get(n)), None)
        if protocol is not None and protocol.strip() not in PROTOCOLS:
            _runtime.logger.warning(
                "traceduck: OTLP protocol %r is not supported (use %s); using http/protobuf",
                protocol,
                " or ".join(PROTOCOLS),
            )
            protocol = None
        protocol = (protocol or "http/protobuf").strip()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"otlp_protocol must be 'http/protobuf' or 'grpc', not {protocol!r}")
    if isinstance(headers, str):
        # k1=v1,k2=v2 read as the stock exporter reads OTEL_EXPORTER_OTLP_HEADERS
        headers = parse_env_headers(headers, liberal=True)
    elif headers is not None and not isinstance(headers, Mapping):
        raise ConfigError(f"otlp_headers must be a dict of strings, not {headers!r}")
    return {"endpoint": endpoint, "protocol": protocol, "headers": dict(headers or {}) or None}


def make_exporter(endpoint: str | None, protocol: str, headers: dict[str, str] | None) -> Any:
    """The stock OTLP span exporter for ``protocol``; ``endpoint=None`` reads OTEL_* itself."""
    kwargs: dict[str, Any] = {}
    if headers:
        kwargs["headers"] = headers
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        if endpoint is not None:
            kwargs["endpoint"] = endpoint
            # http:// means plaintext; so does a bare loopback host:port (a local collector).
            if endpoint.startswith("http://") or (
                "://" not in endpoint and endpoint.startswith(_LOOPBACK)
            ):
                kwargs["insecure"] = True
        return Grpc(**kwargs)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    if endpoint is not None:
        if urlparse(endpoint).path in ("", "/"):
            endpoint = endpoint.rstrip("/") + "/v1/traces"  # a base URL, as in the env var
        kwargs["endpoint"] = endpoint
    return Http(**kwargs)


class OtlpFanOut(SpanExporter):
    """Enrich spans with traceduck's in-process data; send them by OTLP and to DuckDB."""

    def __init__(
        self, otlp: SpanExporter, duckdb: SpanExporter | None, auto_labels: AutoLabels | None = None
    ) -> None:
        self.otlp = otlp
        self.duckdb = duckdb
        self.auto_labels = auto_labels
        self._reported = 0  # OTLP queue drops as of the last flush
        # OTLP's own queue: a slow or unreachable collector never holds up the store's writes;
        # what its full queue turns away is counted (stats(), flush()).
        endpoint = getattr(otlp, "_endpoint", None)  # the stock exporters' own attribute
        self.queue = CountingBatchSpanProcessor(
            otlp,
            where=f"the OTLP exporter to {endpoint}" if endpoint else "the OTLP exporter",
            max_queue_size=65_536,
            schedule_delay_millis=200,
            max_export_batch_size=512,
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        out: list[ReadableSpan] = []
        restore: list[tuple[int, TraceState]] = []
        try:
            for span in spans:
                enriched, state = _enrich(span, self.auto_labels)
                out.append(enriched)
                if state is not None and self.duckdb is not None:
                    restore.append((span.context.trace_id, state))
        except Exception as exc:
            _runtime.report_internal_error("OTLP span enrichment", exc)
            out = list(spans)
        result = SpanExportResult.SUCCESS
        if self.duckdb is not None:
            # The DuckDB exporter reads the typed live state itself (with its timestamps).
            if restore:
                with REGISTRY.lock:
                    REGISTRY.states.update(restore)
            base = [_without_labels(s) for s in out]
            result = self.duckdb.export(base)
        try:
            for span in out:
                self.queue.on_end(span)  # type: ignore[arg-type]
        except Exception as exc:
            _runtime.report_internal_error("OTLP export", exc)
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        ok = self.queue.force_flush(timeout_millis)
        if self.duckdb is not None:
            ok = self.duckdb.force_flush(timeout_millis) and ok
        return ok

    def unreported_drops(self) -> bool:
        """Whether OTLP's queue turned spans away since the last call (flush()'s answer)."""
        dropped = self.queue.dropped_spans
        new, self._reported = dropped != self._reported, dropped
        return new

    def flush_otlp(self, timeout_millis: int = 30_000) -> bool:
        """Send OTLP's queue, up to ``timeout_millis``: False when not all of it was sent; at
        once while the endpoint is failing (its exporter retries in the background, and what
        it gives up on is counted)."""
        if self.queue.failing and self.queue.queued_spans:
            return False
        return self.queue.force_flush(timeout_millis)

    def shutdown(self) -> None:
        try:
            self.queue.shutdown()
        finally:
            if self.duckdb is not None:
                self.duckdb.shutdown()


def _enrich(
    span: ReadableSpan, auto: AutoLabels | None = None
) -> tuple[ReadableSpan, TraceState | None]:
    """(the span with traceduck's data as attributes, the root's live state if it had one)."""
    ctx = span.context
    record = _runtime.STASH.pop(ctx.span_id, None)
    parent = span.parent
    is_root = parent is None or parent.is_remote
    state = REGISTRY.pop(ctx.trace_id) if is_root else None
    labels = _with_auto_labels(span, state, auto) if is_root and auto is not None else state
    if record is None and labels is None:
        return span, None
    attrs = dict(span.attributes or {})
    if record is not None:
        span_type, extra, deferred_in, deferred_out = record
        if extra:
            attrs.update(extra)
        if span_type:
            attrs[SPAN_TYPE_ATTR] = str(span_type)
        if deferred_in is not None:
            attrs[INPUTS_ATTR] = encode_inputs(deferred_in)
        if deferred_out is not None:
            attrs[OUTPUTS_ATTR] = encode(deferred_out)
    base = _copy(span, attrs)
    if labels is None:
        return base, None
    labelled = dict(attrs)
    labelled.update(label_attributes(labels, attrs.get(JSON_KEYS_ATTR)))
    enriched = _copy(span, labelled)
    enriched._traceduck_base = base  # type: ignore[attr-defined]
    return enriched, state


def _with_auto_labels(
    span: ReadableSpan, state: TraceState | None, auto: AutoLabels
) -> TraceState | None:
    """The root's live state with its automatic labels added (a copy: the DuckDB exporter
    adds them itself), or ``state`` when there are none."""
    entries, run_tags = auto.for_root(span.start_time or 0, span.resource)
    if not entries and not run_tags:
        return state
    state = state or TraceState()
    attrs = span.attributes or {}
    tags = {k: v for k, v in run_tags.items() if TAG_ATTR_PREFIX + k not in attrs}
    tags.update(state.tags)
    return TraceState(tags=tags, exclusive=state.exclusive, metadata=entries + state.metadata)


def _without_labels(span: ReadableSpan) -> ReadableSpan:
    return getattr(span, "_traceduck_base", span)


def label_attributes(state: TraceState, json_keys: Any = None) -> dict[str, Any]:
    """A trace's tags, exclusive markers and latest metadata as OTel attributes."""
    out: dict[str, Any] = {}
    keys = [k for k in (json_keys or ()) if isinstance(k, str)]
    for key, value in state.tags.items():
        _put(out, keys, TAG_ATTR_PREFIX + key, value)
    latest: dict[str, Any] = {}
    for key, value, _ts in state.metadata:
        latest[key] = value
    for key, value in latest.items():
        _put(out, keys, METADATA_ATTR_PREFIX + key, value)
    if state.exclusive:
        out[EXCLUSIVE_KEYS_ATTR] = tuple(state.exclusive)
        for key, scope in state.exclusive.items():
            out[EXCLUSIVE_SCOPE_ATTR_PREFIX + key] = scope
    if keys:
        out[JSON_KEYS_ATTR] = tuple(dict.fromkeys(keys))
    return out


def _put(out: dict[str, Any], json_keys: list[str], key: str, value: Any) -> None:
    native = _native(value)
    if native is None:
        out[key] = _json.dumps_lenient(value)
        json_keys.append(key)
    else:
        out[key] = native
        if key in json_keys:
            json_keys.remove(key)


def _native(value: Any) -> Any:
    """The value as an OTel attribute when OTel can carry it unchanged, else None."""
    kind = type(value)
    if kind is str or kind is bool or kind is float:
        return value
    if kind is int:
        return value if _INT64[0] <= value <= _INT64[1] else None
    if kind in (list, tuple) and value:
        first = type(value[0])
        if first not in _PRIMITIVES or any(type(v) is not first for v in value):
            return None
        if first is int and any(not _INT64[0] <= v <= _INT64[1] for v in value):
            return None
        return tuple(value)
    return None


def _copy(span: ReadableSpan, attributes: dict[str, Any]) -> ReadableSpan:
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
