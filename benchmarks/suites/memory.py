"""Peak RSS while tracing many spans: traceduck into DuckDB, and the raw SDK as a reference.

Each variant runs in a fresh process (spawned), so its peak resident set size (``ru_maxrss``)
is its own. The spans are traces of a root and 9 children from decorated calls of a trivial
function, with input/output capture on, written to a DuckDB file in the temp dir.
"""

from __future__ import annotations

import time
from typing import Any

from ._common import (
    SPANS_PER_TRACE,
    Config,
    Section,
    Signal,
    SuiteResult,
    Target,
    current_rss_mb,
    fresh_processes,
    num,
    peak_rss_mb,
    progress,
    traced_workload,
)

NAME = "memory"
TITLE = "Peak memory while tracing"


def _child(variant: str, traces: int, workdir: str, ready: Signal, go: Signal) -> dict[str, Any]:
    """Runs in a fresh process: trace ``traces`` traces and report memory and counters. Sets
    ``ready`` once configured and warmed up, then waits for ``go`` before the measured part."""
    app = traced_workload(variant, f"{workdir}/memory.duckdb")
    app.handle(0)
    app.flush()
    baseline = current_rss_mb()
    ready.set()
    go.wait()
    t0 = time.perf_counter()
    for i in range(traces):
        app.handle(i)
    t1 = time.perf_counter()
    flushed = app.flush()
    t2 = time.perf_counter()
    out: dict[str, Any] = {
        "baseline_mb": baseline,
        "peak_mb": peak_rss_mb(),
        "after_mb": current_rss_mb(),
        "calls_s": t1 - t0,
        "flush_s": t2 - t1,
        "flushed": flushed,
    }
    if variant == "traceduck":
        import traceduck

        stats = traceduck.stats()
        out["written_spans"] = stats["written_spans"] - SPANS_PER_TRACE  # less the warm-up
        out["dropped_spans"] = stats["dropped_spans"]
    app.shutdown()
    return out


def run(cfg: Config) -> SuiteResult:
    spans = 20_000 if cfg.quick else 1_000_000
    traces = spans // SPANS_PER_TRACE
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    # The raw SDK's memory is bounded by its queue alone, so a smaller run shows it.
    counts = {"traceduck": traces, "raw SDK": (1_000 if cfg.quick else 10_000)}
    # Both processes start (and warm up) together, then run one after the other: the waiting
    # one sits idle (its span processor's timer only), so each run has the machine to itself.
    signals = {v: (Signal(cfg.workdir / f"ready-{k}"), Signal(cfg.workdir / f"go-{k}"))
               for k, v in enumerate(counts)}  # fmt: skip
    with fresh_processes(len(counts)) as pool:
        futures = {v: pool.submit(_child, v, n, str(cfg.workdir), *signals[v])
                   for v, n in counts.items()}  # fmt: skip
        for variant, future in futures.items():
            signals[variant][0].wait(child=future)
        for variant, count in counts.items():
            progress(f"[{NAME}] {variant}: {count * SPANS_PER_TRACE:,} spans in a fresh process")
            signals[variant][1].set()
            results[variant] = futures[variant].result()

    rows = []
    for variant, r in results.items():
        total = r["calls_s"] + r["flush_s"]
        written = r.get("written_spans")
        n = counts[variant] * SPANS_PER_TRACE
        rows.append(
            [
                f"`@traceduck.trace` → DuckDB, {n:,} spans"
                if variant == "traceduck"
                else f"reference: raw SDK span, BatchSpanProcessor, no-op exporter, {n:,} spans",
                f"{r['peak_mb']:.0f}",
                f"{r['baseline_mb']:.0f}",
                f"{r['peak_mb'] - r['baseline_mb']:.0f}",
                f"{r['after_mb']:.0f}",
                f"{total:.1f} ({r['flush_s']:.1f} flush)",
                num(n / total),
                "–" if written is None else f"{written:,} / {r['dropped_spans']:,}",
            ]
        )
    td = results["traceduck"]
    section = Section(
        title=f"{TITLE}: {spans:,} spans ({traces:,} traces of a root + 9 children)",
        headers=[
            "variant",
            "peak RSS MB",
            "RSS before MB",
            "peak − before MB",
            "RSS after flush MB",
            "seconds (of which flush)",
            "spans/s",
            "spans written / dropped",
        ],
        rows=rows,
        notes=[
            "Each variant in its own fresh process (both start together, then run one after "
            "the other); peak = `ru_maxrss`, before/after = current "
            "RSS (psutil, else /proc) after imports, configuration and a one-trace warm-up, and "
            "after the final flush.",
            "The raw-SDK reference runs fewer spans: its memory is bounded by its span "
            "processor's queue alone, and it is there to show the interpreter's and SDK's share.",
            "traceduck: `traceduck.configure(db=<tmp>)` defaults, capture on. Its bounds: the "
            "span processor's queue (4,096 spans), the writer's queue (10,000 traces, 32 MiB) "
            "and the stash of deferred inputs/outputs (200,000 spans).",
        ],
    )
    lost = spans - int(td.get("written_spans", 0))
    targets = [
        Target(
            f"peak RSS tracing {spans:,} spans (traceduck)",
            f"{td['peak_mb']:.0f} MB (+{td['peak_mb'] - td['baseline_mb']:.0f} MB over "
            f"{td['baseline_mb']:.0f} MB at start)",
            "bounded",
            None,
        ),
        Target(
            f"spans written of {spans:,} (memory run)",
            f"{int(td.get('written_spans', 0)):,}",
            "all",
            lost == 0,
        ),
    ]
    return SuiteResult(NAME, TITLE, time.perf_counter() - started, [section], targets)
