"""Captured inputs and outputs: JSON-safe values with a size limit and a fallback repr.

The caller's thread does as little as possible: immutable scalars are kept as they are and
encoded later by the exporter's thread; anything mutable is snapshotted at call time (so a list
the function changes later is recorded as it was), then encoded later too.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import inspect
import itertools
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from . import _json
from ._constants import MAX_CAPTURE_CHARS

_SCALARS = frozenset({int, float, str, bool, type(None)})
_MAX_ITEMS = 1000  # per container, when snapshotting
_MAX_DEPTH = 20
# Items per snapshot, all containers together: each item is at least two characters of JSON,
# so a value with more is over the size limit anyway; and a container that holds itself or
# shares parts (a list of the same list, twice at each level) is walked in bounded time.
_MAX_TOTAL_ITEMS = MAX_CAPTURE_CHARS // 2


def snapshot(value: Any) -> Any:
    """A JSON-safe copy of ``value`` taken now (scalars as they are)."""
    if type(value) in _SCALARS:
        return value
    return _jsonable(value, 0, [_MAX_TOTAL_ITEMS])


def snapshot_args(names: tuple[str, ...], args: tuple, kwargs: dict) -> Any:
    """Bound arguments in a cheap, deferred form (the caller leaves ``self``/``cls`` out).

    Returns a tuple (names, args, kwargs) when every value is an immutable scalar; else a dict
    snapshot. ``encode_inputs`` turns either into JSON later.
    """
    for value in args:
        if type(value) not in _SCALARS:
            return _bind_snapshot(names, args, kwargs)
    if kwargs:
        for value in kwargs.values():
            if type(value) not in _SCALARS:
                return _bind_snapshot(names, args, kwargs)
    return (names, args, kwargs)


def _bind_snapshot(names: tuple[str, ...], args: tuple, kwargs: dict) -> dict[str, Any]:
    budget = [_MAX_TOTAL_ITEMS]
    return {k: _jsonable(v, 0, budget) for k, v in _bind(names, args, kwargs).items()}


def _bind(names: tuple[str, ...], args: tuple, kwargs: dict) -> dict[str, Any]:
    """Positional values by parameter name; extras go under the ``*args`` name (or "args")."""
    bound: dict[str, Any] = {}
    star = "args"
    for i, value in enumerate(args):
        name = names[i] if i < len(names) else "*" + star
        if name.startswith("*"):
            star = name[1:]
            bound[star] = list(args[i:])
            break
        bound[name] = value
    bound.update(kwargs)
    return bound


def _plain_count(names: tuple[str, ...]) -> int:
    """How many of ``names`` come before a ``*args`` parameter."""
    return next((i for i, name in enumerate(names) if name.startswith("*")), len(names))


def encode_inputs(deferred: Any) -> str | None:
    """JSON text of captured inputs (from ``snapshot_args`` or ``set_inputs``)."""
    if deferred is None:
        return None
    if type(deferred) is tuple:
        names, args, kwargs = deferred
        if not kwargs:
            text = _positional_json(names, args)
            if text is not None:
                return text
        deferred = _bind(names, args, kwargs)
    return encode(deferred)


# JSON of the scalars ``encode`` writes the same way every time (the rest take the encoder).
_SCALAR_JSON: dict[type, Callable[[Any], str]] = {
    int: int.__repr__,
    bool: lambda value: "true" if value else "false",
    type(None): lambda value: "null",
}
# '"name":' for each positional parameter name before any ``*args``, per signature (names
# are identifiers: no escaping).
_KEYS_JSON: dict[tuple[str, ...], tuple[str, ...]] = {}


def _positional_json(names: tuple[str, ...], args: tuple) -> str | None:
    """``encode(_bind(names, args, {}))`` without the dict and the encoder, for the commonest
    inputs: positional ints, booleans, None and ASCII text, each under its own name. None
    when another path must encode them (it gives the same text, slower)."""
    keys = _KEYS_JSON.get(names)
    if keys is None:
        if len(_KEYS_JSON) >= 4096:
            _KEYS_JSON.clear()
        keys = _KEYS_JSON[names] = tuple(f'"{n}":' for n in names[: _plain_count(names)])
    if len(args) > len(keys):
        return None
    parts = []
    for key, value in zip(keys, args):
        kind = type(value)
        if kind is str:
            if not value.isascii():
                return None
            parts.append(key + _json.quote(value))
        else:
            write = _SCALAR_JSON.get(kind)
            if write is None:
                return None
            parts.append(key + write(value))
    text = "{" + ",".join(parts) + "}"
    return text if len(text) <= MAX_CAPTURE_CHARS else None


def encode(value: Any) -> str:
    """JSON text of an already JSON-safe (or scalar) value, cut to the size limit."""
    text = _json.dumps_lenient(value)
    if len(text) > MAX_CAPTURE_CHARS:
        text = _json.dumps(text[: MAX_CAPTURE_CHARS - 40] + f"... [truncated {len(text)} chars]")
    return text


def parameter_names(func: Callable[..., Any]) -> tuple[str, ...]:
    """Positional parameter names, with '*name' for ``*args``."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return ()
    names: list[str] = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind is p.VAR_POSITIONAL:
            names.append("*" + p.name)
    return tuple(names)


def _jsonable(value: Any, depth: int, budget: list[int]) -> Any:
    """``value`` made JSON-safe; ``budget[0]``: how many more container items it may take."""
    t = type(value)
    if t in _SCALARS:
        if t is float and (value != value or value in (float("inf"), float("-inf"))):
            return repr(value)
        return value
    if depth >= _MAX_DEPTH:
        return _repr(value)
    if isinstance(value, Mapping):
        room = budget[0]
        if room > _MAX_ITEMS:
            room = _MAX_ITEMS
        out: dict[str, Any] = {}
        for i, (k, v) in enumerate(value.items()):
            if i >= room:
                out["..."] = f"{len(value) - i} more items"
                break
            budget[0] -= 1  # before the item's own items are taken
            out[k if isinstance(k, str) else str(k)] = _jsonable(v, depth + 1, budget)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        room = budget[0]
        if room > _MAX_ITEMS:
            room = _MAX_ITEMS
        # never a copy of the whole container, nor more of it than is kept
        items = value[:room] if t is list or t is tuple else list(itertools.islice(value, room))
        budget[0] -= len(items)
        result = [_jsonable(v, depth + 1, budget) for v in items]
        if len(value) > len(items):
            result.append(f"... {len(value) - len(items)} more items")
        return result
    if isinstance(value, (bool, int, float, str)):  # subclasses, e.g. IntEnum
        return value.value if isinstance(value, enum.Enum) else t.__mro__[-2](value)
    if isinstance(value, enum.Enum):
        return _jsonable(value.value, depth + 1, budget)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal, PurePath)):
        return str(value)
    if isinstance(value, bytes):
        return value[:256].decode("utf-8", "backslashreplace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        if len(fields) > budget[0]:
            return _repr(value)
        budget[0] -= len(fields)
        return {f.name: _jsonable(getattr(value, f.name, None), depth + 1, budget) for f in fields}
    dump = getattr(value, "model_dump", None)  # pydantic v2 models
    if callable(dump) and not isinstance(value, type):
        try:
            return _jsonable(dump(), depth + 1, budget)
        except Exception:
            pass
    return _repr(value)


def _repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__qualname__} object>"
    return text if len(text) <= 1000 else text[:1000] + "..."
