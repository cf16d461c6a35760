"""Malformed input never escapes as anything but FilterError (or a result)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traceduck.errors import FilterError
from traceduck.query import compile_filter, search

SETTINGS = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = [
    line.rsplit(" => ", 1)[0]
    for name in ("valid_filters.txt", "invalid_filters.txt")
    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
]
# Characters that matter to the tokenizer, plus a few that do not.
INTERESTING = [
    *"'\"`\\.,()=!<>~&|;%_ \t\n-+eE0123456789",
    "AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "RLIKE", "tags.", "span.", "metadata.",
    "\x00", "λ", "\ud800", "(" * 70, "NOT " * 70, "9" * 30, "1e999", "''", "``",
]  # fmt: skip


def _run(con: duckdb.DuckDBPyConnection, text: str) -> None:
    """Both entry points: a result or a FilterError with a sane position, nothing else."""
    for call in (lambda: search(con, text, max_results=5), lambda: compile_filter(text, con)):
        try:
            call()
        except FilterError as err:
            assert err.position is None or 0 <= err.position <= len(text)
            assert str(err)


@SETTINGS
@given(text=st.text(max_size=60))
def test_random_text(con: duckdb.DuckDBPyConnection, text: str) -> None:
    _run(con, text)


@SETTINGS
@given(parts=st.lists(st.sampled_from(INTERESTING + SEEDS[:40]), max_size=12))
def test_random_token_soup(con: duckdb.DuckDBPyConnection, parts: list[str]) -> None:
    _run(con, " ".join(parts))
    _run(con, "".join(parts))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 4)))
        how = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        piece = draw(st.sampled_from(INTERESTING))
        if how == "delete":
            text = text[:i] + text[j:]
        elif how == "insert":
            text = text[:i] + piece + text[i:]
        elif how == "replace":
            text = text[:i] + piece + text[j:]
        else:
            text = text[:j] + text[i:j] + text[j:]
    return text


@SETTINGS
@given(text=mutated())
def test_mutated_valid_filters(con: duckdb.DuckDBPyConnection, text: str) -> None:
    _run(con, text)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 5000 + "status = 'OK'" + ")" * 5000,
        "NOT " * 5000 + "status = 'OK'",
        " OR ".join(["status = 'OK'"] * 2000),
        "tags.x IN (" + ", ".join(["1"] * 5000) + ")",
        "tags.x = " + "9" * 5000,
        "tags.x = '" + "a" * 200_000 + "'",
        "status = 'OK' AND tags.`\x00` = '\x00'",
        "tags.k = '\ud800'",
    ],
    ids=[
        "deep-parens",
        "deep-not",
        "long-or",
        "long-in",
        "long-number",
        "huge",
        "nul",
        "surrogate",
    ],
)
def test_pathological_inputs(con: duckdb.DuckDBPyConnection, text: str) -> None:
    _run(con, text)


@pytest.mark.parametrize("value", [3, b"status = 'OK'", ["status = 'OK'"], object()])
def test_non_string_filters_are_filter_errors(
    con: duckdb.DuckDBPyConnection, value: object
) -> None:
    with pytest.raises(FilterError, match="must be a string"):
        search(con, value)  # type: ignore[arg-type]
    with pytest.raises(FilterError, match="must be a string"):
        compile_filter(value, con)  # type: ignore[arg-type]
