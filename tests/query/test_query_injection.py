"""Values and keys that look like SQL are data: right results, no SQL text, store intact."""

from __future__ import annotations

import duckdb
import pytest
from querytest_data import SpanRow, TraceRow, insert_traces, tid

from traceduck.query import compile_filter, explain, search
from traceduck.store.duckdb._runner import DuckDBRunner

NASTY = [
    "'; DROP TABLE traces; --",
    "x' OR '1'='1",
    '" OR 1=1 --',
    "a\\'; DELETE FROM spans; --",
    "$.a') OR json_extract(tags, '$",
    "~1/~0",
    "a ? b ?",
    "); SELECT * FROM traces; --",
    "`backtick`",
    "line\nbreak",
]


def _quote(text: str) -> str:
    """A literal for ``text``: the quote doubled, backslashes kept as written.

    A backslash right before the literal's own quote escapes it, so a text containing
    backslash-quote is written in the other quotes, where that pair means itself.
    """
    if "\\'" in text:
        return '"' + text.replace('"', '""') + '"'
    return "'" + text.replace("'", "''") + "'"


def _backticked(text: str) -> str:
    return "`" + text.replace("`", "``") + "`"


@pytest.fixture
def nasty_con(fresh_con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The fixed store plus one trace per nasty text, used as tag key, tag value, metadata
    key and value, span attribute key and value."""
    traces = [
        TraceRow(
            50 + i, f"n{i}", "OK", 50_000 + i, 1.0, "api",
            {text: text, "nasty": text},
            {text: {"inner": text}, "nasty": text},
            [SpanRow(text, "TOOL", "OK", 1.0, {text: text})],
        )
        for i, text in enumerate(NASTY)
    ]  # fmt: skip
    insert_traces(fresh_con, traces)
    return fresh_con


def _snapshot(con: duckdb.DuckDBPyConnection) -> tuple[object, ...]:
    tables = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables ORDER BY 1"
    ).fetchall()
    counts = tuple(
        con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # type: ignore[index]
        for name in ("traces", "spans", "trace_tags", "trace_metadata")
    )
    return (tuple(tables), counts)


@pytest.mark.parametrize("index", range(len(NASTY)))
def test_nasty_values_and_keys_match_exactly_their_trace(
    nasty_con: duckdb.DuckDBPyConnection, index: int
) -> None:
    text = NASTY[index]
    before = _snapshot(nasty_con)
    expected = [tid(50 + index)]
    key = _backticked(text)
    filters = [
        f"tags.nasty = {_quote(text)}",
        f"tags.{key} = {_quote(text)}",
        f"tags.{key} IS NOT NULL",
        f"tags.nasty IN ({_quote(text)}, 'zzz')",
        f"metadata.nasty = {_quote(text)}",
        f"metadata.{key}.inner = {_quote(text)}",
        f"span.name = {_quote(text)}",
        f"span.attributes.{key} = {_quote(text)} AND span.name = {_quote(text)}",
        f"name = 'n{index}' AND tags.nasty STARTSWITH {_quote(text)}",
    ]
    for flt in filters:
        ids, _ = search(DuckDBRunner(nasty_con), flt, max_results=None)
        assert ids == expected, flt
        sql, _params = compile_filter(flt, DuckDBRunner(nasty_con))
        assert text not in sql, "user text must be bound, never pasted into SQL"
        query, _params = explain(DuckDBRunner(nasty_con), flt)
        assert text not in query
    assert _snapshot(nasty_con) == before


def test_nasty_texts_that_match_nothing_leave_the_store_intact(
    fresh_con: duckdb.DuckDBPyConnection,
) -> None:
    before = _snapshot(fresh_con)
    for text in NASTY:
        for flt in (
            f"tags.env = {_quote(text)}",
            f"tags.{_backticked(text)} = 'x'",
            f"metadata.{_backticked(text)} IS NOT NULL",
            f"span.attributes.{_backticked(text)} LIKE {_quote(text)}",
            f"name RLIKE {_quote(text.replace('(', '').replace(')', '').replace('?', ''))}",
        ):
            ids, _ = search(DuckDBRunner(fresh_con), flt, max_results=None)
            assert ids == [], flt
    assert _snapshot(fresh_con) == before


def test_order_by_keys_are_bound_too(nasty_con: duckdb.DuckDBPyConnection) -> None:
    for text in NASTY:
        order = [f"tags.{_backticked(text)} DESC", f"metadata.{_backticked(text)}"]
        ids, _ = search(DuckDBRunner(nasty_con), None, order_by=order, max_results=3)
        query, _params = explain(DuckDBRunner(nasty_con), None, order_by=order)
        assert text not in query
        assert ids[0] == tid(50 + NASTY.index(text))
