"""Filters of many ORs on chdb: on one tag key, as an IN list, and over as many different keys.

    PYTHONPATH=src python benchmarks/profile_many_ors.py [--ors 50 200 500]

Writes the query tests' fixed dataset (tests/query/querytest_data.py) into a new chdb
database, then times ``search_traces`` for ``tags.env = 'p0' OR tags.env = 'p1' OR ...``, for
the same values as ``tags.env IN (...)``, and for ``tags.k0 = 'x' OR tags.k1 = 'x' OR ...``,
with the number of statements each sent to the engine. A failed search prints its error.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "query")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ors", type=int, nargs="+", default=[50, 200, 500])
    args = parser.parse_args()

    from querytest_data import TRACES

    import traceduck as td
    from _engines import write_rows
    from traceduck.store.clickhouse import _client

    store = td.TraceStore(f"chdb://{tempfile.mkdtemp(prefix='td-ors-')}?database=ors")
    write_rows(store, TRACES)
    sent = [0]
    query = _client.Connection.query

    def counted(self: Any, sql: str, *a: Any, **k: Any) -> Any:
        sent[0] += 1
        return query(self, sql, *a, **k)

    _client.Connection.query = counted  # type: ignore[method-assign]
    for n in args.ors:
        filters = {
            "ORs on one key": " OR ".join(f"tags.env = 'p{i}'" for i in range(n)),
            "IN list": "tags.env IN (" + ", ".join(f"'p{i}'" for i in range(n)) + ")",
            "ORs over as many keys": " OR ".join(f"tags.k{i} = 'x'" for i in range(n)),
        }
        for label, text in filters.items():
            sent[0] = 0
            started = time.perf_counter()
            try:
                store.search_traces(text, max_results=None)
                outcome = f"{time.perf_counter() - started:6.2f} s, {sent[0]} statements"
            except td.TraceduckError as exc:
                outcome = f"failed: {str(exc).splitlines()[0][:100]}"
            print(f"{n:>5} {label:<22} {outcome}")


if __name__ == "__main__":
    main()
