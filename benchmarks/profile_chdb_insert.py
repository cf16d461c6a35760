"""What the flush's tail costs on chdb: one write's fixed cost, and its insert beside busy cores.

    PYTHONPATH=src:benchmarks python benchmarks/profile_chdb_insert.py [--rounds 8]

The exporter measurement of the ingest suite ends with a flush that writes what queued after
the last write began: on chdb ~17,000 spans (the sink starts a write from 32,768 queued spans),
on DuckDB at most ~8,000 (it starts from 8,192). This replays the ingest suite's batches,
captured from a real export at export batches of 100 (``profile_chdb_writer.capture_batches``),
and prints medians of:

1. ``write_batch`` of the first 10, 100, 1,000 and all traces of the last batch into an empty
   database: wall and this thread's CPU. What does not grow with the batch is the write's fixed
   cost, the reason chdb's writer takes larger batches than DuckDB's.
2. The insert alone of that batch's spans (already Arrow, the writer's own statement): alone;
   beside a thread running Python without pause (the exporter's ``export()`` calls); beside a
   thread keeping a core busy without the GIL (``hashlib`` over a large buffer).
3. The same insert split in two, the first half inserted in a thread while the second is
   converted to Arrow (the tail's conversion and insert overlapped), against one insert.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from profile_chdb_writer import capture_batches  # noqa: E402


def _busy_python(stop: threading.Event) -> None:
    count = 0
    while not stop.is_set():
        count += 1


def _busy_core(stop: threading.Event) -> None:
    block = b"x" * 8_000_000
    while not stop.is_set():
        hashlib.sha256(block).digest()  # hashlib lets go of the GIL for large buffers


def _beside(busy: Callable[[threading.Event], None] | None, fn: Callable[[], Any]) -> float:
    stop = threading.Event()
    thread = None
    if busy is not None:
        thread = threading.Thread(target=busy, args=(stop,), daemon=True)
        thread.start()
        time.sleep(0.02)
    started = time.perf_counter()
    try:
        fn()
        return time.perf_counter() - started
    finally:
        stop.set()
        if thread is not None:
            thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()

    from traceduck.store._names import parse_store_name
    from traceduck.store._records import SPAN_SCHEMA, SpanRows, WriteBatch, rows_to_arrow
    from traceduck.store.clickhouse import _client, _writer
    from traceduck.store.clickhouse._schema import migrate

    batches, tmp = capture_batches(100)
    last = batches[-1]
    conn = _client.connect(parse_store_name(f"chdb://{tmp}/chdb?database=replay"))
    migrate(conn)

    def empty() -> None:
        for table in ("spans", "td_traces", "td_metadata", "td_tag_events"):
            conn.command(f"TRUNCATE TABLE {table}")

    print(f"the flush's last batch: {len(last.spans):,} spans, {len(last.plain):,} traces")
    print("\n1. write_batch into an empty database (medians):")
    for k in (10, 100, 1_000, len(last.plain)):
        plain = last.plain[:k]
        batch = WriteBatch(SpanRows([r for p in plain for r in p[0]]), [], last.source, plain)
        walls, cpus = [], []
        for _ in range(args.rounds):
            empty()
            started, cpu = time.perf_counter(), time.thread_time()
            _writer.write_batch(conn, batch)
            walls.append(time.perf_counter() - started)
            cpus.append(time.thread_time() - cpu)
        print(
            f"  {len(batch.spans):>7,} spans: {statistics.median(walls) * 1e3:6.1f} ms,"
            f" this thread's CPU {statistics.median(cpus) * 1e3:5.1f} ms"
        )

    rows = last.spans.rows
    table = rows_to_arrow(rows, SPAN_SCHEMA)
    exprs = {"spans": _writer._AS_JSON}

    def insert(data: Any = table) -> None:
        conn.insert_arrow_tables([("spans", data)], exprs)

    def halves() -> None:
        half = len(rows) // 2
        first = threading.Thread(target=insert, args=(rows_to_arrow(rows[:half], SPAN_SCHEMA),))
        first.start()
        second = rows_to_arrow(rows[half:], SPAN_SCHEMA)
        first.join()
        insert(second)

    def whole() -> None:
        insert(rows_to_arrow(rows, SPAN_SCHEMA))

    cases: dict[str, Callable[[], float]] = {
        "insert alone": lambda: _beside(None, insert),
        "insert beside a thread running Python": lambda: _beside(_busy_python, insert),
        "insert beside a core busy without the GIL": lambda: _beside(_busy_core, insert),
        "convert + insert, whole": lambda: _beside(None, whole),
        "convert + insert, in two overlapped halves": lambda: _beside(None, halves),
    }
    times: dict[str, list[float]] = {label: [] for label in cases}
    for rnd in range(args.rounds):
        for label, case in list(cases.items())[:: 1 if rnd % 2 == 0 else -1]:
            empty()
            times[label].append(case())
    print(f"\n2-3. the last batch's {len(rows):,} spans into `spans` (medians of {args.rounds}):")
    for label, values in times.items():
        print(f"  {label:<46} {statistics.median(values) * 1e3:6.1f} ms")
    print(f"\nload {os.getloadavg()[0]:.1f}")
    os._exit(0)  # the exporter was shut down; nothing else to wait for


if __name__ == "__main__":
    main()
