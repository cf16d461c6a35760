"""Let the store's writer have the GIL while it writes, beside threads that never give it up.

A DuckDB write takes the GIL back dozens of times per batch (between the steps of a statement,
and to read text columns): ~120 times for a batch of 8,000 one-span traces. Beside a thread
that runs Python without pause, each of those waits lasts up to the interpreter's switch
interval (5 ms), so a write of 0.07 s takes 0.3 s; the queues fill and the app ends up waiting
for room anyway, with the second core idle.

So while a write is under way (``writing``), the threads that end and convert spans let go of
the GIL every ``EVERY`` spans (``time.sleep(0)``, ``tick``): a waiting writer takes it at once,
does its short step and lets go. When no thread waits, a hand-off costs one system call
(~1 µs, i.e. <0.1 µs a span); when no write is under way, the check costs one attribute read.
Nothing else changes for the app: Python hands the GIL between threads anyway, only later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .. import _runtime

__all__ = ["EVERY", "HANDOFF", "writing"]

EVERY = 16  # spans between hand-offs while a write is under way (a traced call: ~14 µs)


class Handoff:
    __slots__ = ("_lock", "countdown", "writes")

    def __init__(self) -> None:
        self.writes = 0  # writes under way, in every writer thread of the process
        self.countdown = EVERY
        self._lock = threading.Lock()

    def tick(self) -> None:
        """One span ended or converted while a write is under way."""
        self.countdown -= 1
        if self.countdown <= 0:
            self.countdown = EVERY
            time.sleep(0)  # lets go of the GIL; a waiting thread takes it

    def begin(self) -> None:
        with self._lock:
            self.writes += 1

    def end(self) -> None:
        with self._lock:
            self.writes -= 1

    def reset(self) -> None:
        """In a forked child: the parent's writes under way are not this process's, and the
        lock may have been held at the fork."""
        self._lock = threading.Lock()
        self.writes = 0
        self.countdown = EVERY


HANDOFF = Handoff()
_runtime.after_fork_in_child(HANDOFF.reset)


@contextmanager
def writing() -> Iterator[None]:
    """Mark a write under way (see the module docstring)."""
    HANDOFF.begin()
    try:
        yield
    finally:
        HANDOFF.end()
