"""A small store written through the real tracing path (decorators -> exporter -> DuckDB)."""

from __future__ import annotations

import traceduck as td

N_CHECKOUT = 6  # tags.env = 'prod'
N_SEARCH = 4  # tags.env = 'dev'
N_PING = 10  # no tags: 21 traces in all, so some two ids share a first hex digit
N_TOTAL = N_CHECKOUT + N_SEARCH + 1 + N_PING


def build_store(path: str) -> None:
    """Traces: 6 ``checkout`` (prod, one ERROR), 4 ``search`` (dev), 1 ``report`` (label
    ``weekly``), 10 ``ping`` (no tags)."""
    td.configure(db=path, auto_context=False)

    @td.trace(span_type="TOOL")
    def lookup(item: str) -> dict:
        return {"item": item, "price": 3.5, "notes": "x" * 1000}

    @td.trace
    def checkout(order: int) -> str:
        td.update_current_trace(tags={"env": "prod", "cost": round(0.5 * order, 2)},
                                metadata={"user": f"u{order % 3}"})  # fmt: skip
        lookup(f"item-{order}")
        if order == 3:
            raise ValueError("card declined for order 3")
        return f"ok {order}"

    @td.trace
    def search(query: str) -> list:
        td.update_current_trace(tags={"env": "dev"})
        return [query] * 3

    @td.trace
    def report() -> None:
        td.update_current_trace(tags=["weekly"])

    for i in range(N_CHECKOUT):
        try:
            checkout(i)
        except ValueError:
            pass
    for q in ("a", "b", "c", "d"):
        search(q)
    report()

    @td.trace
    def ping(n: int) -> int:
        return n

    for n in range(N_PING):
        ping(n)
    assert td.flush(10)
    td.shutdown()
