"""The fixed dataset of the query tests, and how to write it into a store.

Twelve traces chosen to exercise every typing rule: tags of every JSON type, a tag key holding
both numbers and strings (``mixed``), dotted and odd keys, nested and flat-dotted metadata keys
that shadow each other, span attributes of several types, NULL service names, timestamp ties,
and values that look like SQL injection. Trace n has the id ``f"{n:02d}" * 16``; the golden
files name traces by n.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from traceduck.store.duckdb._schema import migrate

__all__ = ["TRACES", "SpanRow", "TraceRow", "build_store", "insert_traces", "tid"]


def tid(n: int) -> str:
    """The trace id of trace number n (32 hex characters)."""
    return f"{n:02d}" * 16


@dataclass
class SpanRow:
    name: str
    type: str = "UNKNOWN"
    status: str = "OK"
    duration_ms: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class TraceRow:
    n: int
    name: str | None
    status: str
    timestamp_ms: int
    execution_time_ms: float
    service_name: str | None
    tags: dict[str, Any] | None
    metadata: dict[str, Any] | None
    spans: list[SpanRow]
    trace_id: str = ""

    def __post_init__(self) -> None:
        if not self.trace_id:
            self.trace_id = tid(self.n)

    @property
    def span_count(self) -> int:
        return len(self.spans)


TRACES: list[TraceRow] = [
    TraceRow(
        1, "chat", "OK", 1000, 120.5, "api",
        {"env": "prod", "cost": 3.2, "model.version": "v1.2", "reviewed": True,
         "flags": ["a", "b"], "user": "alice"},
        {"user": "u1", "eval": {"accuracy": 0.93, "judge": "gpt"}, "mlflow.sourceRun": "run1",
         "context": {"git": {"commit": "b3faf93aa1c2", "branch": "main"}}},
        [SpanRow("chat", "CHAIN", "OK", 120.5),
         SpanRow("llm", "LLM", "OK", 80.0,
                 {"temperature": 0.7, "model": "gpt-4", "traceduck.tag.tenant": "acme"}),
         SpanRow("search", "RETRIEVER", "OK", 20.0, {"k": 5})],
    ),
    TraceRow(
        2, "chat", "ERROR", 2000, 900.0, "api",
        {"env": "dev", "cost": 10, "user": "bob", "flags": ["b"]},
        {"user": "u2", "eval": {"accuracy": 0.5}},
        [SpanRow("chat", "CHAIN", "ERROR", 900.0),
         SpanRow("llm", "LLM", "ERROR", 850.0, {"temperature": 1.0, "model": "gpt-3.5"})],
    ),
    TraceRow(
        3, "embed", "OK", 3000, 45.0, "worker",
        {"env": "prod", "cost": "cheap", "note": "can't stop", "regex": "v1.2.3"},
        {"a.b": "flat", "a": {"b": "nested"}},
        [SpanRow("embed", "TOOL", "OK", 45.0)],
    ),
    TraceRow(
        4, "retrieve", "OK", 4000, 600.0, None,
        {"env": "staging", "cost": 0, "weird key": "x", "http://x/y": "slash", "tilde~0": "t"},
        {"a": {"b": "only-nested", "c": [1, 2]}},
        [SpanRow("retrieve", "RETRIEVER", "OK", 600.0),
         SpanRow("llm", "LLM", "OK", 500.0, {"temperature": 0.2, "model": "gpt-4"})],
    ),
    TraceRow(
        5, "chat", "ERROR", 5000, 30.0, "api",
        {"env": None, "cost": -2.5, "reviewed": False},
        {"user": "u1"},
        [SpanRow("chat", "CHAIN", "OK", 30.0),
         SpanRow("tool", "TOOL", "ERROR", 10.0, {"retries": 3})],
    ),
    TraceRow(
        6, "batch", "OK", 6000, 2500.0, "worker",
        {},
        None,
        [SpanRow("batch", "CHAIN", "OK", 2500.0),
         SpanRow("llm", "LLM", "OK", 100.0, {"temperature": 0.7, "model": "gpt-4"}),
         SpanRow("llm", "LLM", "ERROR", 50.0, {"temperature": 0.9})],
    ),
    TraceRow(
        7, "chat", "OK", 7000, 75.0, "api",
        {"env": "prod", "cost": 7, "ids": [1, 2, 3], "obj": {"k": "v"}, "user": "Alice"},
        {"eval": {"accuracy": 0.75}, "score": 7},
        [SpanRow("chat", "UNKNOWN", "OK", 75.0)],
    ),
    TraceRow(
        8, "chat", "OK", 7000, 75.0, "api",
        {"env": "prod", "cost": 7.0, "ids": [3, "3"]},
        {"eval": {"accuracy": "0.75"}, "score": "high"},
        [SpanRow("chat", "CHAIN", "OK", 75.0, {"flag": True})],
    ),
    TraceRow(
        9, "O'Brien", "OK", 9000, 10.0, "api",
        {"injection": "'; DROP TABLE traces; --", "reviewed": True, "mixed": 5},
        {"user": "u'1", 'weird"key': 1},
        [SpanRow("O'Brien", "CHAIN", "OK", 10.0, {"quote'key": "v"})],
    ),
    TraceRow(
        10, "chat", "ERROR", 10000, 1500.0, "api",
        {"env": "PROD", "cost": 3, "mixed": "five", "label": "λx"},
        {"eval": {"accuracy": 0.99}},
        [SpanRow("chat", "CHAIN", "ERROR", 1500.0),
         SpanRow("llm", "LLM", "OK", 1400.0, {"temperature": 0.7, "model": "claude"})],
    ),
    TraceRow(
        11, "chat", "OK", 11000, 5.0, "api",
        {"env": "prod", "path": "C:\\temp\\x", "pct": "50%", "under": "a_b"},
        {},
        [SpanRow("chat", "CHAIN", "OK", 5.0)],
    ),
    TraceRow(
        12, "noop", "OK", 12000, 0.0, "api",
        None,
        {"mlflow.sourceRun": "run2", "mlflow": {"sourceRun": "shadowed"}},
        [SpanRow("noop", "CHAIN", "OK", 0.0)],
    ),
]  # fmt: skip


def insert_traces(con: duckdb.DuckDBPyConnection, traces: list[TraceRow]) -> None:
    """Insert trace and span rows directly (the tests need no writer), one statement each:
    DuckDB's executemany runs row by row and would dominate the test time."""
    trace_rows = [
        [
            t.trace_id, t.name, t.status, t.timestamp_ms, t.execution_time_ms, t.span_count,
            t.service_name,
            None if t.tags is None else json.dumps(t.tags),
            None if t.metadata is None else json.dumps(t.metadata),
        ]
        for t in traces
    ]  # fmt: skip
    _insert(
        con,
        "traces (trace_id, name, status, timestamp_ms, execution_time_ms, span_count, "
        "service_name, tags, metadata)",
        trace_rows,
    )
    span_rows = [
        [
            t.trace_id, f"{i:016x}", None if i == 0 else f"{0:016x}", s.name, s.type, s.status,
            s.duration_ms, json.dumps(s.attributes),
        ]
        for t in traces
        for i, s in enumerate(t.spans)
    ]  # fmt: skip
    _insert(
        con,
        "spans (trace_id, span_id, parent_id, name, span_type, status, duration_ms, attributes)",
        span_rows,
    )


def _insert(con: duckdb.DuckDBPyConnection, target: str, rows: list[list[Any]]) -> None:
    if not rows:
        return
    holes = "(" + ", ".join("?" for _ in rows[0]) + ")"
    values = ", ".join(holes for _ in rows)
    con.execute(f"INSERT INTO {target} VALUES {values}", [v for row in rows for v in row])


def build_store(con: duckdb.DuckDBPyConnection, traces: list[TraceRow]) -> None:
    """Create the schema and write ``traces``."""
    migrate(con)
    insert_traces(con, traces)
