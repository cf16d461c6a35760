"""Trace statistics per group, the part every engine shares: what ``by`` names, the order of
the groups and the dicts ``TraceStore.stats`` returns (each engine runs its own query for the
rows).

    >>> TraceStore("traces.duckdb").stats("tags.env = 'prod'", by="name")
    [{'group': 'answer', 'count': 120, 'errors': 6, 'error_rate': 0.05,
      'p50_ms': 2.1, 'p95_ms': 8.4, 'p99_ms': 11.9, 'max_ms': 14.0}]

Both engines read ``by`` with the filter language's own parser, so ``tags.`a b```,
``tag.k``, ``metadata.eval.accuracy`` and ``request_metadata.k`` name the same field in
``--by`` as in a filter, on either engine.
"""

from __future__ import annotations

import json
from typing import Any

from .. import _json
from ..errors import FilterError

__all__ = ["GROUP_FIELDS", "bad_group", "group_field", "stat_groups"]

# --by values that name a column of ``traces``; tags.KEY and metadata.KEY[.PATH] come on top.
GROUP_FIELDS = ("name", "status", "service_name")


def bad_group(by: str) -> FilterError:
    """The error for a ``by`` that names no column, tag or metadata key."""
    return FilterError(
        f"cannot group by {by!r}: use name, status, service_name, tags.KEY or metadata.KEY"
    )


def group_field(by: str | None) -> Any:
    """What ``by`` groups on: None (one group), a column of ``traces`` (a str), or the tag
    or metadata ``FieldRef`` it names.

    ``by`` is read as a filter spells a field (``tags.`a b```, ``tag.k``,
    ``request_metadata.k``, ``metadata.eval.accuracy``); where that does not parse, the whole
    rest after ``tags.`` or ``metadata.`` is the key, as the UI and ``--by`` users write a
    key with spaces or symbols (``tags.<b>note</b>``)."""
    from ..query._ast import FieldRef, Predicate
    from ..query._fields import KEYED_PREFIXES
    from ..query._parser import parse

    if by is None or not by.strip():
        return None
    field = by.strip()
    if field in GROUP_FIELDS:
        return field
    try:
        node = parse(f"{field} IS NULL")
    except FilterError:
        node = None
    if isinstance(node, Predicate) and node.field.family in ("tag", "metadata"):
        return node.field
    head, dot, rest = field.partition(".")
    family = KEYED_PREFIXES.get(head.lower()) if node is None and dot else None
    key = rest.strip("`")
    if family == "tag" and key:
        return FieldRef("tag", "tag", field, 0, len(field), key=key)
    parts = key.split(".")
    if family == "metadata" and all(parts):
        candidates = tuple(
            (".".join(parts[:i]), tuple(parts[i:])) for i in range(len(parts), 0, -1)
        )
        return FieldRef("metadata", "metadata", field, 0, len(field), key=key,
                        candidates=candidates)  # fmt: skip
    raise bad_group(by)


def _exact_ms(value: float | None) -> float | None:
    """An interpolated latency in ms, the same float on every engine.

    The engines interpolate percentiles with different float formulas, so the last bits
    differ (971.9227648000001 against 971.9227648). Between two latencies of whole
    nanoseconds, p50/p95/p99 fall exactly on a multiple of 0.01 ns (the fraction is k/100):
    the value is snapped to that grid (the engines' error is a million times smaller for any
    latency under a few hours), which gives both the same float, and the exact one.
    """
    if value is None:
        return None
    return round(value * 1e8) / 1e8


def _order(row: tuple[Any, ...], is_json: bool) -> tuple[Any, ...]:
    """Largest group first; among equal counts by value (strings by their text, numbers by
    size, then booleans, lists, objects and JSON null), the traces without the key last."""
    g, n = row[0], row[1]
    if g is None:
        return (-n, 1, 0, "")
    value = _json.loads(g) if is_json else g
    if isinstance(value, str):
        return (-n, 0, 0, value)
    if isinstance(value, bool):
        return (-n, 0, 2, str(value).lower())
    if isinstance(value, (int, float)):
        return (-n, 0, 1, value, repr(value))  # int and float compare exactly
    rank = {list: 3, dict: 4}.get(type(value), 5)
    return (-n, 0, rank, json.dumps(value, sort_keys=True, ensure_ascii=False))


def stat_groups(rows: list[tuple[Any, ...]], is_json: bool) -> list[dict[str, Any]]:
    """The groups' dicts from rows of (group, count, errors, p50, p95, p99, max); ``is_json``:
    the group value is JSON text (a tag or metadata value). Shared by both engines: they
    order and round here, so that equal counts and float noise cannot tell them apart."""
    return [
        {
            "group": _json.loads(g) if is_json and g is not None else g,
            "count": n,
            "errors": errors,
            "error_rate": errors / n if n else 0.0,
            "p50_ms": _exact_ms(p50),
            "p95_ms": _exact_ms(p95),
            "p99_ms": _exact_ms(p99),
            "max_ms": mx,
        }
        for g, n, errors, p50, p95, p99, mx in sorted(rows, key=lambda r: _order(r, is_json))
    ]
