"""What every suite shares: result types, the round-robin timer, statistics and formatting.

A suite is a module with ``NAME``, ``TITLE`` and ``run(cfg: Config) -> SuiteResult``. It runs in
its own worker process (``run.py`` starts one per suite, with a fresh temp dir as the working
directory), so process-wide state such as traceduck's global provider never leaks between suites.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

T = TypeVar("T")

# The raw-SDK baselines' BatchSpanProcessor: a queue large enough that it drops nothing in the
# suites' batches, the 200 ms schedule traceduck's span processor also uses.
BSP_SETTINGS: dict[str, int] = {
    "max_queue_size": 65_536,
    "schedule_delay_millis": 200,
    "max_export_batch_size": 4096,
}


@dataclass
class Config:
    """What the command line chose; each suite scales its sizes from ``quick``."""

    quick: bool
    workdir: Path
    # The search suite's chdb queries also on chdb stores of these sizes (no DuckDB beside).
    chdb_traces: tuple[int, ...] = ()


@dataclass
class Section:
    """One markdown table with its notes."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", table(self.headers, self.rows)]
        if self.notes:
            lines.append("")
            lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines)


@dataclass
class Target:
    """A target the table is read against; ``met`` is None for figures reported without a gate."""

    name: str
    measured: str
    goal: str
    met: bool | None

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**MISSED**", None: "info"}[self.met]


@dataclass
class SuiteResult:
    suite: str
    title: str
    seconds: float = 0.0
    sections: list[Section] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SuiteResult:
        return cls(
            suite=data["suite"],
            title=data["title"],
            seconds=data["seconds"],
            sections=[Section(**s) for s in data["sections"]],
            targets=[Target(**t) for t in data["targets"]],
            environment=data["environment"],
        )


class NoopSpanExporter(SpanExporter):
    """The raw-SDK baseline's exporter: accepts every batch and does nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


# -- measuring --------------------------------------------------------------------------------


@dataclass
class Sample:
    """One timed batch of one variant (all per operation / per trace, in nanoseconds)."""

    wall_ns: float  # caller's wall time per operation
    cpu_ns: float  # caller thread's CPU time per operation
    flush_ns: float | None  # wall time of the flush after the batch, per trace
    background_cpu_ns: float | None  # CPU of every other thread over batch + flush, per trace


@dataclass
class Variant:
    """A thing to time: ``batch(n)`` does n operations; ``flush()`` drains its exporter."""

    key: str
    label: str
    batch: Callable[[int], None]
    ops: int  # operations per timed batch
    traces_per_op: float = 1.0
    flush: Callable[[], object] | None = None
    baseline: str | None = None  # key of the variant the ratio is taken against
    samples: list[Sample] = field(default_factory=list)


def measure(variant: Variant) -> Sample:
    """Time one batch in the caller's thread, then its flush (the deferred cost), separately."""
    n = variant.ops
    gc.collect()
    p0 = time.process_time_ns()
    c0 = time.thread_time_ns()
    t0 = time.perf_counter_ns()
    variant.batch(n)
    t1 = time.perf_counter_ns()
    c1 = time.thread_time_ns()
    if variant.flush is None:
        return Sample((t1 - t0) / n, (c1 - c0) / n, None, None)
    variant.flush()
    t2 = time.perf_counter_ns()
    c2 = time.thread_time_ns()
    p2 = time.process_time_ns()
    traces = max(n * variant.traces_per_op, 1.0)
    background = (p2 - p0) - (c2 - c0)
    return Sample((t1 - t0) / n, (c1 - c0) / n, (t2 - t1) / traces, max(background, 0) / traces)


def round_robin(variants: Sequence[Variant], reps: int, tag: str) -> None:
    """``reps`` rounds; each round times every variant once, the starting variant rotating, so
    machine noise and position effects hit every variant alike."""
    for rep in range(reps):
        start = rep % len(variants)
        for variant in [*variants[start:], *variants[:start]]:
            variant.samples.append(measure(variant))
        progress(f"[{tag}] round {rep + 1}/{reps}")


def paired_ratio(variant: Variant, baseline: Variant, metric: str = "wall_ns") -> float:
    """Median over rounds of variant/baseline from the same round (pairs cancel slow drifts).

    ``metric``: "wall_ns" (caller's wall time) or "cpu_ns" (caller thread's CPU time).
    """
    pairs = zip(variant.samples, baseline.samples)
    return statistics.median(
        getattr(v, metric) / getattr(b, metric) for v, b in pairs if getattr(b, metric) > 0
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


# -- formatting -------------------------------------------------------------------------------


def us(ns: float | None, digits: int = 2) -> str:
    """Nanoseconds as a microsecond figure."""
    return "–" if ns is None else f"{ns / 1000:.{digits}f}"


def num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(out)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- workloads ------------------------------------------------------------------------------

SPANS_PER_TRACE = 10  # the standard trace of the ingest and memory suites: a root and 9 children


@dataclass
class Workload:
    """A traced app in this process: ``handle(x)`` makes one trace (a root and 9 children)."""

    handle: Callable[[int], int]
    flush: Callable[[], bool]
    shutdown: Callable[[], None]


def raw_sdk_provider() -> TracerProvider:
    """The raw-SDK baseline: its own ``TracerProvider`` (not the global one) with a
    ``BatchSpanProcessor`` using traceduck's settings and a no-op exporter."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NoopSpanExporter(), **BSP_SETTINGS))
    return provider


def traceduck_handle() -> Callable[[int], int]:
    """The standard app's entry point decorated with ``@traceduck.trace``: one call makes a trace
    of a root and ``SPANS_PER_TRACE - 1`` children, into wherever traceduck is configured."""
    import traceduck

    @traceduck.trace
    def step(x: int) -> int:
        return x + 1

    @traceduck.trace
    def handle(x: int) -> int:
        for _ in range(SPANS_PER_TRACE - 1):
            step(x)
        return x

    return handle


def traced_workload(variant: str, db: str) -> Workload:
    """The same app traced by traceduck (``traceduck.configure(db=db)`` defaults, capture on)
    or, for ``variant="raw SDK"``, by the raw-SDK baseline: its own ``TracerProvider`` with a
    ``BatchSpanProcessor`` (traceduck's settings) and a no-op exporter."""
    if variant == "traceduck":
        import traceduck

        traceduck.configure(db=db)
        return Workload(traceduck_handle(), traceduck.flush, traceduck.shutdown)

    provider = raw_sdk_provider()
    tracer = provider.get_tracer("bench")

    def raw_step(x: int) -> int:
        with tracer.start_as_current_span("step"):
            return x + 1

    def raw_handle(x: int) -> int:
        with tracer.start_as_current_span("handle"):
            for _ in range(SPANS_PER_TRACE - 1):
                raw_step(x)
            return x

    return Workload(raw_handle, provider.force_flush, provider.shutdown)


def chdb_missing() -> str | None:
    """Why the chdb rows cannot run here (the ``clickhouse`` extra not installed), or None."""
    import importlib.util

    for module in ("chdb", "clickhouse_connect"):
        if importlib.util.find_spec(module) is None:
            return f"`{module}` is not installed (`pip install -e '.[clickhouse]'`)"
    return None


def in_fresh_process(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a new (spawned) interpreter: its own memory, threads and globals."""
    with fresh_processes(1) as pool:
        return pool.submit(fn, *args).result()


@contextmanager
def fresh_processes(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` new (spawned) interpreters, for calls that run side by side: submit
    at most ``workers`` calls, and each runs in a fresh process of its own."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield pool


def wait_quiet(pid: int, timeout_s: float = 10.0) -> None:
    """Until process ``pid`` uses under 10% of a core over 100 ms: a server that has announced
    itself may still be starting up (a collector keeps a core busy ~0.4 s longer), and a
    clock started meanwhile would time that too. Without psutil: a fixed 1 s pause."""
    try:
        import psutil
    except ImportError:
        time.sleep(1.0)
        return
    proc = psutil.Process(pid)
    deadline = time.monotonic() + timeout_s
    before = sum(proc.cpu_times()[:2])
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = sum(proc.cpu_times()[:2])
        if now - before < 0.01:
            return
        before = now


class Signal:
    """A one-way flag between a suite and its spawned children: a file in the suite's temp
    dir. Picklable (it is a path) and needs no manager process; ``wait`` polls every 20 ms."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)

    def set(self) -> None:
        Path(self.path).touch()

    def is_set(self) -> bool:
        return os.path.exists(self.path)

    def wait(self, timeout_s: float = 600.0, child: Future[Any] | None = None) -> None:
        """Until the flag is set; raises if ``child`` (the setter's future) fails first."""
        deadline = time.monotonic() + timeout_s
        while not self.is_set():
            if child is not None and child.done():
                child.result()  # raises the child's error
                raise RuntimeError(f"{self.path}: the child ended without setting it")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.path} not set within {timeout_s:.0f} s")
            time.sleep(0.02)


# -- memory -----------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (ru_maxrss), in MB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """This process's resident set size now, in MB (psutil if installed, else /proc)."""
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / (1024 * 1024)
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except OSError:
        return peak_rss_mb()
