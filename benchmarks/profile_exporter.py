"""Exporter throughput alone, for comparing two versions of the code side by side.

    PYTHONPATH=src python benchmarks/profile_exporter.py [--rounds 4] [--chdb]

The ingest suite's exporter measurement (``suites.ingest.export_once``: 50,000 prebuilt spans,
``export()`` + ``force_flush()`` into a fresh store file, at export batches of 1, 100 and
10,000; ``--chdb``: into new chdb databases instead), without the rest of the suite: a run
takes about 15 s, so runs of two checkouts
(``PYTHONPATH=/tmp/old/src`` after ``git worktree add /tmp/old <commit>``) can alternate on a
machine whose speed drifts. Prints the median, min and max spans/s per batch size.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suites.ingest import BATCH_SIZES, build_spans, export_once  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--traces", type=int, default=5_000, help="traces of a root + 9 children")
    parser.add_argument("--chdb", action="store_true", help="into chdb instead of DuckDB files")
    args = parser.parse_args()
    spans = build_spans(args.traces, seed=1)
    warm = build_spans(1, seed=0)
    gc.collect()
    gc.freeze()  # the prebuilt spans are the fixture, not the app's heap (as in the suite)
    rates: dict[int, list[float]] = {size: [] for size in BATCH_SIZES}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for size in BATCH_SIZES:
                store = (
                    f"chdb://{tmp}/chdb?database=e{size}_{rnd}"
                    if args.chdb
                    else Path(tmp) / f"{size}-{rnd}.db"
                )
                seconds, written = export_once(spans, warm, size, store)
                if written != len(spans):
                    sys.exit(f"batch {size}: {written:,} of {len(spans):,} spans written")
                rates[size].append(len(spans) / seconds)
    gc.unfreeze()
    for size, values in rates.items():
        print(
            f"batch {size:>6,}: median {statistics.median(values):>9,.0f} spans/s "
            f"(min {min(values):,.0f}, max {max(values):,.0f})"
        )


if __name__ == "__main__":
    main()
