"""Fixtures for the tag and metadata tests: every test traces into its own DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _support import PYTHON, SRC, child_env, last_trace, traced_into  # noqa: F401 - shared


@pytest.fixture(autouse=True)
def db_path(tmp_path: Path) -> Iterator[str]:
    """Configure traceduck to write into a fresh file in ``tmp_path``; stop it afterwards."""
    yield from traced_into(tmp_path)
