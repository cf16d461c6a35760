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
import struct
import subprocess
import sys
from typing import Any

from profile_allin import paired, run_raw, run_traceduck  # beside this script

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


def _write_in_a_child() -> None:
    """Every DuckDB sink's writes go to a child process started at its first write (the
    untimed warm-up call), which opens the sink's file itself."""
    from traceduck.store.duckdb import _sink

    children: dict[str, _ChildWriter] = {}

    def write(self: Any, batch: Any, timeout_s: float) -> None:
        child = children.get(self.db.path) or children.setdefault(
            self.db.path, _ChildWriter(self.db.path)
        )
        child.write(batch, timeout_s)

    _sink.DuckDBSink.write = write  # type: ignore[method-assign]
    _sink.DuckDBSink.release_if_idle = lambda self: None  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant == "raw SDK":
        print(run_raw(args.calls))
    elif args.variant == "writes in a child process":
        _write_in_a_child()
        print(run_traceduck(args.calls, "traceduck"))
    elif args.variant:
        print(run_traceduck(args.calls, args.variant))
    else:
        paired(__file__, VARIANTS, args.rounds, args.calls)
        return
    os._exit(0)  # flushed; a child (if any) ends when its pipe closes


if __name__ == "__main__":
    main()
