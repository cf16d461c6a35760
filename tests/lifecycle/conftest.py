"""Fixtures for the lifecycle tests (delete, compaction, retention): a fresh store per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _support import traced_into


@pytest.fixture(autouse=True)
def db_path(tmp_path: Path) -> Iterator[str]:
    """traceduck writes into a fresh file in ``tmp_path`` for one test, stopped afterwards."""
    yield from traced_into(tmp_path)
