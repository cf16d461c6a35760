"""Cascade tags: stamped on every span under the one where they are set, and carried in baggage.

A ``Tag(key, value, cascade=True)`` becomes

- the attribute ``traceduck.tag.<key>`` on the span where it is set and on every span started
  under it (``span.attributes.*`` filters and any OTLP backend see it), and
- the W3C baggage entry ``traceduck.tag.<key>`` in the context, so OpenTelemetry's standard
  propagators carry it to threads, subprocesses and services; a trace started there (its local
  root has a remote parent, or none) gets it as its own tag, because the exporter reads a root's
  ``traceduck.tag.*`` attributes as the trace's tags.

Baggage values are text: a string travels as is (unless it would read as JSON, then quoted),
anything else as JSON, so ``cost=3.2`` arrives as a number and a hand-written
``baggage: traceduck.tag.tenant=acme`` as the string ``acme``.

Cost: ``_Switch.on_start`` calls ``on_start`` below for local roots, and for every span only
once this process has seen a cascade tag (``STATE.active``); the check is one context lookup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context

from . import _runtime
from ._constants import JSON_KEYS_ATTR, TAG_ATTR_PREFIX

__all__ = ["STATE", "decode", "encode", "enter", "on_start", "stamp_current"]

try:  # the key under which OpenTelemetry keeps baggage in a Context: one dict lookup
    from opentelemetry.baggage import _BAGGAGE_KEY as _KEY
except ImportError:  # pragma: no cover - a future OpenTelemetry without it
    _KEY = None


class _State:
    """``active``: a cascade tag was set, or arrived in baggage, somewhere in this process."""

    active = False


STATE = _State()


def encode(value: Any) -> str:
    """A tag value as baggage text (``decode`` reverses it)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value  # plain text stays readable in the header
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def decode(text: Any) -> Any:
    """A baggage value as the typed tag value: JSON when it parses, else the text."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _attribute(value: Any) -> tuple[Any, bool]:
    """(OpenTelemetry attribute value, whether it is JSON text listed in json_keys)."""
    if isinstance(value, (str, bool, int, float)):
        return value, False
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")), True


def _attributes(tags: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """``traceduck.tag.<key>`` attributes (typed: non-scalars as JSON listed in json_keys)."""
    attrs: dict[str, Any] = {}
    json_keys: list[str] = []
    for key, value in tags:
        name = TAG_ATTR_PREFIX + key
        attrs[name], is_json = _attribute(value)
        if is_json:
            json_keys.append(name)
    if json_keys:
        attrs[JSON_KEYS_ATTR] = json_keys
    return attrs


def _set(span: Any, attrs: dict[str, Any]) -> None:
    """Set tag attributes on an SDK span, adding to (not replacing) its json_keys list."""
    if JSON_KEYS_ATTR in attrs and span.attributes and JSON_KEYS_ATTR in span.attributes:
        merged = dict.fromkeys([*span.attributes[JSON_KEYS_ATTR], *attrs[JSON_KEYS_ATTR]])
        attrs = {**attrs, JSON_KEYS_ATTR: list(merged)}
    span.set_attributes(attrs)


def _stamp(span: Any, tags: Iterable[tuple[str, Any]]) -> None:
    """Set ``traceduck.tag.<key>`` attributes on an SDK span."""
    _set(span, _attributes(tags))


def _baggage_attributes(entries: Any) -> dict[str, Any] | None:
    """The ``traceduck.tag.*`` attributes for a baggage dict (None when it has no cascade tag).

    Spans under one context share one baggage dict, so the answer is cached by identity; each
    entry's decoded, validated form is cached by its text (a new trace makes a new dict with
    the same entries)."""
    cached = _last
    if cached[0] is entries:
        return cached[1]
    tags = []
    for name, text in entries.items():
        if not name.startswith(TAG_ATTR_PREFIX):
            continue
        found = _ENTRIES.get((name, text), _MISSING)
        if found is _MISSING:
            found = _entry(name, text)
            if len(_ENTRIES) >= MAX_CACHED_ENTRIES:
                _ENTRIES.clear()
            _ENTRIES[(name, text)] = found
        if found is not None:
            tags.append(found)
    attrs = _attributes(tags) if tags else None
    globals()["_last"] = (entries, attrs)  # one tuple swap: safe across threads
    return attrs


def _entry(name: str, text: Any) -> tuple[str, Any] | None:
    """(key, typed value) of one baggage entry, or None if it is not a valid tag."""
    key, value = name[len(TAG_ATTR_PREFIX) :], decode(text)
    try:
        _check(key, value)
    except Exception:  # someone else's malformed baggage: not a tag of ours
        return None
    return key, value


MAX_CACHED_ENTRIES = 1024
_MISSING: Any = object()
_ENTRIES: dict[tuple[str, Any], tuple[str, Any] | None] = {}
_last: tuple[Any, dict[str, Any] | None] = (None, None)


def _check(key: str, value: Any) -> None:
    from ._store import _tags

    _tags.check_key(key)
    _tags.encode_value(value, key)


def on_start(span: Any, parent_context: Any = None) -> None:
    """Stamp a starting span with the cascade tags in its parent context's baggage."""
    try:
        if _KEY is not None:
            ctx = otel_context.get_current() if parent_context is None else parent_context
            entries = ctx.get(_KEY)
        else:  # pragma: no cover
            entries = otel_baggage.get_all(parent_context)
        if not entries:
            return
        attrs = _baggage_attributes(entries)
        if attrs is None:
            return
        STATE.active = True
        _set(span, attrs)
    except Exception as exc:
        _runtime.report_internal_error("cascade tags", exc)


def with_baggage(tags: Iterable[Any], ctx: Any = None) -> Any:
    """``ctx`` (default: the current context) with the cascade tags added to its baggage."""
    for tag in tags:
        ctx = otel_baggage.set_baggage(TAG_ATTR_PREFIX + tag.key, encode(tag.value), ctx)
    return ctx


def enter(span: Any, tags: Iterable[Any], ctx: Any) -> Any:
    """For ``@trace(tags=[Tag(..., cascade=True)])``: stamp ``span``, return ``ctx`` + baggage."""
    try:
        if not span.is_recording():
            return ctx
        tags = list(tags)
        STATE.active = True
        _stamp(span, ((t.key, t.value) for t in tags))
        return with_baggage(tags, ctx)
    except Exception as exc:
        _runtime.report_internal_error("cascade tags", exc)
        return ctx


def stamp_current(span: Any, tags: list[Any]) -> None:
    """For ``update_current_trace``: stamp the running span and add the tags to the current
    context's baggage until that span's context is detached (the span's scope)."""
    STATE.active = True
    _stamp(span, ((t.key, t.value) for t in tags))
    # Never detached on purpose: leaving the span's scope resets the context to what it was
    # before the span, which drops this baggage with it.
    otel_context.attach(with_baggage(tags))
