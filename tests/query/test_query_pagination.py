"""Keyset pagination: stable pages while traces are written, tag ordering, token validation."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest
from querytest_data import SpanRow, TraceRow, build_store, insert_traces
from querytest_reference import sort_key

from _engines import new_store_name, write_rows
from traceduck.errors import FilterError
from traceduck.query import search, search_page
from traceduck.store.duckdb._runner import DuckDBRunner

COSTS: list[object] = [3, 10, 9, 2.5, "cheap", "9", True, False, None, [1], {"a": 1}, -1, 0]


def _trace(n: int, rng: random.Random) -> TraceRow:
    tags: dict[str, object] = {"env": rng.choice(["prod", "dev"])}
    if rng.random() < 0.8:
        tags["cost"] = rng.choice(COSTS)
    metadata = {"eval": {"score": rng.choice([0.5, 0.9, 0.1, "n/a"])}} if rng.random() < 0.7 else {}
    return TraceRow(
        n,
        rng.choice(["a", "b", None]),
        rng.choice(["OK", "ERROR"]),
        1_000 * rng.randrange(40),  # many timestamp ties
        float(rng.randrange(1000)),
        rng.choice(["api", "worker", None]),
        tags,
        metadata,
        [SpanRow("root")],
        trace_id=f"{n:032x}",
    )


@pytest.fixture
def duck_paged_store(tmp_path: Path) -> tuple[duckdb.DuckDBPyConnection, list[TraceRow]]:
    rng = random.Random(7)
    traces = [_trace(n, rng) for n in range(1, 201)]
    con = duckdb.connect(str(tmp_path / "paged.duckdb"))
    build_store(con, traces)
    yield con, traces
    con.close()


def _store_of(engine: str, tmp_path: Path, traces: list[TraceRow]) -> tuple[Any, Any]:
    """(what the query functions take, a function that writes more traces) on ``engine``."""
    if engine == "duckdb":
        con = duckdb.connect(str(tmp_path / "paged.duckdb"))
        build_store(con, traces)
        return DuckDBRunner(con), lambda more: insert_traces(con, more)
    from traceduck import TraceStore

    store = TraceStore(new_store_name(engine, tmp_path))
    write_rows(store, traces)
    return store.runner, lambda more: write_rows(store, more)


@pytest.fixture
def paged(engine: str, tmp_path: Path) -> tuple[Any, list[TraceRow], Any]:
    """200 traces with many ties, on each engine, and a way to write more."""
    rng = random.Random(7)
    traces = [_trace(n, rng) for n in range(1, 201)]
    con, add = _store_of(engine, tmp_path, traces)
    return con, traces, add


ORDERS = [
    (None, []),
    (["tags.cost DESC"], [("tag", "cost", True)]),
    (["tags.cost"], [("tag", "cost", False)]),
    (["metadata.eval.score DESC", "service_name"], [("metadata", "eval.score", True),
                                                    ("builtin", "service_name", False)]),
    (["name DESC", "execution_time_ms"], [("builtin", "name", True),
                                          ("builtin", "execution_time_ms", False)]),
    ("timestamp_ms ASC, trace_id DESC", None),
]  # fmt: skip


@pytest.mark.parametrize(("order_by", "items"), ORDERS, ids=[str(o) for o, _ in ORDERS])
def test_pages_neither_skip_nor_repeat_while_traces_are_written(
    paged: tuple[Any, list[TraceRow], Any],
    order_by: list[str] | str | None,
    items: list[tuple[str, str, bool]] | None,
) -> None:
    con, traces, add = paged
    rng = random.Random(11)
    if items is None:  # timestamp ascending, then trace id descending: compare ids by hand
        key = lambda t: (t.timestamp_ms, [-ord(c) for c in t.trace_id])  # noqa: E731
    else:
        key = lambda t: sort_key(t, items)  # noqa: E731
    by_id = {t.trace_id: t for t in traces}
    seen: list[str] = []
    must_appear: set[str] = set()
    must_not_appear: set[str] = set()
    token = None
    next_n = 1000
    while True:
        page, token = search(con, None, order_by=order_by, max_results=7, page_token=token)
        seen += page
        if token is None:
            break
        # Write new traces between pages: those ordered after the cursor must show up later,
        # those before it must not (they belong to pages already read).
        cursor = key(by_id[page[-1]])
        new = [_trace(next_n + i, rng) for i in range(3)]
        next_n += 3
        add(new)
        for t in new:
            by_id[t.trace_id] = t
            (must_appear if key(t) > cursor else must_not_appear).add(t.trace_id)
    assert len(seen) == len(set(seen)), "a trace was repeated"
    assert {t.trace_id for t in traces} <= set(seen), "an existing trace was skipped"
    assert must_appear <= set(seen)
    assert not (must_not_appear & set(seen))
    assert [key(by_id[i]) for i in seen] == sorted(key(by_id[i]) for i in seen)


def test_tag_order_is_numeric_and_missing_tags_go_last(engine: str, tmp_path: Path) -> None:
    values: list[object] = [10, 9, 2, "b", "a", True, None]
    traces = [
        TraceRow(i + 1, "t", "OK", 1000 * i, 1.0, "api", {"cost": v}, {}, [SpanRow("r")])
        for i, v in enumerate(values)
    ]
    traces.append(TraceRow(20, "t", "OK", 99_000, 1.0, "api", {}, {}, [SpanRow("r")]))
    con, _ = _store_of(engine, tmp_path, traces)
    by_value = {t.trace_id: (t.tags or {}).get("cost", "missing") for t in traces}
    desc, _ = search(con, None, order_by=["tags.cost DESC"], max_results=None)
    asc, _ = search(con, None, order_by=["tags.cost ASC"], max_results=None)
    assert [by_value[i] for i in desc] == [10, 9, 2, "b", "a", True, None, "missing"]
    assert [by_value[i] for i in asc] == [2, 9, 10, "a", "b", True, None, "missing"]


def test_exactly_full_last_page_has_no_token(paged: tuple[Any, list[TraceRow], Any]) -> None:
    con, _, _ = paged
    ids, token = search(con, "trace_id <= '00000000000000000000000000000014'", max_results=10)
    assert len(ids) == 10 and token is not None
    more, token = search(
        con, "trace_id <= '00000000000000000000000000000014'", max_results=10, page_token=token
    )
    assert len(more) == 10 and token is None
    assert not set(ids) & set(more)


def test_max_results_none_returns_everything(paged: tuple[Any, list[TraceRow], Any]) -> None:
    con, traces, _ = paged
    ids, token = search(con, None, max_results=None)
    assert len(ids) == len(traces) and token is None
    first, token = search(con, None, max_results=50)
    rest, last = search(con, None, max_results=None, page_token=token)
    assert first + rest == ids and last is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10", [10]])
def test_bad_max_results(con: duckdb.DuckDBPyConnection, bad: object) -> None:
    with pytest.raises(FilterError, match="max_results must be a positive integer"):
        search(con, None, max_results=bad)  # type: ignore[arg-type]
    assert issubclass(FilterError, ValueError)


@pytest.mark.parametrize("huge", [2**63 - 1, 2**63, 10**23])
def test_max_results_beyond_64_bits_returns_everything(con: Any, huge: int) -> None:
    """No hidden cap, and none the engine adds: DuckDB used to fail on LIMIT 2**63 (a
    FilterError quoting its ConversionException) where ClickHouse answered."""
    every, _ = search(con, None, max_results=None)
    ids, token = search(con, None, max_results=huge)
    assert ids == every and token is None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_malformed_page_tokens(con: duckdb.DuckDBPyConnection) -> None:
    _ids, token = search(con, None, max_results=2)
    assert token is not None
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    wrong_types = dict(payload, k=["x" for _ in payload["k"]])
    short = dict(payload, k=payload["k"][:1])
    for bad in (
        "",
        "not a token!",
        token[:-3],
        token + "A",
        _b64(b"not json"),
        _b64(b"\xff\xfe"),
        _b64(b"[1, 2]"),
        _b64(json.dumps(dict(payload, v=99)).encode()),
        _b64(json.dumps(wrong_types).encode()),
        _b64(json.dumps(short).encode()),
        "A" * 200_000,
        12345,
    ):
        with pytest.raises(FilterError, match="invalid page_token"):
            search(con, None, max_results=2, page_token=bad)  # type: ignore[arg-type]


def test_token_from_another_order_by_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    _ids, token = search(con, None, order_by=["tags.cost DESC"], max_results=2)
    with pytest.raises(FilterError, match="different order_by"):
        search(con, None, order_by=["tags.cost ASC"], max_results=2, page_token=token)
    with pytest.raises(FilterError, match="different order_by"):
        search(con, None, max_results=2, page_token=token)
    # The same order written differently (alias, case, string form) is the same order.
    more, _ = search(con, None, order_by="tag.cost desc", max_results=2, page_token=token)
    assert more


@pytest.mark.parametrize(
    ("order_by", "fragment"),
    [
        (["span.name"], "span field"),
        (["tags.cost DESCENDING"], "did you mean DESC"),
        (["bogus"], "unknown field"),
        ([""], "expected a field"),
        (["tags.cost DESC extra"], "expected ASC, DESC"),
        (["timestamp_ms", 3], "list of strings"),
        (42, "list of strings"),
    ],
)
def test_bad_order_by(con: duckdb.DuckDBPyConnection, order_by: object, fragment: str) -> None:
    with pytest.raises(FilterError, match=fragment):
        search(con, None, order_by=order_by)  # type: ignore[arg-type]


def test_order_by_accepts_mlflow_spellings(con: duckdb.DuckDBPyConnection) -> None:
    canonical, _ = search(con, None, order_by=["execution_time_ms DESC"], max_results=None)
    for spelling in (
        "attributes.execution_time_ms DESC",
        "trace.execution_time DESC",
        "`execution_time` desc",
    ):
        ids, _ = search(con, None, order_by=[spelling], max_results=None)
        assert ids == canonical, spelling
    both, _ = search(con, None, order_by="tags.cost DESC, name", max_results=None)
    listed, _ = search(con, None, order_by=["tags.cost DESC", "name"], max_results=None)
    assert both == listed


@pytest.mark.parametrize(("order_by", "items"), ORDERS, ids=[str(o) for o, _ in ORDERS])
@pytest.mark.parametrize("mode", ["rows", "arrow", "late"])
def test_search_page_gives_the_pages_of_search_with_their_columns(
    duck_paged_store: tuple[duckdb.DuckDBPyConnection, list[TraceRow]],
    order_by: list[str] | str | None,
    items: list[tuple[str, str, bool]] | None,
    mode: str,
) -> None:
    """One query per page (columns included; "late": joined back by rowid after the sort)
    pages exactly like search() (ids, then tokens). DuckDB's own columns (``traces.tags``)."""
    arrow, late = mode == "arrow", mode == "late"
    connection, traces = duck_paged_store
    con = DuckDBRunner(connection)
    by_id = {t.trace_id: t for t in traces}
    columns = ("name", "trace_id", "timestamp_ms", "tags")
    token = wanted_token = None
    pages = 0
    while True:
        wanted, wanted_token = search(
            con, "status = 'OK'", order_by=order_by, max_results=9, page_token=wanted_token
        )
        page, token = search_page(
            con, "status = 'OK'", order_by, 9, token, columns=columns, arrow=arrow, late=late
        )
        rows = [tuple(r.values()) for r in page.to_pylist()] if arrow else page
        if arrow:
            assert page.column_names == list(columns)
        assert [r[1] for r in rows] == wanted
        for name, trace_id, timestamp_ms, tags in rows:
            stored = by_id[trace_id]
            assert (name, timestamp_ms) == (stored.name, stored.timestamp_ms)
            assert json.loads(tags) == (stored.tags or {})
        assert (token is None) == (wanted_token is None)
        pages += 1
        if token is None:
            break
    assert pages > 2


def test_search_page_refuses_a_column_that_is_not_a_name(
    con: duckdb.DuckDBPyConnection,
) -> None:
    with pytest.raises(ValueError, match="not a column name"):
        search_page(con, None, columns=("trace_id", "1; DROP TABLE traces"))


def test_search_page_turns_a_bad_value_into_a_filter_error(
    con: duckdb.DuckDBPyConnection,
) -> None:
    with pytest.raises(FilterError):
        search_page(con, "name RLIKE '('", arrow=True)
