"""Fixtures for the tag and metadata tests: every test traces into its own DuckDB file."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import context as otel_context

import traceduck as td

SRC = str(Path(__file__).resolve().parents[2] / "src")
PYTHON = sys.executable


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


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python that imports traceduck from this checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRACEDUCK_", "OTEL_", "GIT_")) and k != "PYTHONPATH"
    }
    env["PYTHONPATH"] = SRC
    env.update(extra)
    return env


def last_trace() -> td.Trace:
    assert td.flush(timeout_s=10), td.stats()
    trace_id = td.get_last_trace_id()
    assert trace_id is not None
    return td.get_trace(trace_id)
