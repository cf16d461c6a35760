"""JSON helpers shared by capture, storage and the CLI: compact, deterministic, never NaN."""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring as quote  # a str's JSON text, non-ASCII kept
from typing import Any

try:
    from json.encoder import c_make_encoder as _c_make_encoder
except ImportError:  # pragma: no cover - an interpreter without the C accelerator
    _c_make_encoder = None


def _encoder(default: Callable[[Any], Any] | None) -> Callable[[Any], str]:
    """Compact JSON (no NaN) for any value, ``default`` for what JSON cannot hold.

    ``JSONEncoder.encode`` spends most of a small value's time (~3 µs, per span at export)
    setting up the C encoder. This builds the C encoder once, with the same settings and no
    circular-reference guard (~0.65 µs a call): a value that recurses too deep is encoded again
    with a fresh guard, which tells a cycle (ValueError, as the standard library says) from a
    value that is merely deep. Falls back to ``JSONEncoder`` where the C encoder is missing or
    takes other arguments."""
    fallback = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default
    )
    if _c_make_encoder is None:  # pragma: no cover
        return fallback.encode
    make, on_other = _c_make_encoder, fallback.default
    int_repr = int.__repr__
    unguarded = make(None, on_other, quote, None, ":", ",", False, False, False)

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return quote(value)
        if type(value) is int:  # a common output: its repr, without the encoder's setup
            return int_repr(value)
        try:
            return "".join(unguarded(value, 0))
        except RecursionError:  # a cycle, or too deep: the guarded encoder says which
            guarded = make({}, on_other, quote, None, ":", ",", False, False, False)
            return "".join(guarded(value, 0))

    try:
        sample: Any = {"a": [1, 2.5, None, True, "é"], "b": {}}
        if encode(sample) != fallback.encode(sample):  # pragma: no cover
            return fallback.encode
    except Exception:  # pragma: no cover - a C encoder with another signature
        return fallback.encode
    return encode


_strict = _encoder(None)
_lenient = _encoder(repr)


def dumps(value: Any) -> str:
    """Strict compact JSON (raises TypeError/ValueError for values JSON cannot hold)."""
    return utf8(_strict(value))


def utf8(text: str) -> str:
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
        return utf8(_lenient(value))
    except ValueError:  # NaN or infinity somewhere
        return utf8(_lenient(_finite(value)))


def json_type(value: Any) -> str:
    """The JSON type of a decoded JSON value, as the stores type a tag's value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


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
