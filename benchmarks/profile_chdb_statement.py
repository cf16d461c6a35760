"""What one statement costs chdb whatever its size: a one-row insert, by each way in.

    PYTHONPATH=src python benchmarks/profile_chdb_statement.py [--rounds 100]

A chdb write of the exporter is a lookup and three inserts (spans, metadata, trace rows), each
``INSERT ... SELECT ... FROM Python(t)`` reading an Arrow table in place. This times, on chdb's
own connection (as the writer calls it) in a new database, the median wall and this thread's
CPU of: ``SELECT 1``; a one-row ``INSERT ... VALUES`` into a table of the ``Null`` engine (the
statement, no part) and into ``spans`` (a part); the same row of the spans' 16 columns through
``Python(t)`` into ``Null`` and into ``spans``. The difference between a ``Null`` line and its
``spans`` line is the part; between ``VALUES`` and ``Python(t)``, the ``SELECT``'s analysis.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()

    from traceduck.store._names import parse_store_name
    from traceduck.store._records import SPAN_SCHEMA, rows_to_arrow
    from traceduck.store.clickhouse import _client
    from traceduck.store.clickhouse._schema import migrate

    tmp = tempfile.mkdtemp(prefix="td-statement-")
    conn = _client.connect(parse_store_name(f"chdb://{tmp}/chdb?database=s"))
    migrate(conn)
    conn.command("CREATE TABLE null_spans AS s.spans ENGINE = Null")
    row = ("0" * 32, "1" * 16, None, "f", "function", "OK", None, 1, 2, 1e-6, "INTERNAL", "svc",
           "{}", '{"x":1}', "2", "[]")  # fmt: skip
    table = rows_to_arrow([row], SPAN_SCHEMA)
    columns = ", ".join(SPAN_SCHEMA.names)
    values = "(trace_id, span_id, start_time_ns, attributes) VALUES ('a', 'b', 1, '{}')"

    def python_insert(target: str) -> str:
        return (
            f"INSERT INTO s.{target} ({columns}) SELECT {columns} FROM Python(_td_0) "
            "SETTINGS max_threads = 1, max_insert_threads = 1"
        )

    cases = {
        "SELECT 1": "SELECT 1",
        "INSERT ... VALUES, Null engine": f"INSERT INTO s.null_spans {values}",
        "INSERT ... VALUES, spans": f"INSERT INTO s.spans {values}",
        "INSERT ... SELECT FROM Python(t), Null engine": python_insert("null_spans"),
        "INSERT ... SELECT FROM Python(t), spans": python_insert("spans"),
    }

    def run(sql: str) -> Any:
        _td_0 = table  # Python() finds it among the calling frames' locals
        return conn._raw_query(sql)

    times: dict[str, list[tuple[float, float]]] = {label: [] for label in cases}
    for rnd in range(args.rounds):
        for label, sql in list(cases.items())[:: 1 if rnd % 2 == 0 else -1]:
            started, cpu = time.perf_counter(), time.thread_time()
            run(sql)
            times[label].append((time.perf_counter() - started, time.thread_time() - cpu))
    print(f"one statement on chdb, medians of {args.rounds}:")
    for label, pairs in times.items():
        wall = statistics.median(p[0] for p in pairs) * 1e3
        cpu = statistics.median(p[1] for p in pairs) * 1e3
        print(f"  {label:<46} {wall:5.2f} ms, this thread's CPU {cpu:5.2f} ms")


if __name__ == "__main__":
    main()
