"""While the store writes, a traced program that never pauses lets the writer have the GIL.

A DuckDB write takes the GIL back dozens of times per batch. Beside a thread that runs Python
without pause, each of those waits lasts up to the interpreter's switch interval; the tests
make that interval 1 s, so a thread that waits for the GIL stands out clearly from one that
is handed it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import traceduck as td
from traceduck import _config
from traceduck._export import _duckdb
from traceduck._export._handoff import HANDOFF, writing
from traceduck._export._processor import BlockingSpanProcessor

from ._helpers import KeepingExporter

CALLS = 20_000


@td.trace
def f(x: int) -> int:
    return x + 1


@pytest.fixture
def long_switch_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.fixture
def keeping_processor(db_path: str) -> Iterator[BlockingSpanProcessor]:
    """The configured tracer's spans go to a processor whose queue never fills."""
    td.configure(db=db_path)
    processor = BlockingSpanProcessor(KeepingExporter(), max_queue_spans=2 * CALLS)  # type: ignore[arg-type]
    switch = _config._S.switch
    assert switch is not None
    original, switch.target = switch.target, processor
    try:
        yield processor
    finally:
        switch.target = original
        processor.shutdown()


def _steps_done_while_tracing(during_a_write: bool) -> tuple[int, int]:
    """A thread that takes the GIL back 20 times (as a DuckDB write does) beside a tight traced
    loop: (steps it finished before the loop ended, calls the loop made)."""
    steps = 0
    started = threading.Event()

    def writer() -> None:
        nonlocal steps
        started.set()
        for _ in range(20):
            time.sleep(0.0005)  # lets go of the GIL, then needs it back
            steps += 1

    def run() -> None:
        if during_a_write:
            with writing():
                writer()
        else:
            writer()

    thread = threading.Thread(target=run)
    thread.start()
    started.wait()
    calls = 0
    for i in range(CALLS):
        f(i)
        calls += 1
        if steps == 20:
            break
    done = steps
    thread.join()
    return done, calls


@pytest.mark.usefixtures("long_switch_interval", "keeping_processor")
def test_a_write_under_way_gets_the_gil_from_a_tight_traced_loop() -> None:
    done, calls = _steps_done_while_tracing(during_a_write=True)
    assert done == 20, f"the writer finished {done} of 20 steps in {calls} traced calls"
    assert HANDOFF.writes == 0


@pytest.mark.usefixtures("long_switch_interval", "keeping_processor")
def test_without_a_write_the_loop_keeps_the_gil() -> None:
    """The control: the same thread, no write under way, gets the GIL only when the interval
    runs out (the loop is over long before)."""
    done, calls = _steps_done_while_tracing(during_a_write=False)
    assert calls == CALLS
    assert done < 20


def test_the_exporter_marks_its_store_writes(db_path: str) -> None:
    td.configure(db=db_path)
    exporter = _config._S.exporter
    assert isinstance(exporter, _duckdb.DuckDBSpanExporter)
    seen: list[int] = []
    write = exporter.sink.write

    def watching(*args: Any, **kwargs: Any) -> None:
        seen.append(HANDOFF.writes)
        write(*args, **kwargs)

    exporter.sink.write = watching  # type: ignore[method-assign]
    try:
        f(1)
        assert td.flush() is True
    finally:
        exporter.sink.write = write  # type: ignore[method-assign]
    assert seen and all(n >= 1 for n in seen)
    assert HANDOFF.writes == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_child_forked_during_a_write_does_not_hand_off_for_it() -> None:
    """The parent's write is not the child's: a child forked while one was under way starts
    with none (and a lock of its own), so its traced calls never yield for a write of another
    process."""
    with writing(), HANDOFF._lock:  # as if a writer thread were in begin() at the fork
        pid = os.fork()
        if pid == 0:  # the child
            os._exit(0 if HANDOFF.writes == 0 and not HANDOFF._lock.locked() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
