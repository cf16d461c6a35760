"""TRACEDUCK_DISABLED=1 turns @trace into a plain call and start_span into a plain block
(README, Configuration): from the process's first traced call on, for every kind of callable."""

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
    with td.start_span("block") as span:
        span.set_inputs({"x": 1})
        results.append(add(5, 6))
    try:
        with td.start_span("failing"):
            raise KeyError("the user's own")
    except KeyError as exc:
        results.append(exc.args[0])
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
    # plain calls and blocks, the user's exception as raised, no trace id
    assert result.stdout == '[3, 7, 10, [0, 1, 2], 11, "the user\'s own"] None True\n'
    # The file may exist (flush() sets up the store), but no trace reached it.
    assert not db.exists() or td.TraceStore(str(db)).count_traces() == 0
