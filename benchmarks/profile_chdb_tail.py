"""The chdb exporter's flush tail, step by step, and what other write policies would do to it.

    PYTHONPATH=src python benchmarks/profile_chdb_tail.py [--rounds 5]
        [--configs python:32768,send:8192,...]

The ingest suite's exporter measurement into chdb (50,000 prebuilt spans, 5,000 traces of a
root + 9 children, ``export()`` in batches of 100, then ``force_flush()``), each round in a new
database, the prebuilt spans kept out of the garbage collector's way as in the suite. Each
config is ``INSERT:EARLY``:

- ``INSERT`` ``python``: the writer's own inserts (``INSERT ... SELECT ... FROM Python(t)``);
  ``send``: chdb's streaming insert (``Connection.send_insert``, Arrow IPC bytes), which the
  writer does not use because it reports success for inserts the engine refused
  (``probe_chdb_send_insert.py``): here only to measure what a cheaper statement would gain.
  ``send`` inserts the spans as they are, without the writer's JSON check of inputs/outputs.
  ``spans``: NOT A STORE, an upper bound: each write is the spans' conversion and their INSERT
  alone (no lookup of what is stored, no trace rows, no tags or metadata), what a write would
  cost if the engine derived the trace rows from the spans it is given.
  ``nolookup``: NOT A STORE either: the shipped write with its lookup answering "nothing
  stored" without asking the engine (late parts would not be merged), to split the bound.
  ``duckdb``: the same exporter into a new DuckDB file (``EARLY`` 8,192 is its shipped value),
  the suite's other side, in the same rounds.
- ``EARLY``: the queued spans from which the writer starts before its interval is out
  (``ClickHouseSink.early_write_spans``; 32,768 is the shipped value).

Prints per config the medians of the ``export()`` phase and of the flush after it, and, for the
first config, the flush's last write step by step (each step's start and end in ms after the last
``export()`` returned, and this thread's CPU): the lookup (in a thread of its own), the spans'
and the trace rows' conversion to Arrow, and each INSERT.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suites.ingest import build_spans, export_phases  # noqa: E402

Mark = tuple[str, float, float, float]  # step, start, end (perf_counter), this thread's CPU


def _timed(marks: list[Mark], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            marks.append((name, started, time.perf_counter(), time.thread_time() - cpu))

    return wrapper


def _instrument(marks: list[Mark], method: dict[str, str]) -> None:
    """Time the writer's steps; ``method["insert"]`` picks how the inserts go in."""
    import pyarrow as pa

    from traceduck.store import _records
    from traceduck.store.clickhouse import _client, _writer

    _records.SpanRows.to_arrow = _timed(marks, "spans to Arrow", _records.SpanRows.to_arrow)
    _writer.rows_to_arrow = _timed(marks, "trace rows to Arrow", _writer.rows_to_arrow)
    _writer.exclusive_keys = _timed(marks, "exclusive keys", _writer.exclusive_keys)
    _writer.EditRows.table = _timed(marks, "tag events to Arrow", _writer.EditRows.table)
    _writer.write_batch = _timed(marks, "write_batch", _writer.write_batch)
    stored_traces = _timed(marks, "lookup (own thread)", _writer._stored_traces)
    _writer._stored_traces = lambda conn, ids, *tables: (
        set() if method["insert"] == "nolookup" else stored_traces(conn, ids, *tables)
    )
    rootless_traces = _timed(marks, "lookup of rootless rows", _writer._rootless_traces)
    _writer._rootless_traces = lambda conn, ids: (
        set() if method["insert"] == "nolookup" else rootless_traces(conn, ids)
    )
    original = _client.Connection.insert_arrow_tables

    def insert_arrow_tables(self: Any, inserts: list[tuple[str, Any]], exprs: Any = None) -> None:
        for table, data in inserts:
            if not data.num_rows:
                continue
            started, cpu = time.perf_counter(), time.thread_time()
            if method["insert"] == "send":
                sink = pa.BufferOutputStream()
                with pa.ipc.new_stream(sink, data.schema) as writer:
                    writer.write_table(data)
                handle, lock = self._raw()
                columns = ", ".join(data.schema.names)
                with lock:
                    stream = handle.send_insert(
                        f"INSERT INTO `{self.database}`.{table} ({columns}) "
                        f"SETTINGS {_client._CHDB_WRITE_SETTINGS}",
                        "ArrowStream",
                    )
                    stream.append(sink.getvalue().to_pybytes())
                    stream.finish()
            else:
                original(self, [(table, data)], exprs)
            marks.append((f"INSERT {table} ({data.num_rows:,})", started, time.perf_counter(),
                          time.thread_time() - cpu))  # fmt: skip

    _client.Connection.insert_arrow_tables = insert_arrow_tables
    shipped = _writer.write_batch

    def write_batch(conn: Any, batch: Any, *, lookup: str = "full") -> None:
        if method["insert"] != "spans":
            return shipped(conn, batch, lookup=lookup)
        inserts = [("spans", batch.spans.to_arrow())]  # every span of the batch
        insert_arrow_tables(conn, inserts, {"spans": _writer._AS_JSON})

    _writer.write_batch = write_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--tagged", action="store_true", help="each trace with two live tags (its root's)"
    )
    parser.add_argument(
        "--configs", default="python:32768,send:32768,python:8192,send:8192,spans:32768,duckdb:8192"
    )
    args = parser.parse_args()
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]

    marks: list[Mark] = []
    method = {"insert": "python"}
    _instrument(marks, method)
    spans = build_spans(5_000, seed=1, tagged=args.tagged)
    warm = build_spans(1, seed=0, tagged=args.tagged)
    tmp = tempfile.mkdtemp(prefix="td-tail-")
    gc.collect()
    gc.freeze()
    phases: dict[tuple[str, int], list[tuple[float, float]]] = {c: [] for c in configs}
    steps: list[list[Mark]] = []
    for rnd in range(args.rounds):
        for i, (insert, early) in enumerate(configs[:: 1 if rnd % 2 == 0 else -1]):
            method["insert"] = insert
            store = (
                f"{tmp}/r{rnd}_{i}.duckdb"
                if insert == "duckdb"
                else f"chdb://{tmp}/chdb?database=r{rnd}_{i}"
            )
            export_s, flush_s, written, exported = export_phases(
                spans, warm, 100, store, early_write_spans=early, on_start=marks.clear
            )
            if written != len(spans):
                raise SystemExit(f"{insert}:{early} wrote {written:,} of {len(spans):,} spans")
            phases[(insert, early)].append((export_s, flush_s))
            if (insert, early) == configs[0]:
                steps.append([(n, a - exported, b - exported, c) for n, a, b, c in marks
                              if a >= exported - 0.005])  # fmt: skip
    gc.unfreeze()
    print(
        f"{len(spans):,} spans into chdb, export batches of 100, {args.rounds} rounds,"
        f" load {os.getloadavg()[0]:.1f}; medians:"
    )
    for (insert, early), rows in phases.items():
        export_s = statistics.median(r[0] for r in rows)
        flush_s = statistics.median(r[1] for r in rows)
        print(
            f"  {insert:<6} early write {early:>6,}: export() {export_s * 1e3:4.0f} ms,"
            f" then flush {flush_s * 1e3:3.0f} ms = {len(spans) / (export_s + flush_s):,.0f}"
            " spans/s"
        )
    first = f"{configs[0][0]}:{configs[0][1]}"
    print(f"\nthe flush's last write, {first} (ms after the last export() returned):")
    for rnd, rows in enumerate(steps):
        print(f"  round {rnd + 1}")
        for name, start, end, cpu in rows:
            print(f"    {name:<28} {start * 1e3:+6.1f} .. {end * 1e3:+6.1f}  CPU {cpu * 1e3:5.1f}")
    os._exit(0)  # every exporter was shut down


if __name__ == "__main__":
    main()
