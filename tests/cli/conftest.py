"""Fixtures for the CLI tests: a store filled by real tracing, copied fresh for each test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from opentelemetry import context as otel_context

import traceduck as td
from traceduck._store._connection import get_database

from ._helpers import REQUESTS


@td.trace(span_type="RETRIEVER")
def retrieve(question: str) -> list[str]:
    return [f"doc about {question}"]


@td.trace(span_type="CHAIN")
def answer(question: str, env: str, cost: float, fails: bool) -> str:
    td.update_current_trace(tags={"env": env, "cost": cost}, metadata={"user": f"u-{env}"})
    docs = retrieve(question)
    if fails:
        raise TimeoutError("the model did not answer in time")
    return docs[0]


@td.trace(name="ingest")
def ingest(n: int) -> int:
    return n * 2


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store with len(REQUESTS) 'answer' traces and 2 'ingest' traces, made by tracing."""
    path = str(tmp_path_factory.mktemp("cli-template") / "seed.duckdb")
    before = otel_context.get_current()
    td.configure(db=path, auto_context=False)
    for question, env, cost, fails in REQUESTS:
        try:
            answer(question, env, cost, fails)
        except TimeoutError:
            pass
    ingest(1)
    ingest(2)
    assert td.flush(timeout_s=30)
    td.shutdown()
    if otel_context.get_current() is not before:
        otel_context.attach(before)
    get_database(path).close()  # checkpointed and closed, so the file can be copied
    return path


@pytest.fixture
def db(template_db: str, tmp_path: Path) -> str:
    """A private copy of the seeded store for one test."""
    path = str(tmp_path / "store.duckdb")
    shutil.copyfile(template_db, path)
    return path
