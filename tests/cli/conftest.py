"""Fixtures for the CLI tests: a store filled by real tracing, copied fresh for each test.

``db`` is a DuckDB copy; ``engine_db`` is the same store on each engine (a chdb copy is the
DuckDB store exported and imported: tests/_engines.py), for the modules that run on both.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from opentelemetry import context as otel_context

import traceduck as td
from _engines import ENGINES, new_store_name
from traceduck.store.duckdb._databases import get_database

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


@pytest.fixture(scope="session")
def template_export(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The seeded store as an export file, to fill a store of another engine."""
    path = str(tmp_path_factory.mktemp("cli-template-export") / "seed.parquet")
    td.TraceStore(template_db, read_only=True).export_traces(path)
    return path


@pytest.fixture(params=ENGINES)
def engine_db(request: pytest.FixtureRequest, template_db: str, template_export: str,
              tmp_path: Path) -> str:  # fmt: skip
    """A private copy of the seeded store on each engine: a DuckDB path or a chdb URL."""
    if request.param == "duckdb":
        path = str(tmp_path / "store.duckdb")
        shutil.copyfile(template_db, path)
        return path
    name = new_store_name(request.param, tmp_path)
    td.TraceStore(name).import_traces(template_export)
    return name
