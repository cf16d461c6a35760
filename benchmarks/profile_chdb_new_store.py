"""How long a new ClickHouse database takes to open on chdb: connect, create it, migrate.

    PYTHONPATH=src python benchmarks/profile_chdb_new_store.py [--stores 20]

Opens one chdb directory (and a first database, not timed), then ``--stores`` new databases in
it one after the other (``TraceStore("chdb:///dir?database=sN").sql("SELECT 1")``: the
database created, every version's migration run, a first query), and prints the median and
the spread. To compare two versions of the code, run it with ``PYTHONPATH`` on each one's
``src`` (e.g. ``git archive <rev> src | tar -x -C /tmp/old``), alternating.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=20)
    args = parser.parse_args()

    import traceduck as td

    root = tempfile.mkdtemp(prefix="td-new-store-")
    td.TraceStore(f"chdb://{root}?database=first").sql("SELECT 1")
    times = []
    for i in range(args.stores):
        started = time.perf_counter()
        td.TraceStore(f"chdb://{root}?database=s{i}").sql("SELECT 1")
        times.append((time.perf_counter() - started) * 1000)
    print(
        f"{args.stores} new databases on chdb ({td.__file__}): median "
        f"{statistics.median(times):.0f} ms, {min(times):.0f}-{max(times):.0f} ms; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    os._exit(0)  # chdb's engine need not stop


if __name__ == "__main__":
    main()
