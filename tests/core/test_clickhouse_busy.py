"""A tight traced loop into chdb with the default queues: every trace stored.

The writer takes up to 50,000 spans a batch; with one-span traces that is up to 50,000 trace ids
in the statements that look up what is stored already, which must stay within ClickHouse's
``max_query_size`` (262,144 bytes by default: ~7,000 ids written as literals)."""

from __future__ import annotations

from pathlib import Path

import traceduck as td
from _engines import new_store_name

CALLS = 30_000


@td.trace
def plain(i: int) -> int:
    return i + 1


def test_a_tight_loop_with_default_queues_stores_every_trace_in_chdb(tmp_path: Path) -> None:
    name = new_store_name("chdb", tmp_path)
    td.configure(db=name)
    assert [plain(i) for i in range(CALLS)][-1] == CALLS
    assert td.flush(timeout_s=120) is True, td.stats()
    assert td.stats()["dropped_traces"] == 0
    assert td.TraceStore(name).count_traces() == CALLS
