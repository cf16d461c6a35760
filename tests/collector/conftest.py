"""Fixtures for the collector tests: a real collector on 127.0.0.1 port 0 over a fresh store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from traceduck.collector import Collector

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "collected.duckdb")


@pytest.fixture
def collector(db: str) -> Iterator[Collector]:
    """An in-process collector (HTTP and gRPC on free ports) that answers once spans are
    written, stopped after the test."""
    c = Collector(db, http_port=0, grpc_port=0, ack="written").start()
    try:
        yield c
    finally:
        c.stop()


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python process that imports this checkout's traceduck."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACEDUCK_"))}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_python(code: str, *, timeout: float = 60, **env: str) -> str:
    """Run ``code`` in a fresh interpreter; its stdout (fails the test on a non-zero exit)."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
