"""The filter language compiler and the trace search built on it.

Stages, one module each: ``_tokens`` (text -> tokens with positions), ``_parser`` (recursive
descent -> ``_ast``), ``_fields`` (the one table of fields and their MLflow spellings),
``_compiler`` + ``_values`` + ``_probe`` (AST -> SQL with bound parameters, typed comparisons,
type probes against the store), ``_dialect`` (engine-specific SQL), ``_order`` (order_by) and
``_search`` (the page query and keyset page tokens).

The rest of the package calls exactly the four functions below, each with the ``Runner`` of a
store (``store/duckdb/_runner.py``, ``store/clickhouse/_query.py``): this package emits SQL for
the runner's ``Dialect`` and imports no engine. Every problem with a filter,
an order_by, a page token or max_results is a ``FilterError`` (a ``ValueError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._compiler import compile_filter_frag
from ._runner import Runner, as_runner
from ._search import build_search, run_search, run_search_rows, run_search_table

__all__ = ["Runner", "as_runner", "compile_filter", "explain", "search", "search_page"]


def compile_filter(filter_string: str | None, con: Any) -> tuple[str, Any]:
    """A boolean SQL expression over the table alias ``t`` (= traces) and its bound params.

    An empty or None filter gives ``("TRUE", [])``. ``con`` is the store's ``Runner``: its
    Dialect gives the SQL, and it answers the probes (the JSON types a tag key holds, regex
    validity), never changing the store. Use as ``SELECT ... FROM traces t WHERE <sql>`` with
    the params (DuckDB: in order; ClickHouse: by name).
    """
    runner = as_runner(con)
    return runner.dialect.render(compile_filter_frag(filter_string, runner))


def search(
    con: Any,
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
    con: Any,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
    max_results: int | None = 100,
    page_token: str | None = None,
    *,
    columns: Sequence[str] = ("trace_id",),
    arrow: bool = False,
    late: bool | None = False,
    experiment_ids: Sequence[str] | None = None,
) -> tuple[Any, str | None]:
    """``search``, returning the page's ``traces`` columns themselves in one query.

    The page is a list of tuples of the ``columns`` values (``arrow=True``: a pyarrow Table
    of those columns), in order, with the next page token. Fetching the shown columns here
    instead of looking the ids up afterwards saves a query (``WHERE trace_id IN (<a page of
    ids>)`` costs DuckDB a scan; see benchmarks/suites/search.py). ``late``: see
    ``build_search`` (None: chosen from the filter and the order). ``experiment_ids``: only
    traces of those experiments.
    """
    if arrow:
        table, token, _ = run_search_table(
            con, filter_string, order_by, max_results, page_token, columns, experiment_ids
        )
        return table, token
    rows, token, _ = run_search_rows(
        con, filter_string, order_by, max_results, page_token, columns, late, experiment_ids
    )
    return rows, token


def explain(
    con: Any,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
    max_results: int | None = 100,
    page_token: str | None = None,
) -> tuple[str, list]:
    """The SQL and params ``search`` would run (for ``--show-sql``)."""
    runner = as_runner(con)
    query, *_ = build_search(runner, filter_string, order_by, max_results, page_token)
    return runner.dialect.render(query)
