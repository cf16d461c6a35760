"""Why the writer makes one call into DuckDB per batch: a write alone and beside a busy thread.

    PYTHONPATH=src python benchmarks/profile_write_calls.py [--rounds 3]

Writes the same 20,000 spans (2,000 traces) into a fresh store file three ways, first alone,
then while another Python thread spins (as ``export()`` does while it converts the next spans):

- ``write_batch``: the writer's own call (BEGIN, the inserts and COMMIT in one ``execute``);
- ``8 calls``: the same inserts as BEGIN, register, INSERT, unregister (spans, then traces),
  COMMIT, each its own call, which is how the writer wrote before.

Each call into DuckDB's Python client gives up the GIL and takes it back several times, and
beside a busy thread each take-back waits up to the interpreter's switch interval (5 ms).
Prints the median milliseconds per write of each way.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pyarrow as pa  # noqa: E402

from suites.ingest import build_spans  # noqa: E402
from traceduck._export import _convert  # noqa: E402
from traceduck._export._assembler import Assembler, batch_of, span_count  # noqa: E402
from traceduck.store._records import WriteBatch, merge_trace  # noqa: E402
from traceduck.store.duckdb import _writer  # noqa: E402
from traceduck.store.duckdb._databases import get_database  # noqa: E402


def bundles(traces: int) -> list[Any]:
    assembler, out = Assembler(), []
    for span in build_spans(traces, seed=1):
        row, is_root, _ = _convert.span_row(span)
        bundle = assembler.add(row, is_root, None)
        if bundle is not None:
            out.append(bundle)
    return out


def eight_calls(db, batch: WriteBatch) -> None:
    batch = batch.expanded()
    rows = [merge_trace(row, None, row.span_count, ("0", "Default")) for row in batch.traces]
    for row in rows:
        row["tags"] = row["metadata"] = "{}"
    traces = pa.table({c: [r[c] for r in rows] for c in _writer._TRACE_COLUMNS})
    columns = ", ".join(_writer._TRACE_COLUMNS)
    with db.lease(write=True) as cur:
        cur.execute("BEGIN TRANSACTION")
        cur.register("_td_spans", batch.spans.to_arrow())
        cur.execute(f"INSERT INTO spans SELECT {_writer._SPAN_SELECT} FROM _td_spans b")
        cur.unregister("_td_spans")
        cur.register("_td_traces", traces)
        cur.execute(f"INSERT INTO traces ({columns}) SELECT * FROM _td_traces")
        cur.unregister("_td_traces")
        cur.execute("COMMIT")


WAYS = {"write_batch": _writer.write_batch, "8 calls": eight_calls}


def one_write(way: str, parts: list[Any], tmp: str, n: int) -> float:
    db = get_database(str(Path(tmp) / f"{n}.duckdb"))
    try:
        first = parts[0]
        _writer.write_batch(db, batch_of([first]))  # schema
        batch = batch_of(parts[1:])
        t0 = time.perf_counter()
        WAYS[way](db, batch)
        seconds = time.perf_counter() - t0
        with db.lease() as cur:
            stored = cur.execute("SELECT count(*) FROM spans").fetchone()[0]
        if stored != len(batch.spans) + span_count(first):
            sys.exit(f"{way}: {stored} spans stored")
        return seconds
    finally:
        db.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    parts = bundles(2_001)
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            x += 1

    with tempfile.TemporaryDirectory() as tmp:
        n = 0
        for label in ("alone", "beside a busy Python thread"):
            if label != "alone":
                threading.Thread(target=spin, daemon=True).start()
            times: dict[str, list[float]] = {way: [] for way in WAYS}
            for _ in range(args.rounds):
                for way in WAYS:
                    n += 1
                    times[way].append(one_write(way, parts, tmp, n))
            cells = ", ".join(f"{w} {statistics.median(t) * 1e3:.0f} ms" for w, t in times.items())
            print(f"{label}: {cells}", flush=True)
        stop.set()


if __name__ == "__main__":
    main()
