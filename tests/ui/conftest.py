"""Fixtures for the UI tests: a store written by real tracing, and the app on 127.0.0.1:0."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

if importlib.util.find_spec("traceduck") is None:  # not pip-installed: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/_engines.py

from ui_support import TOKEN
from uitest_data import build_store

from traceduck.ui import ServerThread, create_app


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh store per test module (the tests of a module may edit its tags)."""
    path = str(tmp_path_factory.mktemp("ui") / "ui.duckdb")
    build_store(path)
    return path


@pytest.fixture(scope="module")
def server(store_path: str) -> Iterator[ServerThread]:
    with ServerThread(create_app(store_path)) as running:
        yield running


@pytest.fixture(scope="module")
def token_server(store_path: str) -> Iterator[ServerThread]:
    with ServerThread(create_app(store_path, token=TOKEN)) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http
