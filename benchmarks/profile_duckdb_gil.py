"""How many times a DuckDB statement takes the GIL back, beside a thread that never pauses.

    python benchmarks/profile_duckdb_gil.py

DuckDB's Python client releases the GIL while a statement runs and takes it back between the
statement's steps. Beside a thread that runs Python without pause, each of those takes waits up
to the interpreter's switch interval (set here to 5 ms, CPython's default). So
``(time beside the busy thread - time alone) / 5 ms`` estimates how many times the statement
took the GIL back. Statements: ``SELECT 1``, then inserts of 8,000 rows of 16 text columns
from an Arrow table and from NumPy object arrays (autocommit, and inside a transaction that
is rolled back), a CHECKPOINT and a count.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa

SWITCH_S = 0.005
ROWS = 8_000
COLUMNS = 16


def main() -> None:
    sys.setswitchinterval(SWITCH_S)
    con = duckdb.connect(os.path.join(tempfile.mkdtemp(), "gil.duckdb"), config={"threads": 1})
    con.execute(f"CREATE TABLE t ({', '.join(f'c{i} VARCHAR' for i in range(COLUMNS))})")
    text = [[f"value-{i}-{j}" for j in range(ROWS)] for i in range(COLUMNS)]
    # DuckDB finds a table it does not know among the calling frame's globals (the lambdas')
    globals()["arrow"] = pa.table({f"c{i}": pa.array(text[i]) for i in range(COLUMNS)})
    globals()["numpy"] = {f"c{i}": np.array(text[i], dtype=object) for i in range(COLUMNS)}
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            pass

    def measure(label: str, run: Callable[[], object]) -> None:
        stop.clear()
        thread = threading.Thread(target=busy)
        thread.start()
        time.sleep(0.01)
        try:
            started = time.perf_counter()
            run()
            beside = time.perf_counter() - started
        finally:
            stop.set()
            thread.join()
        started = time.perf_counter()
        run()
        alone = time.perf_counter() - started
        print(
            f"  {label:<40} alone {alone * 1000:6.1f} ms, beside {beside * 1000:6.1f} ms:"
            f" ~{(beside - alone) / SWITCH_S:4.1f} takes"
        )

    print(f"{ROWS:,} rows x {COLUMNS} text columns, switch interval {SWITCH_S * 1000:g} ms:")
    measure("SELECT 1", lambda: con.execute("SELECT 1").fetchall())
    measure("INSERT from Arrow", lambda: con.execute("INSERT INTO t SELECT * FROM arrow"))
    measure("INSERT from NumPy", lambda: con.execute("INSERT INTO t SELECT * FROM numpy"))
    measure(
        "INSERT from Arrow in a transaction",
        lambda: con.execute("BEGIN; INSERT INTO t SELECT * FROM arrow; ROLLBACK"),
    )
    measure("CHECKPOINT", lambda: con.execute("CHECKPOINT"))
    measure("SELECT count(*)", lambda: con.execute("SELECT count(*) FROM t").fetchall())


if __name__ == "__main__":
    main()
