"""What the ClickHouse writer's lookup of stored traces costs, by store size and kind.

    PYTHONPATH=src python benchmarks/profile_chdb_lookup.py [--traces 1000000,10000000]
        [--ids 1730] [--reps 9]

Before each write the writer asks which of the batch's traces have something stored
(``store/clickhouse/_writer.py``, ``write_batch``'s ``lookup``). This times that query on the
search suites' cached chdb stores (``suites/_chdb_stores.py``, built on first use; opened
through hard links, only read), for ``--ids`` random new trace ids (the flush's last write in
the ingest suite has 1,730 traces), each lookup kind:

- ``full``: spans and trace rows (``_stored_traces`` of both tables);
- ``rows``: trace rows only (the rootless parts of the tracing path's batches);
- ``roots``: trace rows without their root (the tracing path's own new traces). The cached
  stores hold whole traces only (every row has its root): this is its best case; each trace
  row stored without its root is read as in ``rows``.

Prints the median wall time and this thread's CPU of each, per store size.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suites import _chdb_stores  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", default="1000000,10000000", help="store sizes")
    parser.add_argument("--ids", type=int, default=1_730, help="trace ids a lookup asks for")
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    sizes = [int(n) for n in args.traces.split(",")]

    import traceduck as td
    from traceduck.store.clickhouse import _writer

    _chdb_stores.ensure_chdb_stores(sizes)
    workdir = Path(tempfile.mkdtemp(prefix="td-lookup-"))
    kinds = {
        "full": lambda conn, ids: _writer._stored_traces(conn, ids, ("spans", "td_traces")),
        "rows": lambda conn, ids: _writer._stored_traces(conn, ids, ("td_traces",)),
        "roots": _writer._rootless_traces,
    }
    print(f"{args.ids:,} new trace ids a lookup, median of {args.reps}:")
    for n in sizes[:1]:  # chdb runs one directory per process: one size per process
        url = _chdb_stores.copy_chdb_stores(workdir, n, linked=True)
        conn = td.TraceStore(url).conn
        spans = conn.query("SELECT count() FROM spans")[0][0]
        for kind, lookup in kinds.items():
            walls, cpus = [], []
            for _ in range(args.reps):
                ids = [secrets.token_hex(16) for _ in range(args.ids)]
                wall, cpu = time.perf_counter(), time.thread_time()
                found = lookup(conn, ids)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.thread_time() - cpu)
                assert not found  # new ids
            print(
                f"  {n:>10,} traces ({spans:,} spans), {kind:<5}:"
                f" {statistics.median(walls) * 1e3:7.1f} ms wall,"
                f" {statistics.median(cpus) * 1e3:5.1f} ms CPU (this thread)"
            )
    if len(sizes) > 1:  # the next size in a process of its own
        os.execv(
            sys.executable,
            [sys.executable, __file__, "--traces", ",".join(map(str, sizes[1:])),
             "--ids", str(args.ids), "--reps", str(args.reps)],
        )  # fmt: skip
    os._exit(0)


if __name__ == "__main__":
    main()
