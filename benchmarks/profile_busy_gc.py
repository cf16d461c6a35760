"""Where a tight traced loop's time goes: garbage collection, file reopens, per-thread CPU.

    PYTHONPATH=src python benchmarks/profile_busy_gc.py [--calls 50000]

Traces ``def f(x): return x + 1`` in a loop into a fresh DuckDB file, then ``flush()``, and
prints the wall time, the time the cyclic GC took per generation (and how many collections),
the CPU time of each thread (caller, span processor, writer), how many times the writer
opened the file, and whether tracing imported pandas (pyarrow would, on its first conversion of
Python values; the DuckDB writer hands DuckDB NumPy arrays instead).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time


def _thread_cpu() -> dict[str, float]:
    out: dict[str, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open(f"/proc/self/task/{tid}/comm") as fh:
            name = fh.read().strip()
        out[f"{name} ({tid})"] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    args = parser.parse_args()
    import traceduck as td
    from traceduck import _config

    collections = {g: [0, 0.0] for g in range(3)}
    started: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            entry = collections[info["generation"]]
            entry[0] += 1
            entry[1] += time.perf_counter() - started[0]

    with tempfile.TemporaryDirectory() as tmp:
        td.configure(db=os.path.join(tmp, "t.duckdb"))

        @td.trace
        def f(x: int) -> int:
            return x + 1

        f(0)
        td.flush()
        gc.callbacks.append(on_gc)
        cpu0 = _thread_cpu()
        t0 = time.perf_counter()
        for i in range(args.calls):
            f(i)
        ok = td.flush()
        wall = time.perf_counter() - t0
        gc.callbacks.remove(on_gc)
        cpu1 = _thread_cpu()
        exporter = _config._S.exporter
        opens = exporter.sink.db.opens if exporter and exporter.sink.db else None
        stored = td.TraceStore(os.path.join(tmp, "t.duckdb")).count_traces()
        td.shutdown()
    gc_total = sum(v[1] for v in collections.values())
    print(f"{args.calls:,} calls + flush: {wall:.2f} s, flush() {ok}, {stored:,} stored")
    print(f"GC: {gc_total:.2f} s ({100 * gc_total / wall:.0f}% of the wall time)")
    for gen, (count, seconds) in collections.items():
        print(f"  generation {gen}: {count} collections, {seconds:.3f} s")
    print("CPU s per thread that used any (by thread id: the caller, then traceduck's):")
    for name, seconds in cpu1.items():
        spent = seconds - cpu0.get(name, 0.0)
        if spent >= 0.01:
            print(f"  {name}: {spent:.2f}")
    print(f"file opens by the writer: {opens}")
    print(f"pandas imported by tracing: {'pandas' in sys.modules}")
    print(f"GC-tracked objects at the end: {len(gc.get_objects()):,}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
