"""Turn finished spans into store rows: ReadableSpan -> row tuple, attributes -> typed tags.

Shared by the in-process exporter and the OTLP collector, so a span means the same thing
whichever way it arrived.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from .. import _json
from .._capture import encode, encode_inputs
from .._constants import (
    DEFAULT_SPAN_TYPE,
    EXCLUSIVE_KEYS_ATTR,
    EXCLUSIVE_SCOPE_ATTR_PREFIX,
    EXPERIMENT_ATTR,
    INPUTS_ATTR,
    JSON_KEYS_ATTR,
    MAX_EXPERIMENT_NAME_LEN,
    METADATA_ATTR_PREFIX,
    OUTPUTS_ATTR,
    SPAN_TYPE_ATTR,
    STATUS_ERROR,
    STATUS_OK,
    TAG_ATTR_PREFIX,
)
from ._ended import EndedSpan, ended, kwargs_of
from ._ended import resource as resource_of

EMPTY_OBJECT = "{}"
EMPTY_LIST = "[]"


def attribute_value(value: Any) -> Any:
    """An OTel attribute value as JSON-able (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value


def decode_json_keys(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes with the values listed in ``traceduck.json_keys`` decoded from JSON text."""
    out = {k: attribute_value(v) for k, v in attrs.items()}
    for key in out.get(JSON_KEYS_ATTR) or ():
        if isinstance(out.get(key), str):
            try:
                out[key] = _json.loads(out[key])
            except (ValueError, RecursionError):  # not JSON, or nested past Python's stack:
                pass  # kept as the text it came as
    return out


def root_labels(attrs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[tuple]]:
    """(tags, exclusive key -> scope, metadata entries) carried as attributes on a root span."""
    tags: dict[str, Any] = {}
    metadata: list[tuple[str, Any, int]] = []
    exclusive: dict[str, str] = {}
    for key, value in attrs.items():
        if key.startswith(TAG_ATTR_PREFIX):
            tags[key[len(TAG_ATTR_PREFIX) :]] = attribute_value(value)
        elif key.startswith(METADATA_ATTR_PREFIX):
            metadata.append((key[len(METADATA_ATTR_PREFIX) :], attribute_value(value), 0))
    for key in attrs.get(EXCLUSIVE_KEYS_ATTR) or ():
        scope = attrs.get(EXCLUSIVE_SCOPE_ATTR_PREFIX + key, "name")
        exclusive[key] = scope if scope in ("name", "global") else "name"
    return tags, exclusive, metadata


def root_experiment(attrs: Mapping[str, Any]) -> str | None:
    """The experiment name a root span carries (``traceduck.experiment``), None if none."""
    value = attrs.get(EXPERIMENT_ATTR)
    if isinstance(value, str) and value.strip():
        return value.strip()[:MAX_EXPERIMENT_NAME_LEN]
    return None


def span_row(span: ReadableSpan) -> tuple[tuple[Any, ...], bool, dict[str, Any] | None]:
    """(row in SPAN_COLUMNS order, is a local root, the root's decoded attributes) of an SDK
    span (its stashed type/inputs/outputs popped from ``_runtime.STASH``): ``row_of`` its
    EndedSpan."""
    return row_of(ended(span))


def row_of(span: EndedSpan) -> tuple[tuple[Any, ...], bool, dict[str, Any] | None]:
    """(row in SPAN_COLUMNS order, is a local root, the root's decoded attributes) of an ended
    span.

    Encodes the span's deferred inputs/outputs here, off the caller's thread. This runs once per
    span at export; it leaves JSON validation of attribute-borne inputs/outputs to the store's
    insert. The attributes are returned only for a local root (whose tags and metadata they
    carry).
    """
    (
        trace_id, span_id, parent_id, is_root, name, kind, start, end, failed, description, _,
        keys, values, events, span_type, extra, input_names, deferred_in, kwargs, deferred_out,
    ) = span  # fmt: skip
    attrs = dict(zip(keys, values)) if keys else {}
    if JSON_KEYS_ATTR in attrs:
        attrs = decode_json_keys(attrs)
    if extra:
        attrs.update(extra)
    inputs = outputs = None
    if deferred_in is not None:
        if input_names is not None:  # the deferred (names, args, kwargs) of snapshot_args
            deferred_in = (input_names, deferred_in, kwargs_of(kwargs))
        inputs = encode_inputs(deferred_in)
    if deferred_out is not None:
        outputs = encode(deferred_out)
    if attrs:
        attr_type = attrs.pop(SPAN_TYPE_ATTR, None)
        attr_in = attrs.pop(INPUTS_ATTR, None)
        attr_out = attrs.pop(OUTPUTS_ATTR, None)
        attrs.pop(JSON_KEYS_ATTR, None)
        span_type = span_type or attr_type
        if inputs is None:
            inputs = json_text(attr_in)
        if outputs is None:
            outputs = json_text(attr_out)
        attributes = _json.dumps_lenient(attrs) if attrs else EMPTY_OBJECT
    else:
        attributes = EMPTY_OBJECT
    row = (
        _trace_hex(trace_id),
        # "%" formats an int in half the time format() or an f-string takes
        "%016x" % span_id,  # noqa: UP031
        "%016x" % parent_id if parent_id is not None else None,  # noqa: UP031
        # text UTF-8 cannot hold (a lone surrogate, as in file names) would cost the trace
        name if type(name) is str and name.isascii() else _json.utf8(str(name)),
        _json.utf8(str(span_type)) if span_type else DEFAULT_SPAN_TYPE,
        STATUS_ERROR if failed else STATUS_OK,
        _json.utf8(str(description)) if failed and description is not None else None,
        start,
        end,
        (end - start) / 1e6,
        kind,
        _service_name(resource_of(span)),
        attributes,
        inputs,
        outputs,
        _events(events) if events else EMPTY_LIST,
    )
    return row, is_root, (attrs if is_root else None)


_last_resource: tuple[Any, str | None] = (None, None)


def _service_name(resource: Any) -> str | None:
    """``service.name`` of a span's resource; a provider's spans share one Resource object, so
    the answer for the last one seen is kept (its attributes are read through a proxy)."""
    global _last_resource
    seen, name = _last_resource
    if resource is seen:
        return name
    name = resource.attributes.get("service.name") if resource is not None else None
    _last_resource = (resource, name)  # one tuple swap: safe across threads
    return name


_HEX: dict[int, str] = {}


def _trace_hex(trace_id: int) -> str:
    """The trace id as 32 hex chars, memoised: a trace's spans share it (small, bounded cache)."""
    text = _HEX.get(trace_id)
    if text is None:
        if len(_HEX) >= 4096:
            _HEX.clear()
        text = _HEX[trace_id] = "%032x" % trace_id  # noqa: UP031 - twice as fast as format()
    return text


def json_text(value: Any) -> str | None:
    """A captured value that arrived as an attribute: JSON text is kept as it is (the store's
    insert checks it and quotes text that is not JSON), any other value is encoded."""
    if value is None or isinstance(value, str):
        return value
    return encode(attribute_value(value))


def _events(events: Any) -> str:
    return _json.dumps_lenient(
        [
            {
                "name": e.name,
                "time_ns": e.timestamp,
                "attributes": {k: attribute_value(v) for k, v in (e.attributes or {}).items()},
            }
            for e in events
        ]
    )
