"""The caller's cost of an awaited ``@trace`` coroutine call, in a tight loop.

    PYTHONPATH=src python benchmarks/profile_async_call.py [--calls 20000] [--repeats 7]

Prints the caller thread's CPU µs per awaited traced call (``time.thread_time``, the minimum of
the repeats: the least disturbed one on a shared machine), with the store exporter flushed
between repeats, and the same for the undecorated coroutine. Runs in a temp dir.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import traceduck as td


async def _loop(call: Callable[[int], Awaitable[int]], n: int) -> None:
    for i in range(n):
        await call(i)


def cpu_us(call: Callable[[int], Awaitable[int]], n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.thread_time_ns()
        asyncio.run(_loop(call, n))
        best = min(best, (time.thread_time_ns() - start) / n / 1000)
        td.flush()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    async def plain(x: int) -> int:
        return x

    traced = td.trace(plain)
    with tempfile.TemporaryDirectory() as tmp:
        td.configure(db=str(Path(tmp) / "async.duckdb"))
        print(f"plain coroutine:  {cpu_us(plain, args.calls, args.repeats):6.2f} µs/call")
        print(f"@trace coroutine: {cpu_us(traced, args.calls, args.repeats):6.2f} µs/call")
        td.shutdown()


if __name__ == "__main__":
    main()
