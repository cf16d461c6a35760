"""What DuckDB's checkpoints cost a tracing process's writes, at three checkpoint thresholds.

    PYTHONPATH=src python benchmarks/profile_checkpoints.py [--writes 30] [--traces 8000]

For each threshold (DuckDB's default 16MiB, traceduck's ``CHECKPOINT_THRESHOLD`` 64MiB, and
256MiB), in a fresh process: ``--writes`` batches of ``--traces`` one-span traces each (made by
``@traceduck.trace`` calls, converted as the exporter does), written one after the other with
the DuckDB writer into one new file, in one thread. Prints the sum of the writes' times, the
median of the writes whose commit did not checkpoint, the times of those that did (the WAL
file shrank), the final CHECKPOINT (what letting go of the file would pay) and the process's
peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

THRESHOLDS = ("16MiB", "64MiB", "256MiB")


def measure(threshold: str, writes: int, traces: int) -> None:
    from _bypass import bypassed
    from traceduck._export._assembler import batch_of
    from traceduck._export._redacting import redact_rows
    from traceduck.store.duckdb import _sink
    from traceduck.store.duckdb._writer import write_batch

    _sink.CHECKPOINT_THRESHOLD = threshold
    traced = bypassed(os.path.join(tempfile.mkdtemp(), "checkpoints.duckdb"))
    db = traced.exporter.sink.db
    wal = db.path + ".wal"

    def wal_size() -> int:
        return os.path.getsize(wal) if os.path.exists(wal) else 0

    times = []
    checkpointed = []
    for _ in range(writes):
        batch = batch_of(traced.convert(redact_rows(traced.trace(traces))))
        before = wal_size()
        started = time.perf_counter()
        write_batch(db, batch)
        times.append(time.perf_counter() - started)
        checkpointed.append(wal_size() < before)
    with db.lease(write=True) as cur:
        started = time.perf_counter()
        cur.execute("CHECKPOINT")
        final = time.perf_counter() - started
    median = statistics.median(t for t, c in zip(times, checkpointed) if not c)
    slow = [f"{t * 1000:.0f}" for t, c in zip(times, checkpointed) if c]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{threshold:>7}: writes {sum(times) * 1000:6.0f} ms"
        f" (without a checkpoint: median {median * 1000:.0f} ms;"
        f" {len(slow)} checkpointed: {', '.join(slow) or '-'} ms), final CHECKPOINT"
        f" {final * 1000:.0f} ms, total {(sum(times) + final) * 1000:.0f} ms, peak RSS {rss:.0f} MB"
    )
    os._exit(0)  # the exporter's queue was bypassed: nothing to flush


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=30)
    parser.add_argument("--traces", type=int, default=8_000)
    parser.add_argument("--threshold", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threshold:
        measure(args.threshold, args.writes, args.traces)
        return
    print(f"{args.writes} writes of {args.traces:,} one-span traces, load {os.getloadavg()[0]:.1f}")
    for threshold in THRESHOLDS:  # each in a fresh process
        cmd = [sys.executable, __file__, "--threshold", threshold]
        cmd += ["--writes", str(args.writes), "--traces", str(args.traces)]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
