"""Deleting from a ClickHouse store (chdb): the time of a deletion and of one retention chunk.

    PYTHONPATH=src:benchmarks python benchmarks/delete_clickhouse.py --traces 100000
    PYTHONPATH=src:benchmarks python benchmarks/delete_clickhouse.py --mode alter_update

Writes N one-span traces with live tags (``engines.batches``) into a fresh chdb store, then
times, one run each: ``delete_traces`` of the oldest 10% (one call: four lightweight DELETEs
and the record), a retention chunk (the oldest 5,000 of what is left, as the writer's
``Expiry`` deletes it) and a deletion of one trace by id. Prints a Markdown table.
``--mode alter_update`` runs the DELETEs without patch parts (each touched part's row mask
rewritten), for comparison with traceduck's ``lightweight_update``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from engines import batches
from traceduck import TraceStore
from traceduck._selection import Selection
from traceduck.store._retention import CHUNK_TRACES
from traceduck.store.clickhouse import _delete


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--mode", default="lightweight_update", help="lightweight_delete_mode")
    args = parser.parse_args()
    _delete.DELETE_SETTINGS["lightweight_delete_mode"] = args.mode
    tmp = Path(tempfile.mkdtemp(prefix="td-chdelete-"))
    try:
        store = TraceStore(f"chdb://{tmp / 'chdb'}")
        for batch in batches(args.traces):
            store.write_batch(batch)
        far = 2**62
        cases = [
            ("oldest 10%", lambda: store.delete_traces(max_timestamp_millis=far,
                                                        max_traces=args.traces // 10)),
            (f"retention chunk ({CHUNK_TRACES:,})", lambda: _delete.delete_selected(
                store.conn, Selection(max_timestamp_ms=far, max_traces=CHUNK_TRACES),
                source="retention")),
            ("one trace by id", lambda: store.delete_traces(
                trace_ids=[store.search_traces(max_results=1)[0].info.trace_id])),
        ]  # fmt: skip
        print(f"| chdb, {args.traces:,} traces, {args.mode} | deleted | call s | traces left |")
        print("|---|---|---|---|")
        for label, run in cases:
            began = time.perf_counter()
            deleted = run()
            took = time.perf_counter() - began
            print(f"| {label} | {deleted:,} | {took:.2f} | {store.count_traces():,} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
