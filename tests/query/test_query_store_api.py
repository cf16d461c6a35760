"""TraceStore's counting and explaining of a search agree with the search itself and with the
fixed dataset."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from querytest_data import TRACES, TraceRow

from traceduck import TraceStore
from traceduck.errors import FilterError

FILTERS: dict[str | None, Callable[[TraceRow], bool]] = {
    None: lambda t: True,
    "status = 'ERROR'": lambda t: t.status == "ERROR",
    "tags.env = 'prod' AND execution_time_ms > 100": (
        lambda t: (t.tags or {}).get("env") == "prod" and t.execution_time_ms > 100
    ),
}


@pytest.fixture(scope="module")
def store(fixed_store: TraceStore) -> TraceStore:
    """The fixed dataset through the public store API, on each engine."""
    return fixed_store


@pytest.mark.parametrize("filter_string", FILTERS)
def test_count_traces_is_the_number_of_matches(
    store: TraceStore, filter_string: str | None
) -> None:
    expected = sum(1 for t in TRACES if FILTERS[filter_string](t))
    assert expected > 0
    assert store.count_traces(filter_string) == expected
    assert len(store.search_traces(filter_string, max_results=None)) == expected


@pytest.mark.parametrize("filter_string", FILTERS)
def test_explained_sql_returns_the_ids_of_the_search(
    store: TraceStore, filter_string: str | None
) -> None:
    query, params = store.explain_search(filter_string, "execution_time_ms DESC", max_results=3)
    assert "'prod'" not in query  # values are bound parameters, never pasted
    rows = store.sql(query, params).to_pylist()
    shown = [
        t.info.trace_id for t in store.search_traces(filter_string, "execution_time_ms DESC", 3)
    ]
    assert [r["trace_id"] for r in rows][:3] == shown


def test_count_of_a_bad_filter_is_a_filter_error(store: TraceStore) -> None:
    with pytest.raises(FilterError, match="did you mean"):
        store.count_traces("tags.env = 'prod' AND execution_tim > 3")
