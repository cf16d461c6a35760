"""The harness of the scripts that time one stage of the export path on its own.

``bypassed(db)`` configures traceduck into ``db`` and returns a decorated ``f(x) = x + 1``
whose ended spans are kept (as the span processor's ``EndedSpan`` tuples) instead of reaching
the exporter, the exporter itself, and the list its ``enqueue`` fills instead of its write
queue: a script then converts (``exporter.export_rows``), batches (``batch_of``) and writes
(the store's ``write_batch``) by hand, timing each step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor


class Keep(SpanProcessor):
    """A span processor that keeps ``take(span)`` of each ended span."""

    def __init__(self, take: Callable[[Any], Any]) -> None:
        self.items: list[Any] = []
        self.take = take

    def on_end(self, span: Any) -> None:
        self.items.append(self.take(span))


@dataclass
class Bypass:
    f: Callable[[int], int]  # the decorated function
    ended: list[Any]  # the EndedSpans of its calls, in order
    exporter: Any  # traceduck's store exporter
    queued: list[Any]  # what export_rows queued for the writer

    def trace(self, calls: int) -> list[Any]:
        """``calls`` calls of ``f``: their ended spans (the list is reset first)."""
        self.ended.clear()
        for i in range(calls):
            self.f(i)
        return list(self.ended)

    def convert(self, spans: list[Any]) -> list[Any]:
        """The exporter's conversion of ``spans``: the traces it queued."""
        self.queued.clear()
        self.exporter.export_rows(spans)
        return list(self.queued)


def bypassed(db: str, **settings: Any) -> Bypass:
    """Configure traceduck into ``db`` (and ``settings``; one warm-up call written), then
    bypass its exporter."""
    import traceduck as td
    from traceduck import _config
    from traceduck._export._ended import ended

    td.configure(db=db, **settings)

    @td.trace
    def f(x: int) -> int:
        return x + 1

    f(0)
    td.flush()
    keep = Keep(ended)
    assert _config._S.switch is not None and _config._S.exporter is not None
    _config._S.switch.target = keep
    exporter = _config._S.exporter
    queued: list[Any] = []
    exporter.enqueue = queued.extend
    return Bypass(f, keep.items, exporter, queued)
