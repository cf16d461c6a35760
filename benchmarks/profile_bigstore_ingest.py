"""Exporter spans/s into a store that already holds many traces, on both engines.

    PYTHONPATH=src python benchmarks/profile_bigstore_ingest.py [--traces 1000000]
        [--rounds 3] [--configs chdb,chdb-full,duckdb,chdb-empty,duckdb-empty]

The ingest suite's exporter measurement (50,000 prebuilt spans, 5,000 traces of a root + 9
children, ``export()`` in batches of 100, then ``force_flush()``; with ``--tagged``, each root
carries two live tags), each round into a fresh
private copy of the search suites' cached store of ``--traces`` traces (built on first use by
``suites/_stores.py`` and ``suites/_chdb_stores.py``: the same generated traces; the chdb store
holds their spans, the DuckDB one does not), configs alternating per round. Configs:

- ``chdb``, ``duckdb``: the exporter as shipped, into the large store;
- ``chdb-full``: the same, but the ClickHouse writer looks up every trace of a batch in spans
  and trace rows (``write_batch``'s ``lookup="full"``), as it did for every batch before
  session 15, and does for the collector's batches;
- ``chdb-empty``, ``duckdb-empty``: the exporter into a new, empty store (the ingest suite's
  case), in the same rounds.

Prints per config the medians of the ``export()`` phase and of the flush after it, the spans/s,
and each against ``duckdb`` of the same size (ratios of the medians).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suites import _chdb_stores, _stores  # noqa: E402
from suites.ingest import build_spans, export_phases  # noqa: E402


def _force_lookup(forced: dict[str, str | None]) -> None:
    """While ``forced["lookup"]`` is set, the ClickHouse writer looks up that way."""
    from traceduck.store.clickhouse import _writer

    shipped = _writer.write_batch

    def write_batch(conn: Any, batch: Any, *, lookup: str = "full") -> None:
        shipped(conn, batch, lookup=forced["lookup"] or lookup)

    _writer.write_batch = write_batch


def _store(config: str, n: int, workdir: Path, rnd: int) -> str:
    """A new store for one round: DuckDB's a file of its own; chdb's a database in the one
    directory this process runs chdb on."""
    round_dir = workdir / f"r{rnd}-{config}"
    round_dir.mkdir()
    if config == "duckdb-empty":
        return str(round_dir / "new.duckdb")
    if config == "duckdb":
        return str(_stores.copy_store(n, round_dir))
    # Once a run (chdb runs one directory), its files hard links to the cache's: the rounds
    # write into databases of their own, whose parts link to the cached ones (a merge writes
    # a new part, and ClickHouse changes no part's files in place).
    url = _chdb_stores.copy_chdb_stores(workdir, n, linked=True)
    name = url.replace(f"database=t{n}", f"database=r{rnd}_{config.replace('-', '_')}")
    if config != "chdb-empty":
        _clone(name, f"t{n}")
    return name


def _clone(name: str, source: str) -> None:
    """Fill the new store ``name`` with the rows of the database ``source`` beside it: each
    table's parts attached from the source's (hard links: no copy, and no change to them)."""
    import traceduck as td

    conn = td.TraceStore(name).conn  # creates the tables
    tables = conn.query(
        "SELECT name FROM system.tables WHERE database = {d:String} AND engine LIKE '%MergeTree'",
        {"d": source},
    )
    for (table,) in tables:
        conn.command(f"TRUNCATE TABLE {table}")  # rows a migration put there
        conn.command(f"ALTER TABLE {table} ATTACH PARTITION tuple() FROM `{source}`.{table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1_000_000, help="size of the store")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--configs", default="chdb,chdb-full,duckdb,chdb-empty,duckdb-empty")
    parser.add_argument(
        "--tagged", action="store_true", help="each trace with two live tags (its root's)"
    )
    args = parser.parse_args()
    configs = args.configs.split(",")

    if any(c.startswith("chdb") for c in configs):
        _chdb_stores.ensure_chdb_stores([args.traces])
    if "duckdb" in configs:
        _stores.ensure_store(args.traces)
    forced: dict[str, str | None] = {"lookup": None}
    _force_lookup(forced)
    spans = build_spans(5_000, seed=10_000_000, tagged=args.tagged)
    warm = build_spans(1, seed=0, tagged=args.tagged)
    workdir = Path(tempfile.mkdtemp(prefix="td-bigingest-"))
    gc.collect()
    gc.freeze()
    phases: dict[str, list[tuple[float, float]]] = {c: [] for c in configs}
    try:
        for rnd in range(args.rounds):
            for config in configs[:: 1 if rnd % 2 == 0 else -1]:
                forced["lookup"] = "full" if config == "chdb-full" else None
                name = _store(config, args.traces, workdir, rnd)
                exported, flushed, written, _ = export_phases(spans, warm, 100, name)
                if written != len(spans):
                    raise SystemExit(f"{config} wrote {written:,} of {len(spans):,} spans")
                phases[config].append((exported, flushed))
                if config.startswith("duckdb"):  # chdb's databases stay in its directory
                    shutil.rmtree(workdir / f"r{rnd}-{config}", ignore_errors=True)
    finally:
        gc.unfreeze()
    rates = {}
    print(
        f"{len(spans):,} spans{' (tagged)' if args.tagged else ''}, export batches of 100,"
        f" into stores of {args.traces:,} traces"
        f" (-empty: new stores), {args.rounds} rounds, load {os.getloadavg()[0]:.1f}; medians:"
    )
    for config, rows in phases.items():
        export_s = statistics.median(r[0] for r in rows)
        flush_s = statistics.median(r[1] for r in rows)
        rates[config] = len(spans) / (export_s + flush_s)
        print(
            f"  {config:<13} export() {export_s * 1e3:5.0f} ms, then flush {flush_s * 1e3:4.0f}"
            f" ms = {rates[config]:8,.0f} spans/s"
        )
    for config, rate in rates.items():
        base = "duckdb-empty" if config.endswith("-empty") else "duckdb"
        if base in rates and config != base:
            print(f"  {config} / {base}: {rate / rates[base]:.2f}x")
    shutil.rmtree(workdir, ignore_errors=True)
    os._exit(0)  # every exporter was shut down; chdb's engine need not stop


if __name__ == "__main__":
    main()
