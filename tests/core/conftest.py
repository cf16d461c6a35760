"""Fixtures for the tracing-core tests: every test traces into its own DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import context as otel_context

import traceduck as td


@pytest.fixture(autouse=True)
def db_path(tmp_path: Path) -> Iterator[str]:
    """Configure traceduck to write into a fresh file in ``tmp_path``; stop it afterwards."""
    path = str(tmp_path / "t.duckdb")
    before = otel_context.get_current()
    td.configure(db=path)
    yield path
    td.shutdown()
    if otel_context.get_current() is not before:
        # A test that left a span attached (a bug it reports) must not spill into the next one.
        otel_context.attach(before)
