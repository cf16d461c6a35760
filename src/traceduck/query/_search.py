"""The search query: filter + order + keyset page, and the opaque page tokens.

Keyset (not offset) pagination: a page token holds the sort values of the last trace shown,
and the next page asks for rows strictly after them. Traces written between two pages then
never shift a page boundary, so no trace is shown twice or skipped (offsets would do both).

The token is urlsafe base64 of ``{"v": 1, "o": <order signature>, "k": [sort values]}``; the
signature ties it to its ``order_by``, since the values mean nothing under another order.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ..errors import FilterError
from ._compiler import CompiledFilter, compile_filter_deferred
from ._dialect import Dialect, Frag, Param, sql
from ._order import OrderPlan, SortKey, plan_order
from ._runner import as_runner

__all__ = [
    "build_search",
    "decode_token",
    "encode_token",
    "run_search",
    "run_search_rows",
    "run_search_table",
]

_TOKEN_VERSION = 1
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def check_max_results(max_results: object) -> int | None:
    """A positive int, or None for no limit; anything else (0, -1, 1.5, True, "10") is refused
    rather than silently clamped, since a wrong page size would silently drop results."""
    if max_results is None:
        return None
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise FilterError(
            f"max_results must be a positive integer, or None for every match; got {max_results!r}"
        )
    if max_results >= 2**63 - 1:  # no store holds that many; LIMIT n + 1 must fit in 64 bits
        return None
    return max_results


def build_search(
    con: Any,
    filter_string: str | None,
    order_by: list[str] | tuple[str, ...] | str | None,
    max_results: int | None,
    page_token: str | None,
    dialect: Dialect | None = None,
    *,
    defer_probes: bool = False,
    columns: Sequence[str] = ("trace_id",),
    late: bool | None = False,
    experiment_ids: Sequence[str] | None = None,
    settle: bool = False,
) -> tuple[Frag, OrderPlan, int | None, CompiledFilter]:
    """The SQL of one page: ``SELECT <columns>, <sort values>`` ordered, one row past the page.

    ``columns`` are columns of ``traces`` (default: the trace id alone); selecting the ones the
    caller shows here saves a second query by id (an ``IN`` list of a page of ids costs DuckDB
    more than the page query's top-N). Sorting only by built-in columns gives a flat query
    (DuckDB then prunes the scan for ``ORDER BY timestamp_ms DESC LIMIT n``); tag or metadata
    keys need nested queries so each JSON value is extracted once per trace.

    ``late=True`` materialises the columns late: the page is found by sorting only the row ids
    and sort values, then the page's rows are joined back by rowid (DuckDB skips the row groups
    holding none of them). With a tag, metadata or span filter on a large store this beats
    carrying every matching row's wide columns through the sort, and it is one query.
    ``late=None`` chooses: late unless filter and order use only the trace's own columns (then
    DuckDB scans just what the filter needs and the plain query wins; without a filter, the
    newest rows by a narrow sort are faster too), measured on 10k to 1M traces
    (benchmarks/suites/search.py).

    ``experiment_ids``: only traces of those experiments (MLflow's ``experiment_ids``).
    ``settle`` (with ``defer_probes``): the caller settles the tag probes the result does not
    prove with the shown traces' tags (``CompiledFilter.settle``).
    """
    for column in columns:
        if not _IDENTIFIER.fullmatch(column):  # the caller's code names them, never a user
            raise ValueError(f"not a column name: {column!r}")
    limit = check_max_results(max_results)
    con = as_runner(con)
    dialect = dialect or con.dialect
    compiled = compile_filter_deferred(
        filter_string, con, dialect, defer=defer_probes, settle=settle
    )
    if experiment_ids is not None:
        compiled.frag = _in_experiments(compiled.frag, experiment_ids)
    plan = plan_order(order_by, dialect)
    after = decode_token(page_token, plan) if page_token is not None else None
    if late is None:
        late = not (plan.flat and compiled.builtin_only)
    late = late and dialect.has_rowid
    traces = dialect.traces_from
    shown = ", ".join(f"t.{c}" for c in (("rowid",) if late else columns))
    if plan.flat:
        refs = [key.direct or key.expr for key in plan.keys]
        names = ", ".join(f"{ref} AS _k{i}" for i, ref in enumerate(refs))
        query = sql(f"SELECT {shown}, {names} FROM {traces} WHERE {{}}", compiled.frag)
        if after is not None:
            query = query + sql(" AND {}", _after(plan.keys, after, refs))
    else:
        values = Frag.join(
            ", ", [sql("{} AS _c" + str(i), column) for i, column in enumerate(plan.columns)]
        )
        joins = Frag.join("", list(plan.joins))
        named = ", ".join(f"t.{c} AS {c}" for c in (("rowid",) if late else columns))
        inner = sql(
            f"SELECT {named}, {{}} FROM {traces}{{}} WHERE {{}}", values, joins, compiled.frag
        )
        keys = ", ".join(f"{key.expr} AS _k{i}" for i, key in enumerate(plan.keys))
        refs = [f"r._k{i}" for i in range(len(plan.keys))]
        picked = ("rowid",) if late else columns
        outer = ", ".join(f"q.{c}" for c in picked)
        query = sql(
            f"SELECT {', '.join(f'r.{c}' for c in picked)}, {', '.join(refs)} FROM "
            f"(SELECT {outer}, {keys} FROM ({{}}) q) r",
            inner,
        )
        if after is not None:
            query = query + sql(" WHERE {}", _after(plan.keys, after, refs))
    query = query + Frag(" ORDER BY " + _order_by(refs, plan.keys))
    if limit is not None:
        query = query + sql(" LIMIT {}", Param(limit + 1, "BIGINT"))
    if late:
        query = _join_rows(query, plan, columns)
    return query, plan, limit, compiled


def _in_experiments(where: Frag, experiment_ids: Sequence[str]) -> Frag:
    if not experiment_ids:
        return Frag("FALSE")
    holes = ", ".join(["{}"] * len(experiment_ids))
    params = [Param(str(e), "VARCHAR") for e in experiment_ids]
    return sql("({} AND t.experiment_id IN (" + holes + "))", where, *params)


def _join_rows(page: Frag, plan: OrderPlan, columns: Sequence[str]) -> Frag:
    """``page`` (row ids and sort values, ordered) joined back to the ``columns`` of its rows."""
    keys = [f"p._k{i}" for i in range(len(plan.keys))]
    shown = ", ".join(f"t.{c}" for c in columns)
    return sql(
        f"SELECT {shown}, {', '.join(keys)} FROM ({{}}) p JOIN traces t ON t.rowid = p.rowid "
        f"ORDER BY {_order_by(keys, plan.keys)}",
        page,
    )


def _order_by(refs: Sequence[str], keys: tuple[SortKey, ...]) -> str:
    return ", ".join(
        f"{ref} {'DESC' if key.descending else 'ASC'} NULLS LAST"
        for ref, key in zip(refs, keys, strict=True)
    )


def run_search(
    con: Any,
    filter_string: str | None,
    order_by: list[str] | tuple[str, ...] | str | None,
    max_results: int | None,
    page_token: str | None,
) -> tuple[list[str], str | None]:
    rows, token, _ = run_search_rows(con, filter_string, order_by, max_results, page_token)
    return [r[0] for r in rows], token


def run_search_rows(
    con: Any,
    filter_string: str | None,
    order_by: list[str] | tuple[str, ...] | str | None,
    max_results: int | None,
    page_token: str | None,
    columns: Sequence[str] = ("trace_id",),
    late: bool | None = False,
    experiment_ids: Sequence[str] | None = None,
    *,
    settle: bool = False,
) -> tuple[list[tuple[Any, ...]], str | None, CompiledFilter]:
    """One page as tuples of ``columns`` values, the next page token and the compiled filter.

    With ``settle``, the caller must call ``compiled.settle(<the shown traces' tags>)`` before
    showing the page (a type mismatch of a tag predicate under OR or NOT is then reported, as
    an error, only there); without, every probe has run that the result needs."""
    rows, plan, limit, compiled = _fetch_page(
        con, "rows", filter_string, order_by, max_results, page_token, columns=columns,
        late=late, experiment_ids=experiment_ids, settle=settle,
    )  # fmt: skip
    width = len(columns)
    if limit is None or len(rows) <= limit:
        return [r[:width] for r in rows], None, compiled
    page = rows[:limit]
    return [r[:width] for r in page], encode_token(plan, page[-1][width:]), compiled


def _fetch_page(
    con: Any,
    how: str,
    filter_string: str | None,
    order_by: list[str] | tuple[str, ...] | str | None,
    max_results: int | None,
    page_token: str | None,
    **options: Any,
) -> tuple[Any, OrderPlan, int | None, CompiledFilter]:
    """Run one page's query (``how``: the runner's "rows" or "arrow"): (its result, the order
    plan, the page size, the compiled filter), the type probes a page defers finished where
    the result says they must be."""
    query, plan, limit, compiled = build_search(
        con, filter_string, order_by, max_results, page_token, defer_probes=True, **options
    )
    con = as_runner(con)
    text, params = con.dialect.render(query)
    try:
        result = getattr(con, how)(text, params, filter_string or "")
    except FilterError:
        compiled.finish_unsettled()  # a type mismatch came first, as without settling
        raise
    if len(result) == 0:
        compiled.finish()  # an empty result may hide a type mismatch: probe now
    return result, plan, limit, compiled


def run_search_table(
    con: Any,
    filter_string: str | None,
    order_by: list[str] | tuple[str, ...] | str | None,
    max_results: int | None,
    page_token: str | None,
    columns: Sequence[str] = ("trace_id",),
    experiment_ids: Sequence[str] | None = None,
    *,
    settle: bool = False,
) -> tuple[pa.Table, str | None, CompiledFilter]:
    """One page as a pyarrow Table of ``columns``, the next page token and the compiled filter
    (``settle``: see ``run_search_rows``)."""
    table, plan, limit, compiled = _fetch_page(
        con, "arrow", filter_string, order_by, max_results, page_token, columns=columns,
        experiment_ids=experiment_ids, settle=settle,
    )  # fmt: skip
    token = None
    if limit is not None and table.num_rows > limit:
        last = table.slice(limit - 1, 1).to_pylist()[0]
        token = encode_token(plan, tuple(last[f"_k{i}"] for i in range(len(plan.keys))))
        table = table.slice(0, limit)
    return table.select(list(columns)), token, compiled


def _after(keys: tuple[SortKey, ...], values: list[Any], refs: list[str]) -> Frag:
    """Rows strictly after ``values`` in the order of ``keys`` (mixed directions, NULLS LAST).

    Written nested, ``beyond0 OR (equal0 AND (beyond1 OR (equal1 AND ...)))``, which stays
    linear in the number of keys (the flat OR-of-ANDs form makes DuckDB's optimizer work hard).
    Beyond a NULL there is nothing (NULLs sort last); beyond a value lies every greater (ASC) or
    smaller (DESC) value and every NULL; NULL "equals" NULL here.
    """
    result: Frag | None = None
    for i in range(len(keys) - 1, -1, -1):
        key, value, ref = keys[i], values[i], refs[i]
        if value is None:
            equal, beyond = Frag(f"{ref} IS NULL"), None
        else:
            param = Param(value, key.sql_type)
            equal = sql(f"{ref} = {{}}", param)
            op = "<" if key.descending else ">"
            beyond = sql(f"{ref} {op} {{}}", param)
            if key.nullable:
                beyond = sql(f"({{}} OR {ref} IS NULL)", beyond)
        then = sql("({} AND {})", equal, result) if result is not None else None
        if beyond is None:
            result = then if then is not None else Frag("FALSE")
        else:
            result = sql("({} OR {})", beyond, then) if then is not None else beyond
    return result if result is not None else Frag("FALSE")


def encode_token(plan: OrderPlan, values: tuple[Any, ...]) -> str:
    payload = {"v": _TOKEN_VERSION, "o": plan.signature, "k": list(values)}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "BIGINT": (int,),
    "DOUBLE": (int, float),
    "VARCHAR": (str,),
}


def decode_token(token: object, plan: OrderPlan) -> list[Any]:
    """The sort values of a page token made for ``plan``; FilterError if it is not one."""
    bad = FilterError(
        "invalid page_token: it is not a token returned by search (it may be truncated); "
        "start again without page_token"
    )
    if not isinstance(token, str) or not token or len(token) > 100_000:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if (
        not isinstance(payload, dict)
        or payload.get("v") != _TOKEN_VERSION
        or not isinstance(payload.get("o"), str)
        or not isinstance(payload.get("k"), list)
    ):
        raise bad
    if payload["o"] != plan.signature:
        raise FilterError(
            "invalid page_token: it was made for a different order_by; pass the same "
            "order_by as the first page, or start again without page_token"
        )
    values = payload["k"]
    if len(values) != len(plan.keys):
        raise bad
    for value, key in zip(values, plan.keys, strict=True):
        if value is None and key.nullable:
            continue
        ok = isinstance(value, _PYTHON_TYPES[key.sql_type])
        if isinstance(value, bool):
            ok = False
        if key.sql_type == "BIGINT" and ok and not -(2**63) <= value < 2**63:
            ok = False
        if not ok:
            raise bad
    return values
