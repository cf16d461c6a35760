"""JSON helpers shared by capture, storage and the CLI: compact, deterministic, never NaN."""

from __future__ import annotations

import json
from typing import Any

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_LENIENT = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=repr
)


def dumps(value: Any) -> str:
    """Strict compact JSON (raises TypeError/ValueError for values JSON cannot hold)."""
    return _utf8(_ENCODER.encode(value))


def _utf8(text: str) -> str:
    """``text`` made valid UTF-8: lone surrogates (from undecodable file names) become U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def dumps_lenient(value: Any) -> str:
    """Compact JSON; values JSON cannot hold become their repr, NaN/inf become strings."""
    try:
        return _utf8(_LENIENT.encode(value))
    except ValueError:  # NaN or infinity somewhere
        return _utf8(_LENIENT.encode(_finite(value)))


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return repr(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
