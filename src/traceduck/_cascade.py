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
What a span under a cascade tag pays is what a plain OpenTelemetry ``SpanProcessor`` stamping
one attribute from baggage pays: the attributes of a baggage dict are worked out once (cached by
the dict's identity; spans under one context share it) and set with ``set_attribute`` (a single
tag) or ``set_attributes``. The span where tags are set uses a ``Cascade`` prepared once
(``@trace`` prepares at decoration): its attributes and baggage texts, added to the context's
baggage in one step.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context

from . import _runtime
from ._constants import JSON_KEYS_ATTR, TAG_ATTR_PREFIX

__all__ = [
    "STATE",
    "Cascade",
    "Stamp",
    "decode",
    "encode",
    "enter",
    "on_start",
    "stamp_current",
    "with_baggage",
]

try:  # the key under which OpenTelemetry keeps baggage in a Context: one dict lookup
    from opentelemetry.baggage import _BAGGAGE_KEY as _KEY
except ImportError:  # pragma: no cover - a future OpenTelemetry without it
    _KEY = None

_get_current = otel_context.get_current


class _State:
    """``active``: a cascade tag was set, or arrived in baggage, somewhere in this process."""

    active = False


STATE = _State()

# The first character (after JSON whitespace) of any text json.loads accepts: a string that
# starts otherwise is not JSON, and is known so without json.loads raising (which is slow).
_JSON_STARTS = frozenset('"{[-0123456789tfnNI')


def encode(value: Any) -> str:
    """A tag value as baggage text (``decode`` reverses it)."""
    if isinstance(value, str):
        if value.lstrip(" \t\n\r")[:1] not in _JSON_STARTS:
            return value  # plain text stays readable in the header
        try:
            json.loads(value)
        except ValueError:
            return value
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


class Stamp:
    """The ``traceduck.tag.<key>`` attributes of some tags (typed: non-scalars as JSON text
    listed in ``traceduck.json_keys``), worked out once and set on any number of spans."""

    __slots__ = ("attrs", "json_names", "single", "with_json_keys")

    def __init__(self, tags: Iterable[tuple[str, Any]]) -> None:
        values = {TAG_ATTR_PREFIX + key: value for key, value in tags}  # last value per key
        self.attrs: dict[str, Any] = {}
        json_names: list[str] = []
        for name, value in values.items():
            self.attrs[name], is_json = _attribute(value)
            if is_json:
                json_names.append(name)
        self.json_names = tuple(json_names)
        self.with_json_keys = {**self.attrs, JSON_KEYS_ATTR: list(json_names)}
        # One scalar tag (the common case): set_attribute skips the SDK's mapping validation.
        single = len(values) == 1 and not json_names
        self.single = next(iter(self.attrs.items())) if single else None

    def set_on(self, span: Any, merge: bool) -> None:
        """Set the attributes on an SDK span. ``merge``: the span may hold a json_keys list
        already (tags stamped earlier): keep its other names rather than replace it."""
        if merge or self.json_names:
            existing = (getattr(span, "attributes", None) or {}).get(JSON_KEYS_ATTR)
            if existing:
                # Names listed before and set again here stay listed only if JSON again.
                keys = [k for k in existing if k not in self.attrs]
                keys.extend(self.json_names)
                span.set_attributes({**self.attrs, JSON_KEYS_ATTR: keys})
                return
            if self.json_names:
                span.set_attributes(self.with_json_keys)
                return
        if self.single is not None:
            span.set_attribute(*self.single)
        else:
            span.set_attributes(self.attrs)


class Cascade:
    """Cascade ``Tag`` objects (validated) prepared for the span where they are set, ready for
    ``enter`` / ``with_baggage``: its stamp and baggage entries."""

    __slots__ = ("entries", "stamp")

    def __init__(self, tags: Iterable[Any]) -> None:
        pairs = [(tag.key, tag.value) for tag in tags]
        self.stamp = Stamp(pairs)
        # Shared by every context this makes (baggage dicts are never changed in place, only
        # copied), so spans under any of them hit the stamp cache below by identity.
        self.entries: dict[str, str] = {TAG_ATTR_PREFIX + k: encode(v) for k, v in pairs}


def _entries(ctx: Any) -> Any:
    """The baggage dict of a context (None or empty when it has none)."""
    if _KEY is not None:
        return ctx.get(_KEY)
    return otel_baggage.get_all(ctx)  # pragma: no cover


def _baggage_stamp(entries: Any) -> Stamp | None:
    """The stamp for a baggage dict (None when it has no cascade tag), worked out once.

    Spans under one context share one baggage dict, so the answer is cached by the dict's
    identity (the cache holds the dict, so its id is not reused while cached); each entry's
    decoded, validated form is cached by its text (a new trace makes a new dict with the same
    entries). Several cached dicts: threads, tasks and nested tags alternate between them."""
    cached = _STAMPS.get(id(entries))
    if cached is not None and cached[0] is entries:
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
    stamp = Stamp(tags) if tags else None
    if len(_STAMPS) >= MAX_CACHED_STAMPS:
        _STAMPS.clear()
    _STAMPS[id(entries)] = (entries, stamp)
    return stamp


def _entry(name: str, text: Any) -> tuple[str, Any] | None:
    """(key, typed value) of one baggage entry, or None if it is not a valid tag."""
    key, value = name[len(TAG_ATTR_PREFIX) :], decode(text)
    try:
        _check(key, value)
    except Exception:  # someone else's malformed baggage: not a tag of ours
        return None
    return key, value


MAX_CACHED_ENTRIES = 1024
MAX_CACHED_STAMPS = 256
_MISSING: Any = object()
_ENTRIES: dict[tuple[str, Any], tuple[str, Any] | None] = {}
_STAMPS: dict[int, tuple[Any, Stamp | None]] = {}


def _check(key: str, value: Any) -> None:
    from .store import _tagrules

    _tagrules.check_key(key)
    _tagrules.encode_value(value, key)


def on_start(span: Any, parent_context: Any = None) -> None:
    """Stamp a starting span with the cascade tags in its parent context's baggage."""
    try:
        entries = _entries(_get_current() if parent_context is None else parent_context)
        if not entries:
            return
        stamp = _baggage_stamp(entries)
        if stamp is None:
            return
        STATE.active = True
        stamp.set_on(span, False)
    except Exception as exc:
        _runtime.report_internal_error("cascade tags", exc)


def _add_entries(cascade: Cascade, ctx: Any, entries: Any) -> Any:
    """``ctx`` (whose baggage dict is ``entries``) with the cascade's entries added."""
    if _KEY is None:  # pragma: no cover
        for name, text in cascade.entries.items():
            ctx = otel_baggage.set_baggage(name, text, ctx)
        return ctx
    if entries and isinstance(entries, dict):
        merged = {**entries, **cascade.entries}
    else:
        merged = cascade.entries
    return otel_context.set_value(_KEY, merged, ctx)


def with_baggage(cascade: Cascade, ctx: Any = None) -> Any:
    """``ctx`` (default: the current context) with the cascade tags added to its baggage."""
    if ctx is None:
        ctx = _get_current()
    return _add_entries(cascade, ctx, _entries(ctx))


def enter(span: Any, cascade: Cascade, ctx: Any) -> Any:
    """For ``@trace(tags=[Tag(..., cascade=True)])``: stamp ``span``, return ``ctx`` + baggage.

    ``ctx`` is the span's own context, so its baggage is the parent's: when it holds cascade
    tags, ``on_start`` has stamped those on the span already and the json_keys lists merge.
    A span that is not recorded (sampled out) is not stamped, but the tags still go into the
    baggage: a service downstream that samples for itself records them on its own trace."""
    try:
        entries = _entries(ctx)
        if span.is_recording():
            STATE.active = True
            cascade.stamp.set_on(span, bool(entries))
        return _add_entries(cascade, ctx, entries)
    except Exception as exc:
        _runtime.report_internal_error("cascade tags", exc)
        return ctx


def stamp_current(span: Any, tags: list[Any]) -> None:
    """For ``update_current_trace``: stamp the running span (when it is recorded) and add the
    tags to the current context's baggage until that span's context is detached (its scope)."""
    cascade = Cascade(tags)
    if span.is_recording():
        STATE.active = True
        cascade.stamp.set_on(span, True)
    # Never detached on purpose: leaving the span's scope resets the context to what it was
    # before the span, which drops this baggage with it.
    otel_context.attach(with_baggage(cascade))
