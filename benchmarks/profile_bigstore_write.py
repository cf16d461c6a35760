"""How long the store takes to write a batch of new traces into a large store.

    PYTHONPATH=src python benchmarks/profile_bigstore_write.py [--traces 1000000] [--batches 5]

Copies the cached generated store (``suites/_stores``; built on first use) into a temp dir and
writes batches of 1,000 new traces (a root + 9 children each, 10,000 spans) with the store's own
``write_batch``, the call the exporter's writer thread makes; prints each batch's wall time.
The first batch also pays opening the file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suites import _stores  # noqa: E402
from suites.ingest import build_spans  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1_000_000, help="size of the store")
    parser.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()

    from traceduck._export import _convert
    from traceduck._export._assembler import Assembler, batch_of
    from traceduck.store.duckdb._databases import get_database
    from traceduck.store.duckdb._writer import write_batch

    assembler, bundles = Assembler(), []
    for span in build_spans(1_000 * args.batches, seed=int(time.time())):
        row, is_root, _ = _convert.span_row(span)
        bundle = assembler.add(row, is_root, None)
        if bundle is not None:
            bundles.append(bundle)
    with tempfile.TemporaryDirectory() as tmp:
        db = get_database(str(_stores.copy_store(args.traces, Path(tmp))))
        try:
            for i in range(0, len(bundles), 1_000):
                part = bundles[i : i + 1_000]
                batch = batch_of(part)
                spans = batch.spans
                started = time.perf_counter()
                write_batch(db, batch)
                ms = (time.perf_counter() - started) * 1e3
                print(f"batch {i // 1_000 + 1}: {len(spans):,} spans in {ms:.0f} ms")
        finally:
            db.shutdown()


if __name__ == "__main__":
    main()
