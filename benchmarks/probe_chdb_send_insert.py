"""Why the ClickHouse writer does not use chdb's streaming insert (``Connection.send_insert``).

    python benchmarks/probe_chdb_send_insert.py

It is the cheapest way into chdb (a few ms of CPU less per INSERT than ``Python(t)``: see
``profile_chdb_tail.py``), but when the engine refuses the rows after parsing them (a CHECK
constraint, too many parts, a materialized view that throws), ``finish()`` returns as if they
had been written: no exception, and the table does not have them. The writer would lose the
batch without a count. A plain ``INSERT`` (``query()``) raises for each of these.

Prints, per case, what ``send_insert`` reported, what a plain INSERT does, and the rows stored.
"""

from __future__ import annotations

import tempfile

import chdb
import pyarrow as pa


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def main() -> None:
    conn = chdb.connect(tempfile.mkdtemp(prefix="td-send-insert-"))
    conn.query("CREATE TABLE checked (a UInt64, CONSTRAINT small CHECK a < 10) "
               "ENGINE = MergeTree ORDER BY a")  # fmt: skip
    conn.query("CREATE TABLE parts (a UInt64) ENGINE = MergeTree ORDER BY a "
               "SETTINGS parts_to_throw_insert = 1")  # fmt: skip
    conn.query("CREATE TABLE target (a UInt64) ENGINE = MergeTree ORDER BY a")
    conn.query("CREATE TABLE source (a UInt64) ENGINE = Null")
    conn.query("CREATE MATERIALIZED VIEW throws TO target AS "
               "SELECT a + throwIf(a > 5, 'too big') AS a FROM source")  # fmt: skip
    conn.query("SYSTEM STOP MERGES parts")
    conn.query("INSERT INTO parts VALUES (1)")  # the one part allowed
    cases = [
        ("a CHECK constraint fails", "checked", "checked"),
        ("too many parts", "parts", "parts"),
        ("a materialized view throws", "source", "target"),
    ]
    row = pa.table({"a": pa.array([50], pa.uint64())})
    for label, table, stored_in in cases:
        before = int(conn.query(f"SELECT count() FROM {stored_in}", "CSV").bytes())
        try:
            stream = conn.send_insert(f"INSERT INTO {table} (a)", "ArrowStream")
            stream.append(_ipc(row))
            result = stream.finish()
            streamed = f"returned, rows_written={result.rows_written}"
        except Exception as exc:
            streamed = f"raised {str(exc).splitlines()[0][:80]}"
        after = int(conn.query(f"SELECT count() FROM {stored_in}", "CSV").bytes())
        try:
            conn.query(f"INSERT INTO {table} VALUES (50)")
            plain = "returned"
        except Exception as exc:
            plain = f"raised ({str(exc).split('DB::Exception: ')[-1][:60]}...)"
        print(f"{label}:\n  send_insert {streamed}; rows stored by it: {after - before}"
              f"\n  plain INSERT {plain}")  # fmt: skip
    print(f"chdb {chdb.__version__}")


if __name__ == "__main__":
    main()
