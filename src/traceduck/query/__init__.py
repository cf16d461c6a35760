"""The filter language compiler and the trace search built on it.

Stages, one module each: ``_tokens`` (text -> tokens with positions), ``_parser`` (recursive
descent -> ``_ast``), ``_fields`` (the one table of fields and their MLflow spellings),
``_compiler`` + ``_values`` + ``_probe`` (AST -> SQL with bound parameters, typed comparisons,
type probes against the store), ``_dialect`` (engine-specific SQL), ``_order`` (order_by) and
``_search`` (the page query and keyset page tokens).

The rest of the package calls exactly the four functions below. Every problem with a filter,
an order_by, a page token or max_results is a ``FilterError`` (a ``ValueError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from ._ast import iter_predicates
from ._compiler import compile_filter_frag
from ._dialect import DUCKDB
from ._order import plan_order
from ._parser import parse
from ._search import build_search, run_search, run_search_rows, run_search_table

__all__ = ["compile_filter", "explain", "late_rows", "search", "search_page"]


def late_rows(filter_string: str | None, order_by: list[str] | str | None) -> bool:
    """Whether a page of full rows is best found by row id and sort values first, its wide
    columns joined back afterwards (``search_page(late=True)``), rather than as one would write
    it by hand, the columns carried through the sort.

    Late, when the filter or the order uses a tag, metadata or span (every matching row would
    otherwise carry its wide columns through the sort), or there is no filter (the newest rows
    by a narrow sort: the UI's first page). With only the trace's own columns in filter and
    order, DuckDB scans just what the filter needs and the plain query wins (measured on 10k to
    1M traces, benchmarks/suites/search.py). Bad input answers False: the search reports it.
    """
    try:
        if not plan_order(order_by, DUCKDB).flat:
            return True
        node = parse(filter_string) if filter_string else None
        return node is None or any(p.field.family != "builtin" for p in iter_predicates(node))
    except Exception:
        return False


def compile_filter(filter_string: str | None, con: duckdb.DuckDBPyConnection) -> tuple[str, list]:
    """A boolean SQL expression over the table alias ``t`` (= traces) and its bound params.

    An empty or None filter gives ``("TRUE", [])``. ``con`` is used to probe the store (the
    JSON types a tag key holds, regex validity), never to change it. Use as
    ``SELECT ... FROM traces t WHERE <sql>`` with the params in order.
    """
    frag = compile_filter_frag(filter_string, con)
    return frag.text, list(frag.params)


def search(
    con: duckdb.DuckDBPyConnection,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
    max_results: int | None = 100,
    page_token: str | None = None,
) -> tuple[list[str], str | None]:
    """Ordered trace ids of one page and the next page token (None on the last page).

    ``order_by`` items are ``field [ASC|DESC]``; after them come ``timestamp_ms DESC`` and the
    trace id. ``max_results=None`` returns every match with no cap (and no token).
    """
    return run_search(con, filter_string, order_by, max_results, page_token)


def search_page(
    con: duckdb.DuckDBPyConnection,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
    max_results: int | None = 100,
    page_token: str | None = None,
    *,
    columns: Sequence[str] = ("trace_id",),
    arrow: bool = False,
    late: bool = False,
) -> tuple[Any, str | None]:
    """``search``, returning the page's ``traces`` columns themselves in one query.

    The page is a list of tuples of the ``columns`` values (``arrow=True``: a pyarrow Table
    of those columns), in order, with the next page token. Fetching the shown columns here
    instead of looking the ids up afterwards saves a query (``WHERE trace_id IN (<a page of
    ids>)`` costs DuckDB a scan; see benchmarks/suites/search.py). ``late``: see ``late_rows``.
    """
    if arrow:
        return run_search_table(con, filter_string, order_by, max_results, page_token, columns)
    return run_search_rows(con, filter_string, order_by, max_results, page_token, columns, late)


def explain(
    con: duckdb.DuckDBPyConnection,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
    max_results: int | None = 100,
    page_token: str | None = None,
) -> tuple[str, list]:
    """The SQL and params ``search`` would run (for ``--show-sql``)."""
    query, *_ = build_search(con, filter_string, order_by, max_results, page_token)
    return query.text, list(query.params)
