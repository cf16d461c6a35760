"""TraceStore's counting and explaining of a search agree with the search itself and with the
fixed dataset."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import chdb_fixed_store
from querytest_data import TRACES, TraceRow, tid

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


# -- type probes of tag predicates under OR, settled by the page's tags --------------------------
def _ids_of(result: object) -> list[str]:
    if hasattr(result, "column"):  # an Arrow table
        return [str(x) for x in result.column("trace_id").to_pylist()]
    return [t.info.trace_id for t in result]


SEARCHES: dict[str, Callable[[TraceStore, str], object]] = {
    "list": lambda store, text: store.search_traces(text, max_results=5),
    "arrow page": lambda store, text: store.search_traces(text, max_results=5, return_type="arrow"),
    "every match": lambda store, text: store.search_traces(
        text, max_results=None, return_type="arrow"
    ),
}


@pytest.mark.parametrize("how", SEARCHES)
def test_a_mismatch_under_or_is_an_error_though_the_page_has_rows(
    store: TraceStore, how: str
) -> None:
    """The page (the ERROR traces) shows only a boolean `reviewed`: the probe of `reviewed =
    'yes'` still runs and reports the key's type, not the page."""
    text = "status = 'ERROR' OR tags.reviewed = 'yes'"
    with pytest.raises(FilterError, match=r"tags\.reviewed holds booleans") as err:
        SEARCHES[how](store, text)
    assert err.value.position == text.index("'yes'")
    # the first mismatch in source order, also when a later predicate's is proved by the page
    text = "tags.user = 1 OR tags.reviewed = 'yes' OR tags.cost > 5"
    with pytest.raises(FilterError, match=r"tags\.user holds strings: write tags\.user = '1'"):
        SEARCHES[how](store, text)


@pytest.mark.parametrize("how", SEARCHES)
def test_a_type_held_only_off_the_page_is_no_mismatch(store: TraceStore, how: str) -> None:
    """`cost` holds numbers and, on trace 3 (not an ERROR trace), a string: `cost = 'x'` under
    OR is a question with no match, not an error, though the page shows only numbers."""
    found = _ids_of(SEARCHES[how](store, "status = 'ERROR' OR tags.cost = 'x'"))
    assert sorted(found) == [tid(2), tid(5), tid(10)]


def _statements_of(search: str) -> tuple[list[str], list[str]]:
    """(trace ids found, statements sent) of ``search`` on the fixed chdb store."""
    store = chdb_fixed_store()
    conn = store.conn
    sent: list[str] = []
    query = conn.query

    def counted(sql: str, *args: object, **kwargs: object) -> object:
        sent.append(sql)
        return query(sql, *args, **kwargs)

    conn.query = counted  # the same engine underneath: only counted
    try:
        found = store.search_traces(search)
    finally:
        del conn.query
    return sorted(t.info.trace_id for t in found), sent


def test_a_type_the_page_does_not_prove_is_probed_on_chdb() -> None:
    """On ClickHouse, a tag predicate under OR whose type the page's tags do not show (`cost`
    holds a string only off the page) is still probed, after the page: three statements."""
    found, sent = _statements_of("status = 'ERROR' OR tags.cost = 'x'")
    assert found == [tid(2), tid(5), tid(10)]
    assert len(sent) == 3, sent


def test_a_page_whose_tags_prove_the_types_sends_no_probe_on_chdb() -> None:
    """On ClickHouse, an OR of tag predicates whose page shows each key with a value of its
    literal's type is two statements, the page and its tags and metadata: the type probes
    (~15 ms each on 100,000 traces) are not sent."""
    found, sent = _statements_of("tags.user = 'bob' OR tags.cost > 5")
    assert found == [tid(2), tid(7), tid(8)]
    assert len(sent) == 2, sent
