"""A tight traced loop into DuckDB and into chdb: where each process's CPU goes, thread by thread.

    PYTHONPATH=src python benchmarks/profile_busy_threads.py [--calls 100000] [--rounds 2]

Each round runs, in a fresh process per engine (alternating which goes first), the busy
suite's tight loop (``@trace def f(x): return x + 1``, ``configure(db=...)`` defaults) after
one warm-up call and flush, then ``flush()``. Prints the calls' and the flush's wall time, the
process's CPU, and the CPU of each thread: traceduck's threads by their Python names
(``MainThread`` is the app's), the engine's by the name the OS knows them by (chdb's
``ThreadPool`` runs its queries, ``MergeMutate`` its background merges).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suites._common import in_fresh_process  # noqa: E402


def _thread_cpu() -> dict[str, tuple[str, float]]:
    """Per OS thread of this process: (its name, CPU seconds so far)."""
    names = {str(t.native_id): t.name for t in threading.enumerate()}
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[tid] = (names.get(tid, comm), (int(fields[11]) + int(fields[12])) / ticks)
    return out


def _loop(db: str, calls: int) -> dict[str, Any]:
    """Runs in a fresh process: the tight loop into ``db``."""
    import traceduck as td

    td.configure(db=db)

    @td.trace
    def f(x: int) -> int:
        return x + 1

    f(0)
    td.flush()
    before = _thread_cpu()
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(calls):
        f(i)
    called = time.perf_counter()
    flushed = td.flush()
    ended = time.perf_counter()
    threads: collections.Counter[str] = collections.Counter()
    for tid, (name, seconds) in _thread_cpu().items():
        threads[name] += seconds - before.get(tid, (name, 0.0))[1]
    return {
        "calls_s": called - started,
        "flush_s": ended - called,
        "cpu_s": time.process_time() - cpu,
        "flushed": flushed,
        "threads": dict(threads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="td-busy-threads-"))
    engines = ["duckdb", "chdb"]
    print(f"a tight loop of {args.calls:,} traced calls, then flush(); load "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    for rnd in range(args.rounds):
        for engine in engines[:: 1 if rnd % 2 == 0 else -1]:
            db = str(tmp / f"{rnd}.duckdb") if engine == "duckdb" else f"chdb://{tmp / f'c{rnd}'}"
            r = in_fresh_process(_loop, db, args.calls)
            busiest = sorted(r["threads"].items(), key=lambda kv: -kv[1])
            shown = ", ".join(f"{name} {s:.2f}" for name, s in busiest if s >= 0.01)
            print(
                f"  round {rnd + 1}, {engine:6s}: calls {r['calls_s']:.2f} s, flush "
                f"{r['flush_s']:.2f} s (all written: {r['flushed']}), process CPU "
                f"{r['cpu_s']:.2f} s; CPU s by thread: {shown}"
            )


if __name__ == "__main__":
    main()
