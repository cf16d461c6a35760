"""TRACEDUCK_DISABLED=1 turns @trace into a plain call (README, Configuration): from the
process's first traced call on, and for every kind of callable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import traceduck as td
from _support import child_env

APP = textwrap.dedent(
    """
    import asyncio
    import traceduck as td

    @td.trace
    def add(a, b):
        return a + b

    @td.trace
    async def twice(x):
        return 2 * x

    @td.trace
    def count(n):
        yield from range(n)

    results = [add(1, 2), add(3, 4), asyncio.run(twice(5)), list(count(3))]
    print(results, td.get_last_trace_id(), td.flush())
    """
)


def test_disabled_traces_nothing_from_the_first_call_on(tmp_path: Path) -> None:
    db = tmp_path / "disabled.duckdb"
    result = subprocess.run(
        [sys.executable, "-c", APP],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=child_env(TRACEDUCK_DB=str(db), TRACEDUCK_DISABLED="1"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[3, 7, 10, [0, 1, 2]] None True\n"  # plain calls, no trace id
    # The file may exist (flush() sets up the store), but no trace reached it.
    assert not db.exists() or td.TraceStore(str(db)).count_traces() == 0
