"""Where the exporter's time goes on each engine: the export() calls, then the flush's tail.

    PYTHONPATH=src python benchmarks/profile_exporter_phases.py [--rounds 5] [--batch 100]
        [--early-write N]

The ingest suite's exporter measurement (50,000 prebuilt spans, 5,000 traces of a root + 9
children, ``export()`` in batches of ``--batch`` then ``force_flush()``), into a new DuckDB file
and into a new chdb database, alternating, split in two: the export() calls (conversion in
this thread, the writer thread writing beside it) and the flush (what is still to write when
the last export() returns). Prints the medians of both, and the CPU time of this thread and
of all the others. ``--early-write``: the ClickHouse sink's ``early_write_spans`` (the queued
spans from which its writer starts before its interval is out).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suites.ingest import build_spans  # noqa: E402


def _thread_cpu() -> dict[str, float]:
    out: dict[str, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended
            continue
        out[tid] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--early-write", type=int)
    args = parser.parse_args()

    from traceduck import DuckDBSpanExporter
    from traceduck.store.clickhouse._sink import ClickHouseSink

    if args.early_write:
        ClickHouseSink.early_write_spans = args.early_write
    spans, warm = build_spans(5_000, seed=1), build_spans(1, seed=0)
    tmp = tempfile.mkdtemp(prefix="td-phases-")
    me = str(os.getpid())
    phases: dict[str, list[tuple[float, float, float, float]]] = {"duckdb": [], "chdb": []}
    for rnd in range(args.rounds):
        engines = ("duckdb", "chdb") if rnd % 2 == 0 else ("chdb", "duckdb")
        for engine in engines:
            store = (
                os.path.join(tmp, f"{rnd}.duckdb")
                if engine == "duckdb"
                else f"chdb://{tmp}/chdb?database=p{rnd}"
            )
            exporter = DuckDBSpanExporter(store)
            exporter.export(warm)
            exporter.force_flush()
            before = _thread_cpu()
            started = time.perf_counter()
            for i in range(0, len(spans), args.batch):
                exporter.export(spans[i : i + args.batch])
            exported = time.perf_counter()
            exporter.force_flush()
            flushed = time.perf_counter()
            after = _thread_cpu()
            exporter.shutdown()
            others = sum(v - before.get(t, 0.0) for t, v in after.items() if t != me)
            mine = after[me] - before[me]
            phases[engine].append((exported - started, flushed - exported, mine, others))
    print(
        f"{len(spans):,} spans, export batches of {args.batch:,}, {args.rounds} rounds,"
        f" load {os.getloadavg()[0]:.1f}; medians:"
    )
    for engine, rows in phases.items():
        export_s, flush_s, mine, others = (statistics.median(r[i] for r in rows) for i in range(4))
        print(
            f"  {engine:<6} export() {export_s * 1000:4.0f} ms, then flush {flush_s * 1000:3.0f} ms"
            f" = {len(spans) / (export_s + flush_s):,.0f} spans/s; CPU s: this thread"
            f" {mine:.2f}, the others {others:.2f}"
        )
    os._exit(0)  # every exporter was shut down


if __name__ == "__main__":
    main()
