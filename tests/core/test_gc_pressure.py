"""What a busy program's spans wait in costs Python's cyclic GC nothing.

A tight traced loop keeps thousands of ended spans and finished traces queued. When those were
objects the GC tracks, they reached its oldest generation and made a third of the loop's time
go to full collections. Queued as tuples of plain values, the GC stops tracking them at its
first collections, before they can get there.
"""

from __future__ import annotations

import gc
import subprocess
from pathlib import Path
from typing import Any

import traceduck as td
from traceduck import _config
from traceduck._export._processor import BlockingSpanProcessor
from traceduck._export._redacting import RedactingExporter

from ._helpers import PYTHON, KeepingExporter, child_env, count


@td.trace
def f(x: int, y: str = "a") -> int:
    return x + 1


def _tracked_after_young_collections(items: list[Any]) -> list[Any]:
    """Those of ``items`` (made while the GC was off) the GC still tracks after a collection of
    its youngest generation and then of the middle one, as a busy program's collections go."""
    gc.collect(0)
    gc.collect(1)
    return [item for item in items if gc.is_tracked(item)]


def _what_keeps_tracked(items: list[Any]) -> list[Any]:
    return [
        (
            len(items),
            item[:6],
            [(i, type(v).__name__) for i, v in enumerate(item) if gc.is_tracked(v)],
        )
        for item in items[:3]
    ]


def test_the_ended_spans_of_plain_calls_wait_untracked_by_the_gc(db_path: str) -> None:
    td.configure(db=db_path)
    keep = KeepingExporter()
    processor = BlockingSpanProcessor(RedactingExporter(keep))  # type: ignore[arg-type]
    switch = _config._S.switch
    assert switch is not None
    original = switch.target
    switch.target = processor
    gc.collect()  # what the program made before (the decorator's parameter names) is old now
    gc.disable()
    try:
        for i in range(200):
            f(i)
            f(i, y="b")  # a keyword argument too
            with td.start_span("block"):
                pass
        processor.force_flush()
    finally:
        gc.enable()
        switch.target = original
        processor.shutdown()
    assert len(keep.items) == 600
    tracked = _tracked_after_young_collections(keep.items)
    assert tracked == [], _what_keeps_tracked(tracked)


def test_finished_traces_wait_for_the_writer_untracked_by_the_gc(db_path: str) -> None:
    td.configure(db=db_path)
    exporter = _config._S.exporter
    assert exporter is not None
    queued: list[Any] = []
    enqueue = exporter.enqueue
    exporter.enqueue = queued.extend  # type: ignore[method-assign]
    gc.collect()  # what the program made before (the decorator's parameter names) is old now
    gc.disable()
    try:
        for i in range(200):
            f(i)
        td.flush()
    finally:
        gc.enable()
        exporter.enqueue = enqueue  # type: ignore[method-assign]
    assert len(queued) == 200
    tracked = _tracked_after_young_collections(queued)
    assert tracked == [], _what_keeps_tracked(tracked)
    exporter.enqueue(queued)  # and they are what the store takes
    assert td.flush() is True
    assert count("traces") == 200


def test_tracing_into_duckdb_never_imports_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas on its first conversion of Python values: a second of one core
    and tens of thousands of objects for every full GC collection, in every traced process.
    Traces with live tags too (their history events), and tags set after the fact in bulk."""
    script = f"""
import sys
import traceduck as td
td.configure(db={str(tmp_path / "t.duckdb")!r})

@td.trace
def f(x):
    return x + 1

for i in range(100):
    f(i)
with td.start_span("tagged") as span:
    span.set_inputs({{"q": [1, 2]}})
    td.update_current_trace(tags={{"env": "prod", "n": 1}}, metadata={{"run": "a"}})
assert td.flush() is True
store = td.TraceStore({str(tmp_path / "t.duckdb")!r})
assert store.set_trace_tags("name = 'f'", {{"reviewed": True}}) == 100  # after the fact, in bulk
print(store.count_traces(), "pandas" in sys.modules)
"""
    out = subprocess.run(
        [PYTHON, "-c", script], env=child_env(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["101", "False"]
