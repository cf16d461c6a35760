"""The generated stores (``_stores``) on ClickHouse: the same traces in a chdb directory.

    from suites._chdb_stores import ensure_chdb_stores, copy_chdb_stores
    ensure_chdb_stores([100_000, 1_000_000])   # build missing ones (in a fresh process)
    url = copy_chdb_stores(tmp_dir, 1_000_000)  # chdb://<copy>?database=t1000000

Every size is a database ``t<N>`` in one chdb directory, cached beside the DuckDB stores
(``$TRACEDUCK_BENCH_CACHE``), named with a fingerprint of the ClickHouse schema and of the
generator. The traces are ``_stores.generate_chunk``'s, written the way the exporter and the
collector write them: ``WriteBatch``es of 10,000 traces (their spans, live tags and metadata)
through the engine's batch writer, so the tag events, versions and metadata entries are the
engine's own. chdb runs one directory per process, and a directory cannot be copied while an
engine has it open: the build runs in a fresh process, and a suite opens a copy.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import _stores
from ._common import in_fresh_process, progress

BATCH = 5_000  # traces per write batch (10,000 hexadecimal ids as literals exceed max_query_size)


def fingerprint() -> str:
    from traceduck.store.clickhouse._schema import MIGRATIONS, SCHEMA_VERSION

    text = repr((SCHEMA_VERSION, _stores.GENERATOR_VERSION, sorted(MIGRATIONS.items()), BATCH))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def cache_path() -> Path:
    return _stores.cache_dir() / f"chdb-{fingerprint()}"


def _done(directory: Path, n: int) -> Path:
    return directory / f"t{n}.done"


def ensure_chdb_stores(sizes: list[int]) -> dict[int, float]:
    """Build the missing stores of these sizes; returns {size: build seconds} of each store
    (as recorded when it was built)."""
    target = cache_path()
    with _stores.build_lock(target):
        missing = [n for n in sizes if not _done(target, n).exists()]
        if missing:
            progress(f"[stores] chdb: building {', '.join(f'{n:,}' for n in missing)} traces")
            in_fresh_process(_build, str(target), missing)
    return {n: json.loads(_done(target, n).read_text())["seconds"] for n in sizes}


def copy_chdb_stores(directory: Path, n: int) -> str:
    """A private copy of the cached chdb directory in ``directory``; the URL of size ``n``."""
    dest = Path(directory) / "chdb"
    if not dest.exists():
        # an Atomic database's metadata/<db> is a (relative) symlink into store/: keep it one
        shutil.copytree(
            cache_path(), dest, symlinks=True, ignore=shutil.ignore_patterns("*.done", "*.lock")
        )
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
        started = time.perf_counter()
        for first in range(0, n, _stores.CHUNK):
            chunk = _stores.generate_chunk(first, min(_stores.CHUNK, n - first), n)
            for batch in batches(chunk):
                store.write_batch(batch)
            progress(f"[stores] chdb t{n}: {min(first + _stores.CHUNK, n):,}/{n:,} traces")
        took = time.perf_counter() - started
        for table in ("td_traces", "spans", "td_tag_events", "td_metadata"):
            store.conn.command(f"OPTIMIZE TABLE t{n}.{table} FINAL")  # merged, as at rest
        count = store.count_traces()
        if count != n:
            raise RuntimeError(f"chdb store t{n} holds {count:,} traces, not {n:,}")
        _done(base, n).write_text(json.dumps({"seconds": round(took, 1), "traces": n}))
        progress(f"[stores] chdb t{n}: {n:,} traces written in {took:.0f} s")
