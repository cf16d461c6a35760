"""Stores on both engines for the conformance tests (Ibis's backend suite is the model).

``ENGINES`` parametrises a fixture; ``new_store_name(engine, tmp)`` names a fresh, empty store
of that engine. chdb runs one directory per process, so every chdb store of the test session
is a database in one directory (``chdb:///dir?database=sN``): its engine starts once (~0.4 s).
A test that talks HTTP to a real ClickHouse server runs when TRACEDUCK_TEST_CLICKHOUSE_URL is
set (e.g. clickhouse://default:@localhost:8123/traceduck_test).
"""

from __future__ import annotations

import atexit
import importlib.util
import itertools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

HAVE_CHDB = (
    importlib.util.find_spec("chdb") is not None
    and importlib.util.find_spec("clickhouse_connect") is not None
)
ENGINES = ["duckdb", "chdb"]
SERVER_URL = os.environ.get("TRACEDUCK_TEST_CLICKHOUSE_URL", "")

_chdb_dir: list[str] = []
_counter = itertools.count(1)


def chdb_dir() -> str:
    """The one chdb directory of this test process."""
    if not _chdb_dir:
        path = tempfile.mkdtemp(prefix="traceduck-chdb-")
        _chdb_dir.append(path)
        atexit.register(shutil.rmtree, path, True)
    return _chdb_dir[0]


def new_store_name(engine: str, tmp: Path | str) -> str:
    """A fresh, empty store's name on ``engine``."""
    if engine == "duckdb":
        return str(Path(tmp) / f"store{next(_counter)}.duckdb")
    if engine == "chdb":
        return f"chdb://{chdb_dir()}?database=s{os.getpid()}_{next(_counter)}"
    raise ValueError(engine)


def write_rows(store: Any, traces: list[Any]) -> None:
    """Write querytest-style TraceRows (tests/query/querytest_data.py) through the store's own
    batch writer."""
    import json

    from traceduck.store._records import SpanRows, TraceRow, WriteBatch

    spans = SpanRows()
    rows = []
    for t in traces:
        start = t.timestamp_ms * 1_000_000
        for i, s in enumerate(t.spans):
            spans.append((
                t.trace_id, f"{i:016x}", None if i == 0 else f"{0:016x}", s.name, s.type,
                s.status, None, start, start + int(s.duration_ms * 1e6), s.duration_ms,
                "INTERNAL", t.service_name, json.dumps(s.attributes), None, None, None,
            ))  # fmt: skip
        rows.append(
            TraceRow(
                t.trace_id,
                t.name,
                t.status,
                None,
                start,
                start + round(t.execution_time_ms * 1e6),
                t.span_count,
                t.service_name,
                f"{0:016x}",
                True,
                True,
                tags=dict(t.tags or {}),
                metadata=[(k, v, 0) for k, v in (t.metadata or {}).items()],
            )
        )
    store.write_batch(WriteBatch(spans, rows))


def write_traces(store: Any, specs: list[tuple[str, dict[str, Any], dict[str, str]]]) -> list[str]:
    """Write one batch of one-span traces ``(name, tags, exclusive scopes)``, ending in the
    order given; their ids."""
    import secrets
    import time

    from traceduck.store._records import SpanRows, TraceRow, WriteBatch

    spans = SpanRows()
    rows = []
    ids = []
    now = time.time_ns()
    for i, (name, tags, exclusive) in enumerate(specs):
        tid, sid = secrets.token_hex(16), secrets.token_hex(8)
        start, end = now + i * 1000, now + i * 1000 + 500
        spans.append((tid, sid, None, name, "UNKNOWN", "OK", None, start, end, 0.0005,
                      "INTERNAL", "svc", "{}", None, None, None))  # fmt: skip
        rows.append(TraceRow(tid, name, "OK", None, start, end, 1, "svc", sid, True, True,
                             tags=dict(tags), exclusive=dict(exclusive)))  # fmt: skip
        ids.append(tid)
    store.write_batch(WriteBatch(spans, rows))
    return ids


def write_trace(store: Any, name: str, tags: dict[str, Any]) -> str:
    return write_traces(store, [(name, tags, {})])[0]
