"""Programs that trace as fast as they can: is every trace stored, and what does it cost?

Each program runs in a fresh (spawned) process with ``traceduck.configure(db=<tmp>)`` defaults:
a tight loop, the same loop doing ~10 µs of work per call, 4 threads, asyncio tasks, traces of
4 spans with tags and metadata, every trace taking an exclusive tag, and 4 processes tracing
into one file. Each reports traces stored / traces made (read back from the store after
``flush()``), what ``flush()`` said and what ``stats()`` counts as dropped. Each program but the
4 processes runs again into chdb (``configure(db="chdb:///<tmp>")``, a directory of its own),
when the ``clickhouse`` extra is installed: chdb runs one process per directory, so processes
share a ClickHouse store through a server or ``traceduck collector``.

All-in: a tight loop of 50,000 traced calls, calls + ``flush()`` (everything stored), against
the same loop on a raw SDK span with a BatchSpanProcessor and a no-op exporter (calls +
``force_flush()``), fresh processes alternating, paired ratios. Dead store: traced calls against
a store that can never be written (its directory does not exist), and a ClickHouse server that
refuses every connection or takes them and never answers; peak RSS growth, and how long
``shutdown()`` takes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._common import (
    Config,
    NoopSpanExporter,
    Section,
    SuiteResult,
    Target,
    chdb_missing,
    current_rss_mb,
    fresh_processes,
    in_fresh_process,
    median,
    num,
    peak_rss_mb,
    progress,
)

NAME = "busy"
TITLE = "Busy programs: nothing lost, all-in cost"


def _program(kind: str, n: int, db: str, worker: int = 0) -> dict[str, Any]:
    """Runs in a fresh process: one of the programs; its timings, flush() and stats()."""
    import asyncio
    import threading

    import traceduck as td

    td.configure(db=db)

    @td.trace
    def f(x: int) -> int:
        return x + 1

    @td.trace
    def work(x: int) -> int:
        end = time.perf_counter() + 10e-6  # ~10 µs of the app's own work
        while time.perf_counter() < end:
            pass
        return x

    @td.trace
    async def task(x: int) -> int:
        await asyncio.sleep(0)
        return x

    @td.trace
    def leaf(x: int) -> int:
        return x

    @td.trace
    def tagged(x: int) -> int:
        td.update_current_trace(tags={"i": x, "even": x % 2 == 0}, metadata={"n": x})
        return leaf(x) + leaf(x) + leaf(x)

    @td.trace
    def latest(x: int) -> int:  # the README's exclusive tag, moved along by every trace
        td.update_current_trace(tags=[td.Tag("latest", exclusive=True)])
        return x

    started = time.perf_counter()
    cpu_started = time.process_time()
    if kind in ("loop", "processes"):
        for i in range(n):
            f(i)
    elif kind == "work":
        for i in range(n):
            work(i)
    elif kind == "threads":
        threads = [threading.Thread(target=lambda: [f(i) for i in range(n // 4)]) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elif kind == "asyncio":

        async def main() -> None:
            await asyncio.gather(*(task(i) for i in range(n)))

        asyncio.run(main())
    elif kind == "tagged":
        for i in range(n):
            tagged(i)
    elif kind == "exclusive":
        for i in range(n):
            latest(i)
    calls = time.perf_counter() - started
    flushed = td.flush()
    total = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    stats = td.stats()
    td.shutdown()
    return {"calls_s": calls, "total_s": total, "cpu_s": cpu, "flush": flushed, "stats": stats}


def _raw_loop(n: int) -> tuple[float, float]:
    """Runs in a fresh process: the tight loop on a raw SDK span; calls + force_flush(): wall
    and CPU (all threads) seconds."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NoopSpanExporter()))
    tracer = provider.get_tracer("bench")

    def f(x: int) -> int:
        with tracer.start_as_current_span("f"):
            return x + 1

    f(0)
    started = time.perf_counter()
    cpu_started = time.process_time()
    for i in range(n):
        f(i)
    provider.force_flush()
    return time.perf_counter() - started, time.process_time() - cpu_started


def _dead_store(n: int, db: str) -> dict[str, Any]:
    """Runs in a fresh process: ``n`` traced calls against a store that cannot be written."""
    import duckdb  # noqa: F401 - the writer loads them anyway: not what this measures
    import pyarrow  # noqa: F401

    if db.startswith("clickhouse"):
        import clickhouse_connect  # noqa: F401 - the same

    import traceduck as td

    td.configure(db=db)

    @td.trace
    def f(text: str, x: int) -> int:
        return len(text) + x

    f("warm-up", 0)
    td.flush(timeout_s=2)
    before = current_rss_mb()
    started = time.perf_counter()
    for i in range(n):
        f(f"request {i}", i)
    calls = time.perf_counter() - started
    stats = td.stats()
    growth = peak_rss_mb() - before
    started = time.perf_counter()
    td.shutdown()
    shutdown = time.perf_counter() - started
    return {"growth_mb": growth, "calls_s": calls, "stats": stats, "shutdown_s": shutdown}


@contextmanager
def _servers() -> Iterator[tuple[str, str]]:
    """(a ClickHouse URL nothing listens at, one whose server takes connections and never
    answers), on loopback, while the block runs."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = f"clickhouse://127.0.0.1:{closed.getsockname()[1]}/traceduck"
    closed.close()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    taken: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                taken.append(silent.accept()[0])  # reads nothing, answers nothing
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield refused, f"clickhouse://127.0.0.1:{silent.getsockname()[1]}/traceduck"
    finally:
        try:
            silent.shutdown(socket.SHUT_RDWR)  # wakes accept(): close() alone does not
        except OSError:
            pass
        silent.close()
        for conn in taken:
            conn.close()


def _stored(db: str) -> int:
    import traceduck as td

    return td.TraceStore(db).count_traces()


def run(cfg: Config) -> SuiteResult:
    quick = cfg.quick
    started = time.perf_counter()
    programs = [
        ("loop", "tight loop", 20_000 if quick else 100_000),
        ("work", "tight loop, ~10 µs of work per call", 10_000 if quick else 50_000),
        ("threads", "4 threads", 8_000 if quick else 80_000),
        ("asyncio", "asyncio tasks", 5_000 if quick else 20_000),
        ("tagged", "traces of 4 spans with tags and metadata", 5_000 if quick else 20_000),
        ("exclusive", "every trace tagged `latest` (exclusive)", 5_000 if quick else 20_000),
    ]
    rows: list[list[str]] = []
    targets: list[Target] = []
    all_stored = True
    chdb_stored = True
    loop_rate = None
    why_not_chdb = chdb_missing()
    engines = ("DuckDB",) if why_not_chdb else ("DuckDB", "chdb")
    totals: dict[str, dict[str, float]] = {engine: {} for engine in engines}
    for kind, label, n in programs:
        for engine in engines:
            progress(f"[{NAME}] {label}, into {engine}: {n:,} traces")
            if engine == "DuckDB":
                db = str(cfg.workdir / f"{kind}.duckdb")
            else:
                db = f"chdb://{cfg.workdir / f'{kind}-chdb'}"
            r = in_fresh_process(_program, kind, n, db)
            stored = in_fresh_process(_stored, db)
            if engine == "DuckDB":
                all_stored &= stored == n and r["flush"]
            else:
                chdb_stored &= stored == n and r["flush"]
            if kind == "loop" and engine == "DuckDB":
                loop_rate = stored / r["total_s"]
            totals[engine][kind] = r["total_s"]
            rows.append(_row(label, engine, n, stored, r))
    # A worker pool: 4 processes tracing flat out into one file, taking turns at it.
    per = 5_000 if quick else 25_000
    progress(f"[{NAME}] 4 processes x {per:,} calls into one file")
    db = str(cfg.workdir / "pool.duckdb")
    t0 = time.perf_counter()
    with fresh_processes(4) as pool:
        futures = [pool.submit(_program, "processes", per, db, w) for w in range(4)]
        results = [fut.result() for fut in futures]
    wall = time.perf_counter() - t0
    stored = in_fresh_process(_stored, db)
    merged = {
        "calls_s": max(r["calls_s"] for r in results),
        "total_s": wall,
        "flush": all(r["flush"] for r in results),
        "stats": {"dropped_traces": sum(r["stats"]["dropped_traces"] for r in results)},
    }
    all_stored &= stored == 4 * per and merged["flush"]
    rows.append(
        _row(f"4 processes x {per:,} calls into one file", "DuckDB", 4 * per, stored, merged)
    )

    # All-in: the tight loop against the raw SDK, alternating fresh processes.
    n = 50_000
    pairs = 2 if quick else 6
    ratios, ours, raws, cpu_ratios = [], [], [], []
    for k in range(pairs):
        progress(f"[{NAME}] all-in, {n:,} calls: pair {k + 1} of {pairs}")
        db = str(cfg.workdir / f"allin-{k}.duckdb")
        if k % 2 == 0:  # which side goes first alternates: neither always gets the warmer machine
            raw, raw_cpu = in_fresh_process(_raw_loop, n)
            r = in_fresh_process(_program, "loop", n, db)
        else:
            r = in_fresh_process(_program, "loop", n, db)
            raw, raw_cpu = in_fresh_process(_raw_loop, n)
        all_stored &= in_fresh_process(_stored, db) == n and r["flush"]
        ratios.append(r["total_s"] / raw)
        cpu_ratios.append(r["cpu_s"] / raw_cpu)
        ours.append(r["total_s"])
        raws.append(raw)

    dead_n = 30_000 if quick else 150_000
    dead = [
        (
            "DuckDB file in a directory that does not exist",
            str(cfg.workdir / "missing" / "t.duckdb"),
        )
    ]
    with _servers() as (refused, silent):
        if not why_not_chdb:
            dead += [("ClickHouse server refusing connections (nothing listens)", refused),
                     ("ClickHouse server taking connections, never answering", silent)]  # fmt: skip
        dead_runs = []
        for label, db in dead:
            progress(f"[{NAME}] dead store, {label}: {dead_n:,} calls")
            dead_runs.append((label, in_fresh_process(_dead_store, dead_n, db)))
    dead_growth = max(r["growth_mb"] for _, r in dead_runs)

    allin = median(ratios)
    sections = [
        Section(
            title="Traces stored / traces made, each program in a fresh process",
            headers=[
                "program",
                "store",
                "traces made",
                "stored",
                "stored / made",
                "flush()",
                "dropped (stats)",
                "calls s",
                "calls + flush s",
                "traces stored / s",
            ],
            rows=rows,
            notes=[
                "`traceduck.configure(db=<tmp>)` defaults (span queue 4,096 spans, write queue "
                "10,000 traces / 32 MiB, block_timeout_s 10 s), capture on. Stored: "
                "`TraceStore(db).count_traces()` after `flush()`.",
                "traces stored / s: stored / (calls + flush) seconds, the rate the store keeps "
                "while the app's thread is busy.",
                "chdb: "
                + (
                    why_not_chdb
                    or "`configure(db='chdb:///<tmp>/<program>')`, a "
                    "directory per program (chdb runs one process per directory: processes share "
                    "a ClickHouse store through a server or `traceduck collector`)."
                ),
            ],
        ),
        Section(
            title=f"All-in: {n:,} traced calls + flush, against the raw SDK",
            headers=["", "median s", "each pair"],
            rows=[
                [
                    "`@traceduck.trace` → DuckDB, calls + `flush()`",
                    f"{median(ours):.2f}",
                    ", ".join(f"{v:.2f}" for v in ours),
                ],
                [
                    "raw SDK span, BatchSpanProcessor, no-op exporter, calls + `force_flush()`",
                    f"{median(raws):.2f}",
                    ", ".join(f"{v:.2f}" for v in raws),
                ],
                [
                    "ratio (median of pairs)",
                    f"{allin:.2f}×",
                    ", ".join(f"{v:.2f}×" for v in ratios),
                ],
                [
                    "CPU ratio, all threads (median of pairs)",
                    f"{median(cpu_ratios):.2f}×",
                    ", ".join(f"{v:.2f}×" for v in cpu_ratios),
                ],
            ],
            notes=[
                "Each side in a fresh spawned process, one after the other, 6 pairs (2 with "
                "`--quick`); which side goes first alternates from pair to pair: "
                "`def f(x): return x + 1` decorated, called in a loop.",
                "CPU ratio: process CPU time (every thread, DuckDB's included) over the raw "
                "SDK's; less sensitive than wall time to other work on the machine.",
            ],
        ),
        Section(
            title=f"Dead store: {dead_n:,} traced calls, the store can never be written",
            headers=[
                "store",
                "peak RSS growth MB",
                "calls s",
                "dropped traces",
                "queued traces",
                "shutdown() s",
            ],
            rows=[
                [
                    label,
                    f"{r['growth_mb']:.0f}",
                    f"{r['calls_s']:.1f}",
                    f"{r['stats']['dropped_traces']:,}",
                    f"{r['stats']['queued_traces']:,}",
                    f"{r['shutdown_s']:.1f}",
                ]
                for label, r in dead_runs
            ],
            notes=[
                "Growth of peak RSS over the RSS after configuration and a warm-up call "
                "(duckdb and pyarrow imported before it).",
                "calls s: a store that takes no write holds the app once, for "
                "`block_timeout_s` (10 s), then the queue drops the oldest traces (counted).",
                "shutdown() s: it waits for the store up to the exit timeout "
                "(`TRACEDUCK_EXIT_TIMEOUT_S`, 10 s) and 2 s more for the writer, whatever the "
                "HTTP client's own timeout; the write left unconfirmed is counted dropped.",
            ],
        ),
    ]
    targets = [
        Target("busy programs: traces stored / made", "100%" if all_stored else "< 100%",
               "100%", all_stored),
        Target(f"all-in, {n:,} traced calls + flush vs raw SDK", f"{allin:.2f}×",
               "≤ 2× (goal 1.6×)", allin <= 2.0),
        Target("traces stored / s beside a busy thread (tight loop)",
               num(loop_rate or 0), "info", None),
        Target(f"peak RSS growth, dead store, {dead_n:,} calls (the most of {len(dead_runs)})",
               f"{dead_growth:.0f} MB", "< 150 MB", dead_growth < 150),
    ]  # fmt: skip
    if not why_not_chdb:
        slower = [totals["chdb"][k] / totals["DuckDB"][k] for k in totals["chdb"]]
        targets[1:1] = [
            Target("busy programs into chdb: traces stored / made",
                   "100%" if chdb_stored else "< 100%", "100%", chdb_stored),
            Target("busy programs, calls + flush: chdb / DuckDB (median of the programs)",
                   f"{median(slower):.2f}× ({min(slower):.2f}-{max(slower):.2f}×)", "info", None),
        ]  # fmt: skip
    return SuiteResult(NAME, TITLE, time.perf_counter() - started, sections, targets)


def _row(label: str, engine: str, n: int, stored: int, r: dict[str, Any]) -> list[str]:
    return [
        label,
        engine,
        f"{n:,}",
        f"{stored:,}",
        f"{100 * stored / n:.1f}%",
        str(r["flush"]),
        f"{r['stats']['dropped_traces']:,}",
        f"{r['calls_s']:.2f}",
        f"{r['total_s']:.2f}",
        num(stored / r["total_s"]),
    ]
