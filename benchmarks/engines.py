"""The same searches on DuckDB and on ClickHouse (chdb), over the same generated traces.

    PYTHONPATH=src python benchmarks/engines.py --traces 100000 --rounds 7

Writes N one-span traces with live tags (``env`` among 3 values, ``user_id`` among 10,000, a
numeric ``cost``; 10% also carry a string ``cost``) through each engine's batch writer (the
exporter's path, 10,000 traces a batch), then times ``TraceStore.search_traces`` for each
query, interleaved round-robin, and prints the p50 of each engine in ms. Both engines must
return the same trace ids in the same order. Needs the clickhouse extra.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from traceduck import TraceStore
from traceduck.store._records import SpanRows, TraceRow, WriteBatch

QUERIES = [
    ("tags.env = 'prod', newest 100", "tags.env = 'prod'", None),
    ("tags.cost > 3, newest 100", "tags.cost > 3", None),
    ("tags.user_id = 'user_42'", "tags.user_id = 'user_42'", None),
    ("tags.cost > 3 by tags.cost DESC, top 100", "tags.cost > 3", ["tags.cost DESC"]),
    ("status = 'ERROR' AND execution_time_ms > 500", "status = 'ERROR' AND execution_time_ms > 500",
     None),
]  # fmt: skip


def batches(n: int, size: int = 10_000):
    rng = random.Random(42)
    start = 1_700_000_000_000_000_000
    for first in range(0, n, size):
        spans = SpanRows()
        rows = []
        for i in range(first, min(n, first + size)):
            tid, sid = f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}"
            begin = start + i * 26_000_000_000
            end = begin + int(rng.lognormvariate(18.8, 1.0))
            status = "ERROR" if rng.random() < 0.01 else "OK"
            cost: object = round(rng.uniform(0, 10), 3)
            if rng.random() < 0.1:
                cost = str(cost)
            tags = {"env": rng.choice(["prod", "staging", "dev"]),
                    "user_id": f"user_{rng.randrange(10_000)}", "cost": cost}  # fmt: skip
            ms = (end - begin) / 1e6
            span = (tid, sid, None, "answer", "CHAIN", status, None, begin, end, ms)
            spans.append((*span, "INTERNAL", "svc", "{}", None, None, None))
            rows.append(TraceRow(tid, "answer", status, None, begin, end, 1, "svc", sid, True,
                                 True, tags=tags))  # fmt: skip
        yield WriteBatch(spans, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="td-engines-"))
    try:
        stores = {
            "duckdb": TraceStore(str(tmp / "bench.duckdb")),
            "chdb": TraceStore(f"chdb://{tmp / 'chdb'}"),
        }
        for name, store in stores.items():
            began = time.perf_counter()
            for batch in batches(args.traces):
                store.write_batch(batch)
            took = time.perf_counter() - began
            print(f"{name}: wrote {args.traces:,} traces in {took:.1f} s", file=sys.stderr)
        print(f"| query ({args.traces:,} traces) | DuckDB p50 ms | chdb p50 ms |")
        print("|---|---|---|")
        for label, flt, order in QUERIES:
            times: dict[str, list[float]] = {name: [] for name in stores}
            answers = {}
            for _ in range(args.rounds):
                for name, store in stores.items():
                    began = time.perf_counter()
                    page = store.search_traces(flt, order_by=order, max_results=100)
                    times[name].append((time.perf_counter() - began) * 1000)
                    answers[name] = [t.info.trace_id for t in page]
            same = answers["duckdb"] == answers["chdb"]
            p50 = {name: statistics.median(ts) for name, ts in times.items()}
            flag = "" if same else " (DIFFERENT ANSWERS)"
            print(f"| `{label}`{flag} | {p50['duckdb']:.1f} | {p50['chdb']:.1f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
