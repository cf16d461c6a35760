"""Which traces a deletion takes: the selector arguments checked, and their SQL over ``traces t``.

``delete_traces`` (API, CLI, UI) and retention describe what to remove with MLflow's arguments:
a filter, trace ids, a cutoff time (``max_timestamp_millis`` or ``older_than``) and a cap
(``max_traces``, the oldest first). They are ANDed; at least one of the first three must be
given, so nothing ever deletes everything by default. This module knows no engine: the SQL is
built from the filter compiler's fragments for a ``Dialect``, so another engine runs the same
selection.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._duration import parse_duration
from .errors import FilterError
from .query._compiler import compile_filter_deferred
from .query._dialect import DUCKDB, Dialect, Frag, Param, sql

__all__ = ["SOURCES", "Selection"]

SOURCES = ("api", "cli", "ui", "retention")  # who deleted (the deletions table says)

_FULL_ID = re.compile(r"^(?:tr-)?([0-9a-f]{32})$")

NO_SELECTOR = (
    "delete_traces needs a selector: a filter, trace_ids, max_timestamp_millis or older_than "
    "(nothing was deleted). To delete every trace, say so with a filter that matches them all, "
    "such as \"trace_id LIKE '%'\""
)


@dataclass(frozen=True)
class Selection:
    """The traces to delete: every given condition holds (see the module docstring).

    ``trace_ids`` are lowercase; an id of 32 hex characters (with or without MLflow's ``tr-``)
    is taken as it is, anything shorter is a prefix that the store resolves to one trace before
    the deletion (``resolved``).
    """

    filter_string: str | None = None
    trace_ids: tuple[str, ...] | None = None
    max_timestamp_ms: int | None = None
    max_traces: int | None = None

    def __post_init__(self) -> None:
        # However it was made (delete_traces, retention's cutoff): in the engines' range.
        for name in ("max_timestamp_ms", "max_traces"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _clamp(int(value)))

    @classmethod
    def of(
        cls,
        filter_string: str | None = None,
        trace_ids: Iterable[str] | str | None = None,
        max_timestamp_millis: int | None = None,
        older_than: Any = None,
        max_traces: int | None = None,
        *,
        now_ms: int | None = None,
    ) -> Selection:
        """The selection ``delete_traces`` was called with, checked; ``FilterError`` when no
        selector is given or one is malformed (``ConfigError`` for a bad ``older_than``)."""
        if filter_string is not None and not isinstance(filter_string, str):
            raise FilterError(f"a filter must be a string, got {type(filter_string).__name__}")
        text = filter_string if filter_string and filter_string.strip() else None
        ids = None if trace_ids is None else _ids(trace_ids)
        cutoff = None
        if max_timestamp_millis is not None:
            cutoff = _int(max_timestamp_millis, "max_timestamp_millis", low=None)
        if older_than is not None:
            seconds = parse_duration(older_than, "older_than")
            now = int(time.time() * 1000) if now_ms is None else now_ms
            age_cutoff = now - int(min(seconds * 1000, 2.0**64))  # 1e308 s: before any time
            cutoff = age_cutoff if cutoff is None else min(cutoff, age_cutoff)
        limit = None if max_traces is None else _int(max_traces, "max_traces", low=1)
        if text is None and ids is None and cutoff is None:
            raise FilterError(NO_SELECTOR)
        return cls(text, ids, cutoff, limit)

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The ids that are prefixes, to be resolved by the store."""
        return tuple(i for i in self.trace_ids or () if len(i) != 32)

    def resolved(self, full_ids: dict[str, str]) -> Selection:
        """The selection with each prefix replaced by its full id (``{prefix: id}``)."""
        if self.trace_ids is None:
            return self
        ids = tuple(dict.fromkeys(full_ids.get(i, i) for i in self.trace_ids))
        return dataclasses.replace(self, trace_ids=ids)

    def where(self, con: Any, dialect: Dialect = DUCKDB) -> Frag:
        """A boolean SQL expression over ``traces t`` (``con`` answers the filter's probes)."""
        parts: list[Frag] = []
        if self.filter_string is not None:
            compiled = compile_filter_deferred(self.filter_string, con, dialect, defer=False)
            parts.append(compiled.frag)
        if self.max_timestamp_ms is not None:
            parts.append(sql("t.timestamp_ms < {}", Param(self.max_timestamp_ms, "BIGINT")))
        if self.trace_ids is not None:
            if not self.trace_ids:
                parts.append(Frag("FALSE"))
            else:
                ids = Frag.join(", ", [sql("{}", Param(i, "VARCHAR")) for i in self.trace_ids])
                parts.append(sql("t.trace_id IN ({})", ids))
        return Frag.join(" AND ", [sql("({})", p) for p in parts])

    def order_and_limit(self) -> Frag:
        """``ORDER BY ... LIMIT`` taking the oldest ``max_traces`` (empty without a cap)."""
        if self.max_traces is None:
            return Frag("")
        limit = Param(self.max_traces, "BIGINT")
        return sql(" ORDER BY t.timestamp_ms, t.trace_id LIMIT {}", limit)

    def record(self, deleted_ids: list[str] | None = None) -> dict[str, Any]:
        """What the ``deletions`` table keeps of this selection: the filter, the ids (those
        deleted, when the selection named ids), the cutoff and the cap."""
        return {
            "filter": self.filter_string,
            "trace_ids": None if self.trace_ids is None else (deleted_ids or []),
            "max_timestamp_ms": self.max_timestamp_ms,
            "max_traces": self.max_traces,
        }


def _ids(trace_ids: Iterable[str] | str) -> tuple[str, ...]:
    """Full ids and prefixes, lowercase; TraceNotFoundError for one that is neither (not hex,
    over 32 characters), as when an id is looked up: 32 characters of something else used to
    pass as a full id and match nothing, silently."""
    from .store._rows import id_prefix  # here: the store package imports this module

    if isinstance(trace_ids, str):  # one id, not its characters
        trace_ids = [trace_ids]
    out = []
    for raw in trace_ids:
        if not isinstance(raw, str) or not raw.strip():
            raise FilterError(f"trace_ids must be trace ids (strings), got {raw!r}")
        text = raw.strip().lower()
        full = _FULL_ID.match(text)
        out.append(full.group(1) if full else id_prefix(raw))
    return tuple(dict.fromkeys(out))


_INT64 = (-(2**63), 2**63 - 1)


def _clamp(value: int) -> int:
    """A cap or cutoff in the engines' 64-bit range: beyond it, it selects what the range's
    end does (a cap of 10**23 is no cap; a cutoff of 10**30 ms is after every trace). Out of
    range, DuckDB fails the cast and ClickHouse reads the value wrapped around."""
    return min(max(value, _INT64[0]), _INT64[1])


def _int(value: Any, name: str, *, low: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        want = "a positive integer" if low else "an integer"
        raise FilterError(f"{name} must be {want}, got {value!r}")
    return value
