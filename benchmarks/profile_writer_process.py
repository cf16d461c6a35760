"""What the all-in loop would take if DuckDB's writes ran in another process: a measurement.

    PYTHONPATH=src python benchmarks/profile_writer_process.py [--rounds 6] [--calls 50000]

The busy suite's all-in loop (50,000 calls of a decorated ``f(x) = x + 1`` + ``flush()``,
against the raw SDK's loop with a BatchSpanProcessor and a no-op exporter), in fresh processes,
alternating round by round, in three variants:

- ``traceduck``: as it is (the writer thread runs DuckDB's statements in the app's process);
- ``writes in a child process``: the same exporter, queue and writer thread, but the sink's
  ``write`` pickles the batch, sends it down a pipe to a child process started at
  ``configure`` and waits for its answer; the child writes it with traceduck's DuckDB writer;
- ``store writes nothing``: the sink's ``write`` returns at once (the floor for the above).

This is not how traceduck writes (nothing here handles the child dying, the file's turns
with the app's own reads, forks or shutdown): it measures what moving the writes out of the
app's interpreter would be worth before building it.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

VARIANTS = ("raw SDK", "traceduck", "writes in a child process", "store writes nothing")

_CHILD = """
import pickle, struct, sys
from traceduck.store.duckdb._sink import DuckDBSink
sink = DuckDBSink(sys.argv[1])
read, answer = sys.stdin.buffer.read, sys.stdout.buffer
while True:
    head = read(8)
    if len(head) < 8:
        break
    batch = pickle.loads(read(struct.unpack("<Q", head)[0]))
    try:
        sink.write(batch, timeout_s=10.0)
        answer.write(b"k")
    except Exception:
        answer.write(b"e")
    answer.flush()
"""


class _ChildWriter:
    """The sink's ``write``, done by a child process (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def write(self, batch: Any, timeout_s: float) -> None:
        data = pickle.dumps(batch, protocol=5)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(struct.pack("<Q", len(data)) + data)
        self.proc.stdin.flush()
        if self.proc.stdout.read(1) != b"k":
            raise RuntimeError("the child could not write the batch")


def run_raw(calls: int) -> float:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Noop(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(
            Noop(), max_queue_size=65_536, schedule_delay_millis=200, max_export_batch_size=4_096
        )
    )
    tracer = provider.get_tracer("bench")

    def f(x: int) -> int:
        with tracer.start_as_current_span("f"):
            return x + 1

    f(0)
    provider.force_flush()
    started = time.perf_counter()
    for i in range(calls):
        f(i)
    provider.force_flush()
    return time.perf_counter() - started


def run_traceduck(calls: int, variant: str) -> float:
    from traceduck.store.duckdb import _sink

    path = os.path.join(tempfile.mkdtemp(), "allin.duckdb")
    if variant == "writes in a child process":
        child = _ChildWriter(path)
        _sink.DuckDBSink.write = lambda self, batch, timeout_s: child.write(batch, timeout_s)  # type: ignore[method-assign]
        _sink.DuckDBSink.release_if_idle = lambda self: None  # type: ignore[method-assign]
    if variant == "store writes nothing":
        _sink.DuckDBSink.write = lambda self, batch, timeout_s: None  # type: ignore[method-assign]
    import traceduck as td

    td.configure(db=path)

    @td.trace
    def f(x: int) -> int:
        return x + 1

    f(0)
    td.flush()
    started = time.perf_counter()
    for i in range(calls):
        f(i)
    ok = td.flush()
    seconds = time.perf_counter() - started
    assert ok and td.stats()["dropped_traces"] == 0, td.stats()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        if args.variant == "raw SDK":
            print(run_raw(args.calls))
        else:
            print(run_traceduck(args.calls, args.variant))
        os._exit(0)  # flushed; the child (if any) ends when its pipe closes
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            cmd = [sys.executable, __file__, "--variant", variant, "--calls", str(args.calls)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            times[variant].append(float(out.split()[-1]))
    raw = times["raw SDK"]
    print(f"{args.calls:,} calls + flush, {args.rounds} rounds, load {os.getloadavg()[0]:.1f}")
    for variant, values in times.items():
        ratios = [v / r for v, r in zip(values, raw)]
        print(
            f"  {variant:<26} median {statistics.median(values):.2f} s"
            f"  x raw SDK: median {statistics.median(ratios):.2f}"
            f"  ({', '.join(f'{x:.2f}' for x in ratios)})"
        )


if __name__ == "__main__":
    main()
