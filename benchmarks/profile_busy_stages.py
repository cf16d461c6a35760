"""Where a tight traced loop's time goes, stage by stage, and how long each stage waits.

    PYTHONPATH=src python benchmarks/profile_busy_stages.py [--calls 20000] [--no-auto-context]

1. Each stage alone, in one process with the cyclic GC off, as CPU µs per one-span trace (the
   best of five rounds): a raw SDK span with a span processor that keeps it; the caller of a
   ``@traceduck.trace`` call up to the span processor's ``on_end`` (the ended span's tuple);
   redaction; conversion and assembly into queued traces (``export_rows``); the writer's Python
   (batch, NumPy columns); DuckDB's insert and commit of that batch.
2. A 50,000-call loop end to end, with the time the caller waited for room in the span queue,
   the span processor waited for room in the write queue, and the writer spent in DuckDB.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _best(fn: Callable[[], Any], n: int, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return min(times) / n * 1e6


def stages(n: int, auto_context: bool = True) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from _bypass import Keep, bypassed
    from traceduck._export._assembler import batch_of
    from traceduck._export._redacting import redact_rows
    from traceduck.store.duckdb._writer import write_batch

    gc.disable()
    provider = TracerProvider()
    keep_raw = Keep(lambda span: span)
    provider.add_span_processor(keep_raw)
    tracer = provider.get_tracer("bench")

    def raw() -> None:
        for i in range(n):
            with tracer.start_as_current_span("f"):
                i + 1
        keep_raw.items.clear()

    traced = bypassed(os.path.join(tempfile.mkdtemp(), "stages.duckdb"), auto_context=auto_context)
    f, ended, exporter, queued = traced.f, traced.ended, traced.exporter, traced.queued

    def calls() -> None:
        ended.clear()
        for i in range(n):
            f(i)

    result = {"raw SDK span (kept by a processor)": _best(raw, n)}
    result["@trace caller, to the ended span's tuple"] = _best(calls, n)
    timings: dict[str, list[float]] = {}

    def clock(label: str, started: float) -> None:
        timings.setdefault(label, []).append((time.process_time() - started) / n * 1e6)

    for _ in range(5):
        calls()
        queued.clear()
        started = time.process_time()
        items = redact_rows(list(ended))
        clock("redaction", started)
        started = time.process_time()
        exporter.export_rows(items)
        clock("conversion and assembly (export_rows)", started)
        started = time.process_time()
        batch = batch_of(queued)
        batch.spans.to_numpy()
        clock("writer's Python (batch, span columns)", started)
        started = time.process_time()
        write_batch(exporter.sink.db, batch)
        clock("DuckDB write, all its threads (incl. its columns)", started)
    for label, values in timings.items():
        result[label] = min(values)
    gc.enable()
    print(f"per one-span trace, CPU µs (GC off, best of 5 rounds of {n:,}):")
    for label, value in result.items():
        print(f"  {label:<62} {value:6.1f}")
    os._exit(0)  # the exporter's queue was bypassed: nothing to flush


def waits(n: int, auto_context: bool = True) -> None:
    import traceduck as td
    from traceduck._export import _duckdb, _processor

    spent = {"caller waited for span-queue room": 0.0, "processor waited for write-queue room": 0.0}
    written = {"writes": 0, "s": 0.0}

    def timed(cls: Any, name: str, label: str) -> None:
        original = getattr(cls, name)

        def wrapper(self: Any, *args: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(self, *args)
            finally:
                spent[label] += time.perf_counter() - started

        setattr(cls, name, wrapper)

    timed(_processor.BlockingSpanProcessor, "_wait_for_room", "caller waited for span-queue room")
    timed(
        _duckdb.DuckDBSpanExporter,
        "_wait_for_room_locked",
        "processor waited for write-queue room",
    )
    original_write = _duckdb.DuckDBSpanExporter._write

    def write(self: Any, batch: Any) -> str:
        started = time.perf_counter()
        try:
            return original_write(self, batch)
        finally:
            written["writes"] += 1
            written["s"] += time.perf_counter() - started

    _duckdb.DuckDBSpanExporter._write = write  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        td.configure(db=os.path.join(tmp, "waits.duckdb"), auto_context=auto_context)

        @td.trace
        def f(x: int) -> int:
            return x + 1

        f(0)
        td.flush()
        written.update(writes=0, s=0.0)
        started = time.perf_counter()
        for i in range(n):
            f(i)
        ok = td.flush()
        wall = time.perf_counter() - started
        td.shutdown()
    print(f"{n:,} calls + flush: {wall:.2f} s (flush() {ok})")
    for label, seconds in spent.items():
        print(f"  {label:<40} {seconds:.2f} s")
    print(f"  {'writer in DuckDB writes':<40} {written['s']:.2f} s in {written['writes']} writes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per stage round")
    parser.add_argument("--loop", type=int, default=50_000, help="calls in the end-to-end loop")
    parser.add_argument(
        "--no-auto-context",
        action="store_true",
        help="configure(auto_context=False): what the automatic context costs each stage",
    )
    parser.add_argument("--part", choices=["stages", "waits"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    auto_context = not args.no_auto_context
    if args.part == "stages":
        stages(args.calls, auto_context)
    elif args.part == "waits":
        waits(args.loop, auto_context)
    else:  # each part in a fresh process: the stages leave the exporter bypassed
        import subprocess

        for part in ("stages", "waits"):
            cmd = [sys.executable, __file__, "--part", part]
            cmd += ["--calls", str(args.calls), "--loop", str(args.loop)]
            cmd += ["--no-auto-context"] if args.no_auto_context else []
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
