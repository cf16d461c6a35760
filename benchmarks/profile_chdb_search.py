"""Where a search's time goes on chdb: every statement traceduck sends, timed, beside the
hand-written ClickHouse SQL of the search suite, on the suite's cached chdb store.

    PYTHONPATH=src:benchmarks python benchmarks/profile_chdb_search.py [--traces 100000]
        [--rounds 5] [--query or] [--sql]

For each query of ``suites/search.py``: the median wall time of traceduck's whole call and
of each statement it issued (in order), and of the hand-written query; ``--sql`` prints the
statements too. Builds the store first if the cache has none (``_chdb_stores``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suites import _chdb_stores  # noqa: E402
from suites.search import CH_WHERE, QUERIES, _ch_sql, _td_search  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--query", action="append", help="query keys (default: all)")
    parser.add_argument("--sql", action="store_true", help="print the statements")
    parser.add_argument("--url", help="a chdb store to use instead of a copy of the cached one")
    args = parser.parse_args()
    if not args.url:
        _chdb_stores.ensure_chdb_stores([args.traces])

    import traceduck
    from traceduck.store.clickhouse import _client

    log: list[tuple[str, float]] = []

    def timed(name: str) -> Any:
        original = getattr(_client.Connection, name)

        def wrapper(self: Any, sql: str, *a: Any, **k: Any) -> Any:
            began = time.perf_counter()
            try:
                return original(self, sql, *a, **k)
            finally:
                log.append((sql, time.perf_counter() - began))

        return wrapper

    for name in ("query", "query_arrow", "command"):
        setattr(_client.Connection, name, timed(name))

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or _chdb_stores.copy_chdb_stores(Path(tmp), args.traces, linked=True)
        store = traceduck.TraceStore(url)
        client = store.conn.client
        for q in QUERIES:
            if args.query and q.key not in args.query:
                continue
            call = _td_search(store, q)
            text, params = _ch_sql(q), CH_WHERE[q.key][1]
            fetch = client.query_arrow if q.fetch_all else client.query
            call()  # warm-up
            fetch(text, parameters=params)
            total: list[float] = []
            per: list[list[float]] = []
            hand: list[float] = []
            statements: list[str] = []
            for _ in range(args.rounds):
                log.clear()
                began = time.perf_counter()
                call()
                total.append(time.perf_counter() - began)
                statements = [s for s, _ in log]
                per.append([t for _, t in log])
                began = time.perf_counter()
                fetch(text, parameters=params)
                hand.append(time.perf_counter() - began)
            ms = [statistics.median(ts) * 1000 for ts in zip(*per)]
            print(f"\n## {q.label} ({args.traces:,} traces)")
            print(f"traceduck {statistics.median(total) * 1000:.1f} ms, "
                  f"hand-written {statistics.median(hand) * 1000:.1f} ms; "
                  f"statements {len(ms)}: " + ", ".join(f"{m:.1f}" for m in ms))  # fmt: skip
            if args.sql:
                for s, m in zip(statements, ms):
                    print(f"-- {m:.1f} ms\n{s}")
                print(f"-- hand-written\n{text}")


if __name__ == "__main__":
    main()
