"""Where a traced call's time goes, piece by piece, beside the raw OpenTelemetry SDK span.

    PYTHONPATH=src python benchmarks/profile_hotpath.py             # component costs (CPU µs)
    PYTHONPATH=src python benchmarks/profile_hotpath.py --cprofile  # + cProfile top functions

Each line is the caller thread's CPU time per operation (``time.thread_time``), the minimum of
several repeats (the least disturbed one on a shared machine), with the exporter flushed between
repeats. The pieces are the steps ``traceduck._decorator`` and ``traceduck._export`` take, timed
alone, so a difference between two lines is the cost of one step. Runs in a temp dir.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suites._common import raw_sdk_provider, traceduck_handle  # noqa: E402


def cpu_us(fn: Callable[[int], None], n: int, repeats: int, flush: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        c0 = time.thread_time_ns()
        fn(n)
        best = min(best, (time.thread_time_ns() - c0) / n / 1000)
        flush()
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--cprofile", action="store_true", help="also print cProfile top lists")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="traceduck-profile-") as tmp:
        os.chdir(tmp)
        return _run(Path(tmp), args.calls, args.repeats, args.cprofile)


def _run(tmp: Path, n: int, repeats: int, with_cprofile: bool) -> int:
    import traceduck
    from traceduck import _capture, _runtime

    traceduck.configure(db=str(tmp / "profile.duckdb"))
    td_threads = [t for t in threading.enumerate() if t is not threading.current_thread()]
    raw_provider = raw_sdk_provider()
    raw = raw_provider.get_tracer("raw")
    td_tracer = _runtime.tracer

    def flush() -> None:
        traceduck.flush()
        raw_provider.force_flush()

    def f(x: int) -> int:
        return x + 1

    def gen(x: int) -> Iterator[int]:
        yield x
        yield x + 1

    td_f = traceduck.trace(f)
    td_nocap = traceduck.trace(capture_inputs=False, capture_outputs=False)(f)
    td_gen = traceduck.trace(gen)

    def raw_gen(x: int) -> Iterator[int]:
        with raw.start_as_current_span("gen"):
            yield from gen(x)

    def loop(body: Callable[[int], object]) -> Callable[[int], None]:
        def run(count: int) -> None:
            for i in range(count):
                body(i)

        return run

    def raw_cm(i: int) -> None:
        with raw.start_as_current_span("f"):
            f(i)

    def raw_start_end(i: int) -> None:
        raw.start_span("f").end()

    def td_start_end(i: int) -> None:
        td_tracer.start_span("f").end()

    def raw_attach(i: int) -> None:
        span = raw.start_span("f")
        token = otel_context.attach(otel_trace.set_span_in_context(span))
        otel_context.detach(token)
        span.end()

    names = ("x",)

    def snapshot_args(i: int) -> None:
        _capture.snapshot_args(names, (i,), {})

    def root_id(i: int) -> None:
        format(0x1234567890ABCDEF1234567890ABCDEF + i, "032x")

    stash: dict[int, list[object]] = {}

    def stash_put_pop(i: int) -> None:
        stash[i] = [None, None, None, None]
        stash.pop(i, None)

    def consume(fn: Callable[[int], Iterator[int]]) -> Callable[[int], None]:
        def run(count: int) -> None:
            for i in range(count):
                for _ in fn(i):
                    pass

        return run

    rows: list[tuple[str, Callable[[int], None]]] = [
        ("bare call f(x)", loop(f)),
        ("raw: with start_as_current_span(): f(x)   [baseline (b)]", loop(raw_cm)),
        ("raw: start_span().end()  (no context)", loop(raw_start_end)),
        ("raw: start_span + attach/detach + end", loop(raw_attach)),
        ("traceduck's provider: start_span().end()", loop(td_start_end)),
        ("@traceduck.trace, capture off", loop(td_nocap)),
        ("@traceduck.trace, capture on   [(c)]", loop(td_f)),
        ("  piece: snapshot_args((x,))", loop(snapshot_args)),
        ("  piece: stash insert + pop", loop(stash_put_pop)),
        ("  piece: format(trace_id, '032x') per root", loop(root_id)),
        ("raw generator (2 items)", consume(raw_gen)),
        ("@traceduck.trace generator (2 items)", consume(td_gen)),
    ]
    for _, fn in rows:  # warm-up
        fn(100)
    flush()
    print(f"caller CPU µs per call, min of {repeats} × {n:,} calls")
    results = {}
    for label, fn in rows:
        results[label] = cpu_us(fn, n, repeats, flush)
        print(f"{results[label]:8.2f}  {label}", flush=True)

    # traceduck's own spans, end to end: which background thread spends what, per span.
    handle = traceduck_handle()

    handle(0)
    flush()
    clocks = {t.name: time.pthread_getcpuclockid(t.ident) for t in td_threads if t.ident}
    before = {name: time.clock_gettime(c) for name, c in clocks.items()}
    p0 = time.process_time()
    c0 = time.thread_time()
    traces = max(n // 10, 100)
    for i in range(traces):
        handle(i)
    traceduck.flush()
    caller = time.thread_time() - c0
    total = time.process_time() - p0
    spans = traces * 10
    print(f"\nCPU µs per span, {traces:,} traces of a root + 9 children, then traceduck.flush():")
    print(f"{caller / spans * 1e6:8.2f}  caller thread (one run: GC and GIL hand-offs included)")
    known = 0.0
    for name, clock in clocks.items():
        used = time.clock_gettime(clock) - before[name]
        known += used
        role = {
            "OtelBatchSpanRecordProcessor": "span processor: on_end queue + export() conversion",
            "traceduck-writer": "writer: Arrow tables, DuckDB insert (Python side)",
        }.get(name, "")
        print(f"{used / spans * 1e6:8.2f}  thread {name} {role}")
    rest = total - caller - known
    print(f"{rest / spans * 1e6:8.2f}  other threads (DuckDB's own, connection reaper, ...)\n")

    # The exporter's share, per span: conversion in export() and the DuckDB write.
    from suites.ingest import build_spans
    from traceduck import DuckDBSpanExporter

    spans = build_spans(1000, seed=1)
    warm = build_spans(1, seed=0)
    exporter = DuckDBSpanExporter(str(tmp / "export.duckdb"))
    exporter.export(warm)
    exporter.force_flush()
    t0 = time.thread_time_ns()
    exporter.export(spans)
    convert = (time.thread_time_ns() - t0) / len(spans) / 1000
    w0 = time.perf_counter_ns()
    exporter.force_flush()
    write = (time.perf_counter_ns() - w0) / len(spans) / 1000
    print(f"{convert:8.2f}  exporter: export() conversion, CPU µs/span ({len(spans):,} spans)")
    print(f"{write:8.2f}  exporter: force_flush() (DuckDB write), wall µs/span")

    if with_cprofile:
        for title, body in (("@traceduck.trace, capture on", loop(td_f)),):
            profiler = cProfile.Profile()
            profiler.enable()
            body(n)
            profiler.disable()
            flush()
            _print_stats(f"cProfile: {title}, {n:,} calls", profiler)
        more = build_spans(1000, seed=5000)
        profiler = cProfile.Profile()
        profiler.enable()
        exporter.export(more)
        profiler.disable()
        _print_stats(f"cProfile: exporter.export() of {len(more):,} spans", profiler)
        exporter.force_flush()
    exporter.shutdown()
    return 0


def _print_stats(title: str, profiler: cProfile.Profile) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(20)
    text = out.getvalue().replace(str(Path(sys.prefix)), "<venv>")
    print(f"\n== {title}\n{text}")


if __name__ == "__main__":
    sys.exit(main())
