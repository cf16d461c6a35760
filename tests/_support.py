"""What every test folder needs to start a child Python on this checkout's traceduck."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SRC = str(Path(__file__).resolve().parents[1] / "src")
PYTHON = sys.executable


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python that imports traceduck from this checkout, without
    the parent's traceduck, OpenTelemetry and git settings (so the child sees the defaults)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRACEDUCK_", "OTEL_", "GIT_")) and k != "PYTHONPATH"
    }
    env["PYTHONPATH"] = SRC
    env.update(extra)
    return env


def traced_into(tmp_path: Path) -> Iterator[str]:
    """Body of the folders' autouse ``db_path`` fixtures: traceduck writes into a fresh file in
    ``tmp_path`` for one test and is stopped afterwards."""
    from opentelemetry import context as otel_context

    import traceduck as td
    from traceduck import _experiment

    path = str(tmp_path / "t.duckdb")
    before = otel_context.get_current()
    _experiment.forget()  # the experiment is chosen per process: each test starts in Default
    td.configure(db=path)
    yield path
    td.shutdown()
    _experiment.forget()
    if otel_context.get_current() is not before:
        # A test that left a span attached (a bug it reports) must not spill into the next one.
        otel_context.attach(before)


def last_trace() -> Any:
    """Flush, then read back the trace that finished last in this process."""
    import traceduck as td

    assert td.flush(timeout_s=10), td.stats()
    trace_id = td.get_last_trace_id()
    assert trace_id is not None
    return td.get_trace(trace_id)
