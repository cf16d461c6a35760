"""Fixtures for the tag and metadata tests: every test traces into its own DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import context as otel_context

import traceduck as td
from _support import PYTHON, SRC, child_env  # noqa: F401 - shared by this folder's tests


@pytest.fixture(autouse=True)
def db_path(tmp_path: Path) -> Iterator[str]:
    """Configure traceduck to write into a fresh file in ``tmp_path``; stop it afterwards."""
    path = str(tmp_path / "t.duckdb")
    before = otel_context.get_current()
    td.configure(db=path)
    yield path
    td.shutdown()
    if otel_context.get_current() is not before:
        otel_context.attach(before)


def last_trace() -> td.Trace:
    assert td.flush(timeout_s=10), td.stats()
    trace_id = td.get_last_trace_id()
    assert trace_id is not None
    return td.get_trace(trace_id)
