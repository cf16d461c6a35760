"""The all-in time of a tight traced loop with each of this session's choices undone, paired.

    PYTHONPATH=src python benchmarks/profile_allin.py [--rounds 6] [--calls 50000]

The busy suite's all-in row (50,000 calls of a decorated ``f(x) = x + 1`` + ``flush()``, against
the same loop on a raw SDK span with a BatchSpanProcessor and a no-op exporter), here with
variants, each in a fresh process, alternating round by round:

- ``traceduck``: as configured by default;
- ``no hand-off``: the span threads never hand the GIL to a write under way
  (``_export/_handoff.py``);
- ``default DuckDB threads``: DuckDB with as many threads as cores, not one fewer
  (``store/duckdb/_sink.py``);
- ``default checkpoint threshold``: DuckDB checkpoints at its default WAL size (16MiB), not
  ``CHECKPOINT_THRESHOLD`` (``store/duckdb/_sink.py``).

With ``--diagnose``, two more variants say where the rest goes (neither is an option a user has):

- ``store writes nothing``: the DuckDB sink's ``write`` returns at once (conversion, queues
  and hand-offs as usual): what the store's writes cost the loop;
- ``cyclic GC off``: ``gc.disable()`` in that process: what Python's cyclic GC costs it.

With ``--against SRC`` (the ``src`` directory of another version, e.g. made by
``git archive REV src | tar -x -C /tmp/REV``) that version's default traceduck runs too, in the
same rounds: what a change did, told apart from the machine's state at the time.

Prints each variant's seconds per round and its ratio to the raw SDK of the same round; which
variant goes first alternates from round to round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

VARIANTS = (
    "raw SDK",
    "traceduck",
    "no hand-off",
    "default DuckDB threads",
    "default checkpoint threshold",
)
DIAGNOSTICS = ("store writes nothing", "cyclic GC off")


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
    if variant == "no hand-off":
        from traceduck._export import _handoff

        _handoff.EVERY = _handoff.HANDOFF.countdown = 10**12
    from traceduck.store.duckdb import _sink

    if variant == "default DuckDB threads":
        _sink.background_threads = lambda: len(os.sched_getaffinity(0))  # type: ignore[assignment]
    if variant == "default checkpoint threshold":
        _sink.CHECKPOINT_THRESHOLD = "16MiB"
    if variant == "store writes nothing":
        _sink.DuckDBSink.write = lambda self, batch, timeout_s: None  # type: ignore[method-assign]
    if variant == "cyclic GC off":
        import gc

        gc.disable()
    import traceduck as td

    td.configure(db=os.path.join(tempfile.mkdtemp(), "allin.duckdb"))

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


def paired(
    script: str,
    variants: tuple[str, ...],
    rounds: int,
    calls: int,
    against: str | None = None,
) -> None:
    """Run ``script --variant V`` for each of ``variants`` (the first the raw SDK), alternating
    round by round, each in a fresh process; print each one's seconds and ratio to the raw.
    ``against``: a ``src`` directory of another version of traceduck, whose default
    ``traceduck`` variant runs beside this one's (as ``traceduck at <dir>``)."""
    runs = [(v, v, None) for v in variants]
    if against:
        runs.insert(2, (f"traceduck at {against}", "traceduck", against))
    times: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    for k in range(rounds):
        for label, variant, src in runs if k % 2 == 0 else runs[::-1]:
            cmd = [sys.executable, script, "--variant", variant, "--calls", str(calls)]
            env = {**os.environ, "PYTHONPATH": src} if src else None
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
            times[label].append(float(out.split()[-1]))
    raw = times[variants[0]]
    print(f"{calls:,} calls + flush, {rounds} rounds, load {os.getloadavg()[0]:.1f}")
    for variant, values in times.items():
        ratios = [v / r for v, r in zip(values, raw)]
        print(
            f"  {variant:<28} median {statistics.median(values):.2f} s"
            f"  x raw SDK: median {statistics.median(ratios):.2f}"
            f"  ({', '.join(f'{x:.2f}' for x in ratios)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--diagnose", action="store_true", help="add the diagnostic variants")
    parser.add_argument(
        "--against",
        metavar="SRC",
        help="also run another version's traceduck: its src directory (git archive REV src)",
    )
    parser.add_argument("--variant", choices=VARIANTS + DIAGNOSTICS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        run = run_raw if args.variant == "raw SDK" else None
        seconds = run(args.calls) if run else run_traceduck(args.calls, args.variant)
        print(seconds)
        os._exit(0)  # the store was flushed: nothing left to write
    variants = VARIANTS + DIAGNOSTICS if args.diagnose else VARIANTS
    paired(__file__, variants, args.rounds, args.calls, args.against)


if __name__ == "__main__":
    main()
