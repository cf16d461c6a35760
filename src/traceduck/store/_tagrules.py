"""The rules every engine applies to tags and metadata: valid keys and values, exclusive scopes.

Checked before anything is written, by the stores, the tracing path and the CLI alike, so a
bad key or value is the same ``TagError`` on either engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .. import _json
from .._constants import ATTR_PREFIX, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_BYTES
from ..errors import TagError

__all__ = [
    "MISSING",
    "SCOPES",
    "appended",
    "check_exclusive_bulk",
    "check_key",
    "check_removal",
    "check_scope",
    "encode_value",
    "goes",
    "scope_value",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SCOPES = ("name", "global")
MISSING: Any = object()  # delete_trace_tag without a value: whatever the value


def check_key(key: object) -> str:
    """A valid tag (or metadata) key, or TagError saying what is wrong with it."""
    if not isinstance(key, str):
        raise TagError(f"tag key must be a string, not {type(key).__name__}: {key!r}")
    if not key:
        raise TagError("tag key must not be empty")
    if len(key) > MAX_TAG_KEY_LEN:
        raise TagError(f"tag key is {len(key)} characters long; the limit is {MAX_TAG_KEY_LEN}")
    if _CONTROL.search(key):
        raise TagError(f"tag key {key!r} contains a control character")
    if key.startswith(ATTR_PREFIX):
        raise TagError(f"tag key {key!r} uses the reserved prefix {ATTR_PREFIX!r}")
    return key


def encode_value(value: Any, key: str = "") -> str:
    """The value as JSON text, or TagError if it is not a JSON value or is too large."""
    try:
        text = _json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TagError(
            f"tag {key!r}: value {value!r} is not a JSON value (strings, numbers, booleans, "
            f"null, lists and objects of them): {exc}"
        ) from None
    if len(text.encode()) > MAX_TAG_VALUE_BYTES:
        raise TagError(
            f"tag {key!r}: value is {len(text.encode())} bytes of JSON; the limit is "
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
