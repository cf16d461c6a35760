"""Golden filters: every field, alias, operator and rule of DESIGN.md's filter language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import select_ids
from querytest_data import tid

from traceduck.errors import FilterError
from traceduck.query import compile_filter, explain, search

FIXTURES = Path(__file__).parent / "fixtures"


def _lines(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        filter_text, expected = line.rsplit(" => ", 1)
        rows.append((filter_text, expected.strip()))
    return rows


VALID = _lines("valid_filters.txt")
INVALID = _lines("invalid_filters.txt")


def _numbers(expected: str) -> list[str]:
    return [] if expected == "-" else sorted(tid(int(n)) for n in expected.split())


@pytest.mark.parametrize(("filter_text", "expected"), VALID, ids=[f for f, _ in VALID])
def test_valid_filter_matches(con: Any, filter_text: str, expected: str) -> None:
    ids, token = search(con, filter_text, max_results=None)
    assert sorted(ids) == _numbers(expected)
    assert token is None
    # The bare WHERE expression the rest of the package uses selects the same traces.
    where, params = compile_filter(filter_text, con)
    assert sorted(select_ids(con, where, params)) == _numbers(expected)


@pytest.mark.parametrize(("filter_text", "expected"), INVALID, ids=[f for f, _ in INVALID])
def test_invalid_filter_is_a_filter_error_at_its_position(
    con: Any, filter_text: str, expected: str
) -> None:
    position, _, fragment = expected.partition(" | ")
    for call in (
        lambda: search(con, filter_text),
        lambda: compile_filter(filter_text, con),
        lambda: explain(con, filter_text),
    ):
        with pytest.raises(FilterError) as info:
            call()
        err = info.value
        assert err.position == int(position), str(err)
        assert fragment.strip() in err.message, str(err)
        assert err.filter == filter_text
        # The rendered message shows the filter and a caret under the position.
        lines = str(err).splitlines()
        assert lines[-2] == "  " + filter_text
        assert lines[-1] == "  " + " " * int(position) + "^"


def test_empty_and_none_filters_match_everything(con: Any) -> None:
    for empty in (None, "", "   \n\t"):
        where, params = compile_filter(empty, con)
        assert (where, list(params)) == ("TRUE", [])
    everything = sorted(tid(n) for n in range(1, 13))
    for empty in (None, "", "  "):
        ids, _ = search(con, empty, max_results=None)
        assert sorted(ids) == everything


def test_fixtures_cover_every_field_and_operator() -> None:
    """Guard against the golden files silently losing coverage."""
    text = "\n".join(f for f, _ in VALID)
    for word in (
        "trace_id", "request_id", "name", "status", "timestamp_ms", "timestamp ",
        "execution_time_ms", "execution_time ", "span_count", "service_name", "tags.", "tag.",
        "`tags`", "metadata.", "request_metadata.", "trace.", "attributes.", "attribute.",
        "span.name", "span.type", "span.status", "span.execution_time_ms", "span.attributes.",
        " LIKE ", " ILIKE ", " RLIKE ", " CONTAINS ", " STARTSWITH ", " ENDSWITH ", " IN (",
        " NOT IN (", " IS NULL", " IS NOT NULL", " != ", " <> ", " < ", " <= ", " > ", " >= ",
        " OR ", " AND ", "NOT ", "= null", "= true",
    ):  # fmt: skip
        assert word in text, word
