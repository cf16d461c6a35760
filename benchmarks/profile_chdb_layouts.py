"""What one write of the exporter costs chdb under other table layouts than the shipped one.

    PYTHONPATH=src python benchmarks/profile_chdb_layouts.py [--traces 1730] [--rounds 15]

The Arrow tables the ClickHouse writer inserts for one batch (``--traces`` new traces of a root
and 9 children, the ingest suite's, as the flush's last write of that suite holds), captured
from a real write, then inserted again and again into tables of one chdb database, merges
stopped (so that no background merge of earlier rounds lands in a later one). Layouts:

- ``shipped``: the spans' INSERT and the trace rows' INSERT in one call, as the writer does
  (``Connection.insert_arrow_tables``): two parts, the trace rows' after the spans'.
- ``one table``: spans and trace rows as rows of one wide ReplacingMergeTree, sorted by
  ``(kind, trace_id, start_time_ns, span_id)``, so a trace-level query reads only the trace
  rows' granules: one INSERT, one part. The rows are combined in Arrow beforehand (timed
  apart, in Python).
- ``derived``: the spans' INSERT alone, with a materialized view that derives each trace's row
  from its spans (the trace rows of one insert, grouped in the engine): one statement, the
  view's part beside the spans'.
- ``spans only``: the spans' INSERT alone. NOT A STORE (no trace rows): the floor under every
  layout that stores the spans.

Each is timed alone (wall and the process's CPU, medians) and beside a busy Python thread, as the
exporter's writes run beside the traced program (that thread's loop rate, and each call's wall).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suites.ingest import build_spans  # noqa: E402

_S = " SETTINGS max_threads = 1, max_insert_threads = 1"

# The one-table layout: the spans' columns (``kind`` renamed ``span_kind``), then the trace
# row's own columns, ``t_`` before them; ``kind`` 0 is a span, 1 a trace row.
_ONE_TABLE = """
CREATE TABLE {db}.rows (
    kind UInt8, trace_id String, span_id String, parent_id Nullable(String),
    name Nullable(String), span_type Nullable(String), status LowCardinality(Nullable(String)),
    status_message Nullable(String), start_time_ns Int64, end_time_ns Nullable(Int64),
    duration_ms Nullable(Float64), span_kind LowCardinality(Nullable(String)),
    service_name Nullable(String), attributes String, inputs Nullable(String) CODEC(ZSTD(3)),
    outputs Nullable(String) CODEC(ZSTD(3)), events Nullable(String) CODEC(ZSTD(3)),
    t_timestamp_ms Int64, t_execution_time_ms Float64, t_span_count Int64,
    t_root_span_id Nullable(String), t_has_root Bool,
    t_request_preview Nullable(String) CODEC(ZSTD(3)),
    t_response_preview Nullable(String) CODEC(ZSTD(3)), t_experiment_id String,
    t_experiment String, version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (kind, trace_id, start_time_ns, span_id)
SETTINGS index_granularity = 1024"""

# The derived layout: the spans' copy with a view that groups each insert's spans by trace.
_DERIVED = [
    "CREATE TABLE {db}.spans_d AS {db}.spans",
    """CREATE TABLE {db}.traces_d (
        trace_id String, name Nullable(String), status LowCardinality(String),
        start_time_ns Int64, end_time_ns Int64, span_count Int64,
        service_name Nullable(String), root_span_id Nullable(String), has_root Bool,
        request_preview Nullable(String) CODEC(ZSTD(3)),
        response_preview Nullable(String) CODEC(ZSTD(3))
    ) ENGINE = ReplacingMergeTree ORDER BY trace_id SETTINGS index_granularity = 1024""",
    """CREATE MATERIALIZED VIEW {db}.traces_mv TO {db}.traces_d AS
    SELECT trace_id, anyIf(name, parent_id IS NULL) AS name,
           if(countIf(status = 'ERROR') > 0, 'ERROR', 'OK') AS status,
           min(start_time_ns) AS start_time_ns, max(ifNull(end_time_ns, 0)) AS end_time_ns,
           count() AS span_count, anyIf(service_name, parent_id IS NULL) AS service_name,
           anyIf(span_id, parent_id IS NULL) AS root_span_id,
           countIf(parent_id IS NULL) > 0 AS has_root,
           anyIf(substring(inputs, 1, 1000), parent_id IS NULL) AS request_preview,
           anyIf(substring(outputs, 1, 1000), parent_id IS NULL) AS response_preview
    FROM {db}.spans_d GROUP BY trace_id""",
]


def _captured_write(root: str, traces: int) -> tuple[Any, Any, dict[str, str], Any]:
    """(spans, trace rows, the spans' column expressions, a raw chdb handle): one real write of
    the exporter into ``chdb://root?database=layouts``, and its handle on that engine."""
    from traceduck import DuckDBSpanExporter
    from traceduck.store.clickhouse import _client

    captured: list[tuple[list[tuple[str, Any]], Any]] = []
    original = _client.Connection.insert_arrow_tables

    def capture(self: Any, inserts: list[tuple[str, Any]], exprs: Any = None) -> None:
        captured.append((inserts, exprs))
        original(self, inserts, exprs)

    _client.Connection.insert_arrow_tables = capture  # type: ignore[method-assign]
    exporter = DuckDBSpanExporter(f"chdb://{root}?database=layouts")
    try:
        exporter.export(build_spans(traces, seed=1))
        exporter.force_flush()
    finally:
        _client.Connection.insert_arrow_tables = original  # type: ignore[method-assign]
    inserts, exprs = captured[-1]
    tables = dict(inserts)
    handle, _ = exporter.sink._writer.connection()._raw()
    return tables["spans"], tables["td_traces"], exprs["spans"], (exporter, handle)


def _one_table_rows(spans: Any, rows: Any) -> Any:
    import pyarrow as pa

    n = rows.num_rows
    trace_rows = pa.table(
        {
            "kind": pa.array([1] * n, pa.uint8()),
            "trace_id": rows["trace_id"],
            "span_id": pa.array([""] * n),
            **{c: rows[c] for c in ("name", "status", "status_message", "start_time_ns")},
            **{c: rows[c] for c in ("end_time_ns", "service_name")},
            **{f"t_{c}": rows[c] for c in ("timestamp_ms", "execution_time_ms", "span_count")},
            **{f"t_{c}": rows[c] for c in ("root_span_id", "has_root", "request_preview")},
            **{f"t_{c}": rows[c] for c in ("response_preview", "experiment_id", "experiment")},
            "version": rows["version"],
        }
    )
    names = ["span_kind" if c == "kind" else c for c in spans.schema.names]
    span_rows = spans.rename_columns(names).append_column(
        "kind", pa.array([0] * spans.num_rows, pa.uint8())
    )
    return pa.concat_tables([span_rows, trace_rows], promote_options="default")


def _insert(db: str, table: str, data: Any, source: str, exprs: dict[str, str]) -> str:
    names = data.schema.names
    values = [exprs.get(name, name) for name in names]
    return (
        f"INSERT INTO {db}.{table} ({', '.join(names)}) "
        f"SELECT {', '.join(values)} FROM Python({source}){_S}"
    )


def _spin(stop: threading.Event, out: list[int]) -> None:
    n = 0
    while not stop.is_set():
        n += 1
    out.append(n)


def _beside_busy_thread(fn: Callable[[], None], seconds: float) -> tuple[float, float]:
    """(the busy thread's loops per second, each call's wall in ms) while ``fn`` runs again
    and again for ``seconds``."""
    stop, out = threading.Event(), []
    thread = threading.Thread(target=_spin, args=(stop, out))
    thread.start()
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        fn()
        calls += 1
    elapsed = time.perf_counter() - started
    stop.set()
    thread.join()
    return out[0] / elapsed, elapsed / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1_730)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="td-layouts-")
    spans, rows, exprs, (exporter, handle) = _captured_write(root, args.traces)
    db = "layouts"
    handle.query(_ONE_TABLE.format(db=db))
    for sql in _DERIVED:
        handle.query(sql.format(db=db))
    handle.query("SYSTEM STOP MERGES")

    started = time.perf_counter()
    combined = _one_table_rows(spans, rows)
    combine_ms = (time.perf_counter() - started) * 1000
    _td_0, _td_1, _td_2 = spans, rows, combined  # Python() finds them among these locals
    layouts = {
        "shipped": _insert(db, "spans", spans, "_td_0", exprs)
        + ";\n"
        + _insert(db, "td_traces", rows, "_td_1", {}),
        "one table": _insert(db, "rows", combined, "_td_2", exprs),
        "derived": _insert(db, "spans_d", spans, "_td_0", exprs),
        "spans only": _insert(db, "spans", spans, "_td_0", exprs),
    }
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in layouts}
    for _ in range(args.rounds):
        for name, sql in layouts.items():
            wall, cpu = time.perf_counter(), time.process_time()
            handle.query(sql)
            timings[name].append(
                ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
            )
    calls: dict[str, Callable[[], Any]] = {"(sleep 30 ms)": lambda: time.sleep(0.03)}
    calls.update({name: lambda sql=sql: handle.query(sql) for name, sql in layouts.items()})
    busy: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
    for _ in range(5):  # in turn, so that a slow moment of the machine lands on every one
        for name, fn in calls.items():
            busy[name].append(_beside_busy_thread(fn, 0.4))
    print(
        f"one write of {rows.num_rows:,} traces ({spans.num_rows:,} spans) into chdb, "
        f"{args.rounds} rounds, merges stopped; medians:"
    )
    for name, values in timings.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        print(f"  {name:11s} {wall:6.1f} ms wall, {cpu:6.1f} ms CPU (all threads)")
    print(f"  (one table: its rows combined in Arrow first, in Python: {combine_ms:.1f} ms)")
    print("beside a busy Python thread (its loops/s; each call's wall):")
    for name, runs in busy.items():
        rate = statistics.median(r for r, _ in runs) / 1e6
        call = statistics.median(c for _, c in runs)
        print(f"  {name:13s} {rate:5.2f} M loops/s, {call:6.1f} ms a call")
    del _td_0, _td_1, _td_2
    exporter.shutdown()


if __name__ == "__main__":
    main()
