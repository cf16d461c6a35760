"""Trace statistics per group, the part every engine shares: the columns one may group by and
the dicts ``TraceStore.stats`` returns (each engine runs its own query for the rows).

    >>> TraceStore("traces.duckdb").stats("tags.env = 'prod'", by="name")
    [{'group': 'answer', 'count': 120, 'errors': 6, 'error_rate': 0.05,
      'p50_ms': 2.1, 'p95_ms': 8.4, 'p99_ms': 11.9, 'max_ms': 14.0}]
"""

from __future__ import annotations

from typing import Any

from .. import _json
from ..errors import FilterError

__all__ = ["GROUP_FIELDS", "bad_group", "stat_groups"]

# --by values that name a column of ``traces``; tags.KEY and metadata.KEY[.PATH] come on top.
GROUP_FIELDS = ("name", "status", "service_name")


def bad_group(by: str) -> FilterError:
    """The error for a ``by`` that names no column, tag or metadata key."""
    return FilterError(
        f"cannot group by {by!r}: use name, status, service_name, tags.KEY or metadata.KEY"
    )


def stat_groups(rows: list[tuple[Any, ...]], is_json: bool) -> list[dict[str, Any]]:
    """The groups' dicts from rows of (group, count, errors, p50, p95, p99, max); ``is_json``:
    the group value is JSON text (a tag or metadata value). Shared by both engines."""
    return [
        {
            "group": _json.loads(g) if is_json else g,
            "count": n,
            "errors": errors,
            "error_rate": errors / n if n else 0.0,
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "max_ms": mx,
        }
        for g, n, errors, p50, p95, p99, mx in rows
    ]
