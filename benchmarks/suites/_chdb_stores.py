"""The generated stores (``_stores``) on ClickHouse: the same traces in a chdb directory.

    from suites._chdb_stores import ensure_chdb_stores, copy_chdb_stores
    ensure_chdb_stores([100_000, 1_000_000])   # build missing ones (in a fresh process)
    url = copy_chdb_stores(tmp_dir, 1_000_000)  # chdb://<copy>?database=t1000000

Every size is a database ``t<N>`` in one chdb directory, cached beside the DuckDB stores
(``$TRACEDUCK_BENCH_CACHE``), named with a fingerprint of the ClickHouse schema and of the
generator. The traces are ``_stores.generate_chunk``'s, and the rows are the ones the engine's
batch writer makes of them when the exporter or the collector writes them in ``WriteBatch``es
of ``BATCH`` traces (``batches``): per batch one stamp (version, edit id, time), a ``set`` tag
event per live tag and a metadata entry per key (numbered in the batch's order), the trace
rows with that version. ``write_chunk`` inserts those rows straight from the generator's Arrow
tables, as ``_stores`` does for DuckDB (the writer itself, which looks up every batch's traces
first, wrote ~3,000 traces/s: an hour for 10,000,000); tests/test_bench_chdb_store.py checks
that both give the same tables and the same answers. chdb runs one directory per process, and
a directory cannot be copied while an engine has it open: the build runs in a fresh process,
and a suite opens a copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _stores
from ._common import in_fresh_process, progress

BATCH = 5_000  # traces per write batch, as the exporter writes them (a stamp each)
BUILDER = 2  # 1: through the batch writer; 2: the writer's rows inserted from Arrow
TAG_KEYS = ("env", "user_id", "cost")  # the generator's live tags, in their order
METADATA_KEYS = ("session", "model")


def fingerprint() -> str:
    from traceduck.store.clickhouse._schema import MIGRATIONS, SCHEMA_VERSION

    text = repr(
        (SCHEMA_VERSION, _stores.GENERATOR_VERSION, sorted(MIGRATIONS.items()), BATCH, BUILDER)
    )
    return hashlib.sha256(text.encode()).hexdigest()[:10]


SHARED_MAX = 1_000_000  # stores up to this size share a directory; larger ones have their own


def cache_path(n: int = 0) -> Path:
    """The cached directory holding the store of ``n`` traces. The suites open the stores of
    up to ``SHARED_MAX`` traces side by side, in one directory (chdb opens one per process); a
    larger one has a directory of its own, so a run that does not read it never copies it."""
    base = f"chdb-{fingerprint()}"
    return _stores.cache_dir() / (base if n <= SHARED_MAX else f"{base}-{n}")


def _done(directory: Path, n: int) -> Path:
    return directory / f"t{n}.done"


def ensure_chdb_stores(sizes: list[int]) -> dict[int, dict[str, Any]]:
    """Build the missing stores of these sizes; returns {size: what its build recorded:
    seconds (writing), merge_seconds, bytes, traces}."""
    for target in sorted({cache_path(n) for n in sizes}):
        with _stores.build_lock(target):
            missing = [
                n for n in sizes if cache_path(n) == target and not _done(target, n).exists()
            ]
            if missing:
                progress(f"[stores] chdb: building {', '.join(f'{n:,}' for n in missing)} traces")
                in_fresh_process(_build, str(target), missing)
    return {n: json.loads(_done(cache_path(n), n).read_text()) for n in sizes}


def copy_chdb_stores(directory: Path, n: int, *, linked: bool = False) -> str:
    """A private copy of the cached chdb directory of size ``n`` in ``directory``; its URL.

    ``linked``: the data files are hard links to the cache's (instant, no space): for a caller
    that only reads. ClickHouse never changes a part's files in place, but a merge or a
    mutation in the copy would still leave the cache alone only as long as it writes new
    parts, so a writer takes a real copy."""
    dest = Path(directory) / ("chdb" if n <= SHARED_MAX else f"chdb-{n}")
    if not dest.exists():
        # an Atomic database's metadata/<db> is a (relative) symlink into store/: keep it one
        shutil.copytree(
            cache_path(n), dest, symlinks=True, ignore=shutil.ignore_patterns("*.done", "*.lock"),
            copy_function=os.link if linked else shutil.copy2,
        )  # fmt: skip
    return f"chdb://{dest}?database=t{n}"


class _ArrowSpans:
    """The spans of a batch as an Arrow table (what ``SpanRows.to_arrow`` gives the writer)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __len__(self) -> int:
        return self.table.num_rows

    def to_arrow(self) -> pa.Table:
        return self.table


def batches(chunk: dict[str, pa.Table]) -> Any:
    """The chunk's traces as WriteBatches of ``BATCH`` traces."""
    from traceduck.store._records import SPAN_SCHEMA, TraceRow, WriteBatch

    traces = chunk["traces"]
    spans = chunk["spans"].select(SPAN_SCHEMA.names).cast(SPAN_SCHEMA)
    for start in range(0, traces.num_rows, BATCH):
        part = traces.slice(start, BATCH).to_pylist()
        ids = pa.array([r["trace_id"] for r in part])
        rows = [_row(TraceRow, r) for r in part]
        mine = spans.filter(pc.is_in(spans.column("trace_id"), value_set=ids))
        yield WriteBatch(_ArrowSpans(mine), rows)


def _row(trace_row: Any, r: dict[str, Any]) -> Any:
    """A generated trace as the writer's TraceRow: live tags, and metadata logged at its end."""
    metadata = [(k, v, r["end_time_ns"]) for k, v in json.loads(r["metadata"]).items()]
    return trace_row(
        r["trace_id"], r["name"], r["status"], r["status_message"], r["start_time_ns"],
        r["end_time_ns"], r["span_count"], r["service_name"], r["root_span_id"], True, True,
        r["request_preview"], r["response_preview"], tags=json.loads(r["tags"]),
        metadata=metadata,
    )  # fmt: skip


def write_chunk(conn: Any, chunk: dict[str, pa.Table]) -> None:
    """Insert the rows the batch writer makes of ``chunk`` (see the module docstring): its
    spans, then tag events and metadata, then the trace rows (the writer's order), each table
    in one insert. The chunk's first trace starts a batch."""
    from traceduck._constants import DEFAULT_EXPERIMENT, DEFAULT_EXPERIMENT_ID
    from traceduck.store._records import SPAN_SCHEMA
    from traceduck.store.clickhouse._clock import stamp
    from traceduck.store.clickhouse._events import METADATA_SCHEMA, TAG_EVENT_SCHEMA
    from traceduck.store.clickhouse._writer import TRACE_SCHEMA

    traces = chunk["traces"]
    n = traces.num_rows
    stamps = [stamp() for _ in range(0, n, BATCH)]  # one per batch, in the batch's order
    trace_batch = np.arange(n) // BATCH
    place = np.arange(n) % BATCH  # the trace's place in its batch

    def stamped(per_trace: int) -> dict[str, pa.Array]:
        """version, edit_id, seq of ``per_trace`` rows a trace, laid out key by key (the
        generator's order: every trace's first key, then every trace's second...)."""
        batch = np.tile(trace_batch, per_trace)
        seq = np.concatenate([place * per_trace + k for k in range(per_trace)])
        return {
            "version": pa.array(np.array([s.version for s in stamps], np.uint64)[batch]),
            "edit_id": pa.array(np.array([s.edit_id for s in stamps], np.uint64)[batch]),
            "seq": pa.array(seq.astype(np.uint32)),
            "batch": batch,
        }

    spans = chunk["spans"].select(SPAN_SCHEMA.names).cast(SPAN_SCHEMA)
    conn.insert_arrow("spans", spans)

    events = chunk["tag_events"]  # key by key, as TAG_KEYS
    m = events.num_rows
    assert m == len(TAG_KEYS) * n, "the generator's tags changed: update TAG_KEYS"
    order = stamped(len(TAG_KEYS))
    is_number = pa.array(np.repeat([key == "cost" for key in TAG_KEYS], n))
    new_value = events.column("new_value")
    text = pc.utf8_slice_codeunits(new_value, 1, -1)  # the string values, unquoted
    number = pc.cast(pc.if_else(is_number, new_value, pa.scalar("0")), pa.float64())
    stamp_ts = pa.array([s.ts for s in stamps], pa.timestamp("us", tz="UTC"))
    tag_rows = {
        "trace_id": events.column("trace_id"),
        "key": events.column("key"),
        "version": order["version"],
        "edit_id": order["edit_id"],
        "seq": order["seq"],
        "kind": pa.repeat("event", m),
        "ts": pc.take(stamp_ts, pa.array(order["batch"])),
        "operation": events.column("operation"),
        "source": events.column("source"),
        "old_value": events.column("old_value"),
        "new_value": new_value,
        "value_type": pc.if_else(is_number, pa.scalar("number"), pa.scalar("string")),
        "value_str": pc.if_else(is_number, pa.scalar(""), text),
        "value_num": number,
        "value_bool": pa.repeat(False, m),
        "claim_scope": pa.repeat("", m),
    }
    conn.insert_arrow("td_tag_events", pa.table(tag_rows, schema=TAG_EVENT_SCHEMA))

    entries = chunk["trace_metadata"]  # key by key, as METADATA_KEYS; ts = the trace's end
    assert entries.num_rows == len(METADATA_KEYS) * n, "update METADATA_KEYS"
    order = stamped(len(METADATA_KEYS))
    metadata_rows = {
        "trace_id": entries.column("trace_id"),
        "key": entries.column("key"),
        "version": order["version"],
        "edit_id": order["edit_id"],
        "seq": order["seq"],
        "ts": entries.column("ts").cast(pa.timestamp("us", tz="UTC")),
        "value": entries.column("value"),
        "source": entries.column("source"),
    }
    conn.insert_arrow("td_metadata", pa.table(metadata_rows, schema=METADATA_SCHEMA))

    columns = {name: traces.column(name) for name in traces.column_names}
    columns["experiment_id"] = pa.repeat(DEFAULT_EXPERIMENT_ID, n)
    columns["experiment"] = pa.repeat(DEFAULT_EXPERIMENT, n)
    columns["version"] = stamped(1)["version"]
    rows = pa.table({name: columns[name] for name in TRACE_SCHEMA.names})
    conn.insert_arrow("td_traces", rows.cast(TRACE_SCHEMA))


def fill(conn: Any, n: int, label: str = "") -> None:
    """Write the ``n`` generated traces of a store of ``n`` into the empty store ``conn``; the
    next chunk is generated on a second thread while chdb inserts this one."""
    if n > _stores.CHUNK and _stores.CHUNK % BATCH:
        raise ValueError(f"a chunk of {_stores.CHUNK:,} traces is not whole batches of {BATCH:,}")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-generate") as pool:

        def submit(first: int) -> Future[dict[str, pa.Table]]:
            return pool.submit(_stores.generate_chunk, first, min(_stores.CHUNK, n - first), n)

        pending = submit(0)
        for first in range(0, n, _stores.CHUNK):
            chunk = pending.result()
            if first + _stores.CHUNK < n:
                pending = submit(first + _stores.CHUNK)
            write_chunk(conn, chunk)
            del chunk
            done = min(first + _stores.CHUNK, n)
            if label and (done == n or (done // _stores.CHUNK) % 10 == 0):
                took = time.perf_counter() - started
                progress(f"[stores] chdb {label}: {done:,}/{n:,} traces, {took:.0f} s")


def _build(directory: str, sizes: list[int]) -> None:
    """In a fresh process: write each store of ``sizes`` into ``directory`` (database t<N>)."""
    from traceduck import TraceStore
    from traceduck.store._names import parse_store_name
    from traceduck.store.clickhouse._client import connect

    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        url = f"chdb://{base}?database=t{n}"
        raw = connect(parse_store_name(url))
        raw.command(f"DROP DATABASE IF EXISTS t{n}")  # a build cut short starts over
        raw.command(f"CREATE DATABASE t{n}")
        store = TraceStore(url)
        conn = store.conn  # (migrated: the schema is the engine's)
        started = time.perf_counter()
        fill(conn, n, f"t{n}")
        took = time.perf_counter() - started
        merged = time.perf_counter()
        for table in ("td_traces", "spans", "td_tag_events", "td_metadata"):
            store.conn.command(f"OPTIMIZE TABLE t{n}.{table} FINAL")  # merged, as at rest
        merge = time.perf_counter() - merged
        count = store.count_traces()
        if count != n:
            raise RuntimeError(f"chdb store t{n} holds {count:,} traces, not {n:,}")
        size = _database_bytes(conn, f"t{n}")
        _done(base, n).write_text(
            json.dumps({"seconds": round(took, 1), "merge_seconds": round(merge, 1),
                        "bytes": size, "traces": n})
        )  # fmt: skip
        progress(
            f"[stores] chdb t{n}: {n:,} traces written in {took:.0f} s, merged in {merge:.0f} s "
            f"({size / 1e9:.2f} GB on disk)"
        )


def _database_bytes(conn: Any, database: str) -> int:
    rows = conn.query(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {d:String} AND active",
        {"d": database},
    )
    return int(rows[0][0] or 0)
