"""Where the ClickHouse batch writer's time goes: the ingest suite's batches, replayed.

    PYTHONPATH=src:benchmarks python benchmarks/profile_chdb_writer.py [--rounds 3]

Exports the ingest suite's 50,000 spans (5,000 traces of a root + 9 children) into a chdb
database at export batches of 10,000, keeping the ``WriteBatch``es the exporter hands its
writer (it starts early from 32,768 queued spans: two or three batches); then writes those
batches again, in this thread alone, into fresh databases, and prints per round the writer's
spans/s and the time of each statement it sent (in order of cost) and of the rest (Python).
Set against the exporter's own rate (``profile_exporter.py --chdb``), the gap is what the
writer loses beside ``export()`` in the exporter's threads.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suites.ingest import build_spans  # noqa: E402


def capture_batches(export_batch: int) -> tuple[list[Any], str]:
    """The WriteBatches the exporter hands its chdb writer when the ingest suite's 50,000 spans
    are exported ``export_batch`` at a time (after a one-trace warm-up, not kept), and the
    temporary directory of the chdb store they went to (database ``capture``)."""
    from traceduck import DuckDBSpanExporter
    from traceduck.store.clickhouse import _writer

    captured: list[Any] = []
    write = _writer.ClickHouseWriter.write_batch

    def keep(self: Any, batch: Any, timeout_s: float | None = None) -> None:
        captured.append(batch)
        write(self, batch, timeout_s)

    _writer.ClickHouseWriter.write_batch = keep  # type: ignore[method-assign]
    try:
        spans, warm = build_spans(5_000, seed=1), build_spans(1, seed=0)
        tmp = tempfile.mkdtemp(prefix="td-writer-")
        exporter = DuckDBSpanExporter(f"chdb://{tmp}/chdb?database=capture")
        exporter.export(warm)
        exporter.force_flush()
        del captured[:]
        for i in range(0, len(spans), export_batch):
            exporter.export(spans[i : i + export_batch])
        exporter.force_flush()
        exporter.shutdown()
    finally:
        _writer.ClickHouseWriter.write_batch = write  # type: ignore[method-assign]
    return captured, tmp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from traceduck.store._names import parse_store_name
    from traceduck.store.clickhouse import _client, _writer
    from traceduck.store.clickhouse._schema import migrate

    batches, tmp = capture_batches(10_000)
    total = sum(len(b.spans) for b in batches)
    print(f"{len(batches)} batches of {[len(b.spans) for b in batches]} spans")

    spent: dict[str, float] = collections.defaultdict(float)

    def timed(name: str) -> Any:
        original = getattr(_client.Connection, name)

        def wrapper(self: Any, sql: str, *a: Any, **k: Any) -> Any:
            began = time.perf_counter()
            try:
                return original(self, sql, *a, **k)
            finally:
                words = sql.split()
                if "FROM" in words:  # SELECT <first column> ... <table>
                    key = " ".join([*words[:2], "...", words[words.index("FROM") + 1]])
                else:
                    key = f"{name} {sql}"
                spent[key] += time.perf_counter() - began

        return wrapper

    for name in ("query", "command"):
        setattr(_client.Connection, name, timed(name))
    insert = _client.Connection.insert_arrow

    def timed_insert(self: Any, table: str, data: Any) -> None:
        began = time.perf_counter()
        insert(self, table, data)
        spent[f"INSERT INTO {table}"] += time.perf_counter() - began

    _client.Connection.insert_arrow = timed_insert  # type: ignore[method-assign]
    # On chdb the writer's lookup and inserts go through chdb's own API, one call each.
    lookup = _client.Connection.stored_trace_ids

    def timed_lookup(self: Any, tables: tuple[str, ...], ids: list[str]) -> Any:
        began = time.perf_counter()
        try:
            return lookup(self, tables, ids)
        finally:
            spent[f"SELECT trace_id ... {' + '.join(tables)} (chdb API)"] += (
                time.perf_counter() - began
            )

    inserts = _client.Connection.insert_arrow_tables

    def timed_inserts(self: Any, tables: list[tuple[str, Any]], *a: Any, **k: Any) -> None:
        began = time.perf_counter()
        try:
            inserts(self, tables, *a, **k)
        finally:
            names = " + ".join(t for t, d in tables if d.num_rows)
            spent[f"INSERT INTO {names} (one call)"] += time.perf_counter() - began

    _client.Connection.stored_trace_ids = timed_lookup  # type: ignore[method-assign]
    _client.Connection.insert_arrow_tables = timed_inserts  # type: ignore[method-assign]
    for rnd in range(args.rounds):
        conn = _client.connect(parse_store_name(f"chdb://{tmp}/chdb?database=r{rnd}"))
        migrate(conn)
        spent.clear()
        began = time.perf_counter()
        for batch in batches:
            _writer.write_batch(conn, batch)
        took = time.perf_counter() - began
        statements = sum(spent.values())
        print(f"\nround {rnd + 1}: {total / took:,.0f} spans/s ({took * 1000:.0f} ms)")
        for key, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"  {seconds * 1000:7.1f} ms  {key[:90]}")
        print(f"  {(took - statements) * 1000:7.1f} ms  the rest (Python)")


if __name__ == "__main__":
    main()
