"""What the automatic context costs DuckDB's writer, read once per batch or once per trace.

    PYTHONPATH=src python benchmarks/profile_shared_metadata.py [--rounds 10] [--traces 8000]

Every trace of a process carries the same automatic context (``metadata.context``): a row in
``trace_metadata`` and the ``traces.metadata`` object, one JSON text shared by all. The DuckDB
writer passes such a text once per statement and NULL in its rows (``_shared_text`` in
``store/duckdb/_writer.py``) instead of copying and checking it row by row. This script traces
``--traces`` one-span calls, converts them as the exporter does, and writes the same kind of
batch into two new files in turn (which goes first alternates), with the shared text and
with it switched off, and prints the median process CPU and wall time of a write.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--traces", type=int, default=8_000)
    args = parser.parse_args()

    from _bypass import bypassed
    from traceduck._export._assembler import batch_of
    from traceduck.store.duckdb import _writer
    from traceduck.store.duckdb._databases import get_database

    tmp = tempfile.mkdtemp(prefix="td-shared-")
    traced = bypassed(os.path.join(tmp, "trace.duckdb"))
    shared = _writer._shared_text
    variants = {"shared text once a batch": shared, "the text in every row": None}
    dbs = {name: get_database(os.path.join(tmp, f"{i}.duckdb")) for i, name in enumerate(variants)}
    spent: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for k in range(args.rounds):
        for name, fn in list(variants.items())[
            :: 1 if k % 2 == 0 else -1
        ]:  # which goes first alternates
            batch = batch_of(traced.convert(traced.trace(args.traces)))
            _writer._shared_text = fn or (lambda columns, column: None)  # type: ignore[assignment]
            cpu, wall = time.process_time(), time.perf_counter()
            _writer.write_batch(dbs[name], batch)
            spent[name].append((time.process_time() - cpu, time.perf_counter() - wall))
    _writer._shared_text = shared
    print(
        f"a write of {args.traces:,} one-span traces, medians of {args.rounds} rounds,"
        f" load {os.getloadavg()[0]:.1f}:"
    )
    for name, values in spent.items():
        cpu = statistics.median(v[0] for v in values) * 1e3
        wall = statistics.median(v[1] for v in values) * 1e3
        print(f"  {name:<26} process CPU {cpu:6.1f} ms   wall {wall:6.1f} ms")
    os._exit(0)  # the exporter was bypassed: nothing to flush


if __name__ == "__main__":
    main()
