"""The rules every engine applies to tags and metadata: valid keys and values, exclusive scopes.

Checked before anything is written, by the stores, the tracing path and the CLI alike, so a
bad key or value is the same ``TagError`` on either engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import _json
from .._constants import ATTR_PREFIX, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_BYTES
from ..errors import TagError

__all__ = [
    "MISSING",
    "SCOPES",
    "TagChange",
    "append_changes",
    "appended",
    "apply",
    "check_exclusive_bulk",
    "check_key",
    "check_removal",
    "check_scope",
    "delete_changes",
    "encode_value",
    "goes",
    "removal",
    "scope_value",
    "set_change",
    "set_changes",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # not text UTF-8 can hold (surrogateescape'd bytes)
SCOPES = ("name", "global")
MISSING: Any = object()  # delete_trace_tag without a value: whatever the value


def check_key(key: object, what: str = "tag") -> str:
    """A valid tag (or metadata: ``what``) key, or TagError saying what is wrong with it."""
    if not isinstance(key, str):
        raise TagError(f"{what} key must be a string, not {type(key).__name__}: {key!r}")
    if not key:
        raise TagError(f"{what} key must not be empty")
    if len(key) > MAX_TAG_KEY_LEN:
        raise TagError(f"{what} key is {len(key)} characters long; the limit is {MAX_TAG_KEY_LEN}")
    if _CONTROL.search(key):
        raise TagError(f"{what} key {key!r} contains a control character")
    if not key.isascii() and _SURROGATE.search(key):
        raise TagError(f"{what} key {key!r} contains a lone surrogate: it is not valid text")
    if key.startswith(ATTR_PREFIX):
        raise TagError(f"{what} key {key!r} uses the reserved prefix {ATTR_PREFIX!r}")
    return key


def encode_value(value: Any, key: str = "", what: str = "tag") -> str:
    """The value as JSON text, or TagError if it is not a JSON value or is too large."""
    try:
        text = _json.dumps(value)
    except RecursionError:  # no repr of the value in the message: it would recurse as deep
        raise TagError(f"{what} {key!r}: the value nests too deeply to store as JSON") from None
    except (TypeError, ValueError) as exc:
        raise TagError(
            f"{what} {key!r}: value {value!r} is not a JSON value (strings, numbers, booleans, "
            f"null, lists and objects of them): {exc}"
        ) from None
    return check_size(text, key, what)


def check_size(text: str, key: str = "", what: str = "tag") -> str:
    """A value's JSON ``text``, or TagError if it is over the size limit."""
    if len(text.encode()) > MAX_TAG_VALUE_BYTES:
        raise TagError(
            f"{what} {key!r}: value is {len(text.encode())} bytes of JSON; the limit is "
            f"{MAX_TAG_VALUE_BYTES}"
        )
    return text


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise TagError(f"exclusive scope must be 'name' or 'global', not {scope!r}")
    return scope


def scope_value(scope: str, trace_name: str | None) -> str:
    """The exclusive_holders.scope for a trace: '' for global, else its root name."""
    return "" if scope == "global" else f"name:{trace_name or ''}"


def appended(old: Any, value: Any, had: bool) -> list[Any]:
    """The list value with ``value`` added (a scalar becomes a list, a missing key starts one)."""
    if not had:
        return [value]
    return [*old, value] if isinstance(old, list) else [old, value]


def check_removal(trace_id: str, tags: dict[str, Any], key: str, value: Any = MISSING) -> None:
    """TagError unless the trace's current ``tags`` have ``key`` (with ``value``, if given)."""
    if key not in tags:
        raise TagError(f"trace {trace_id} has no tag {key!r}")
    if value is not MISSING and _json.dumps(tags[key]) != _json.dumps(value):
        raise TagError(
            f"trace {trace_id} has tag {key!r} = {_json.dumps(tags[key])}, not "
            f"{_json.dumps(value)}; nothing was deleted"
        )


def goes(tags: Mapping[str, Any], key: str, only: Mapping[str, str]) -> bool:
    """Whether a bulk delete removes ``key`` from a trace's ``tags``: it has the key, with the
    JSON text ``only[key]`` when the delete names a value for it."""
    return key in tags and (key not in only or _json.dumps(tags[key]) == only[key])


def check_exclusive_bulk(
    names: list[str | None], updates: Mapping[str, Any], exclusive: Mapping[str, str]
) -> None:
    """TagError when a bulk edit would give an exclusive key two holders in one scope
    (``names``: the root names of the matching traces)."""
    for key in updates:
        scope = exclusive.get(key)
        if not scope:
            continue
        groups: dict[str, int] = {}
        for name in names:
            group = scope_value(scope, name)
            groups[group] = groups.get(group, 0) + 1
        crowded = [g for g, n in groups.items() if n > 1]
        if crowded:
            where = "the store" if scope == "global" else f"traces named {crowded[0][5:]!r}"
            raise TagError(
                f"tag {key!r} is exclusive (one trace per scope) but the filter matches "
                f"{groups[crowded[0]]} {where}; narrow the filter"
            )


# -- what an edit changes: the same on every engine, computed without touching one --------------


@dataclass(frozen=True)
class TagChange:
    """One change of one key of a trace's tags: the history event an edit writes.

    ``operation``: "set" (the key was absent), "update", "delete" or "moved" (an exclusive tag
    taken by another trace); ``new_text`` and ``new_value`` are None for the last two."""

    key: str
    old_text: str | None
    new_text: str | None
    new_value: Any
    operation: str

    @property
    def removes(self) -> bool:
        return self.new_text is None


def set_change(
    tags: Mapping[str, Any], key: str, value: Any, *, append: bool = False
) -> TagChange | None:
    """What setting ``key`` to ``value`` changes in a trace's current ``tags``; None when the
    trace has that very value already (no event). ``append``: add ``value`` to the key's list
    (``appended``), TagError if the longer list passes the size limit."""
    had = key in tags
    if append:
        value = appended(tags.get(key), value, had)
        new_text = encode_value(value, key)
    else:
        new_text = _json.dumps(value)
    old_text = _json.dumps(tags[key]) if had else None
    if old_text == new_text:
        return None
    return TagChange(key, old_text, new_text, value, "update" if had else "set")


def set_changes(
    tags: Mapping[str, Any], updates: Mapping[str, Any], *, append: bool = False
) -> list[TagChange]:
    """``set_change`` of each key of ``updates`` (the keys that change only)."""
    changes = (set_change(tags, k, v, append=append) for k, v in updates.items())
    return [c for c in changes if c is not None]


def append_changes(tags: Mapping[str, Any], updates: Mapping[str, Any]) -> list[TagChange]:
    """``set_changes`` with ``append``: every key changes (its list grows)."""
    return set_changes(tags, updates, append=True)


def removal(tags: Mapping[str, Any], key: str, operation: str = "delete") -> TagChange:
    """The trace loses ``key`` (which it has): "delete", or "moved" for an exclusive move."""
    return TagChange(key, _json.dumps(tags[key]), None, None, operation)


def delete_changes(
    tags: Mapping[str, Any], keys: Iterable[str], only: Mapping[str, str]
) -> list[TagChange]:
    """What a bulk delete of ``keys`` (``only``: see ``goes``) removes from a trace's tags
    (a key named twice goes once)."""
    return [removal(tags, key) for key in dict.fromkeys(keys) if goes(tags, key, only)]


def apply(tags: dict[str, Any], changes: Iterable[TagChange]) -> dict[str, Any]:
    """``tags`` (changed in place) after ``changes``."""
    for change in changes:
        if change.removes:
            tags.pop(change.key, None)
        else:
            tags[change.key] = change.new_value
    return tags
