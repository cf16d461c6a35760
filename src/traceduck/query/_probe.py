"""Probe queries: which JSON types does a tag key, metadata path or span attribute hold?

The filter language types its comparisons (``tags.cost > '3'`` only sees string values). When
a key holds values but none of the literal's type, an empty result would silently hide a typo,
so the compiler asks the store first and turns the mismatch into a FilterError with a hint.

Each probe first asks a cheap question, the type of the first value found (the scan stops at the
first hit), and only when that is not the literal's type collects every type the key holds.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ..errors import FilterError
from ._ast import FieldRef, Literal, Predicate
from ._dialect import Dialect, Frag, sql
from ._runner import Runner, as_runner
from ._tokens import NUMBER_RE as _NUMBER

__all__ = ["Prober", "run_user_query", "run_user_query_arrow"]

_TYPE_WORDS = {
    "number": "numbers",
    "string": "strings",
    "boolean": "booleans",
    "array": "lists",
    "object": "objects",
    "null": "nulls",
}


def run_user_query(
    con: Any, query: str, params: list[Any] | tuple[Any, ...], text: str
) -> list[tuple[Any, ...]]:
    """Run a query built from a filter; a value-caused engine error becomes a FilterError."""
    return as_runner(con).rows(query, params, text)


def run_user_query_arrow(
    con: Any, query: str, params: list[Any] | tuple[Any, ...], text: str
) -> pa.Table:
    """``run_user_query`` with the result as a pyarrow Table (no Python objects per row)."""
    return as_runner(con).arrow(query, params, text)


class Prober:
    """Runs (and caches, for one compile) the type probes of a filter's predicates."""

    def __init__(self, con: Runner, dialect: Dialect, text: str) -> None:
        self.con = con
        self.dialect = dialect
        self.text = text
        self._held: dict[tuple[str, str], set[str]] = {}
        # (field, types wanted) already found fine: a filter of a hundred ORs on one tag
        # probes it once, not a hundred times
        self._fine: set[tuple[tuple[str, str], frozenset[str]]] = set()

    def check(self, pred: Predicate) -> None:
        """Raise FilterError when the field holds values but none of the literals' types."""
        wanted = {lit.type for lit in pred.values if lit.type != "null"}
        if not wanted:
            return
        asked = (_field_key(pred.field), frozenset(wanted))
        if asked in self._fine:
            return
        quick = self.dialect.holds_type(pred.field, wanted)
        if not (quick is not None and self._run(quick)):
            first = self._first_type(pred.field)
            if first is not None and first not in wanted:
                held = self._types_held(pred.field) - {"null"}
                if held and not (held & wanted):
                    lit = next(x for x in pred.values if x.type != "null")
                    raise FilterError(_mismatch(pred, held, self.text), self.text, lit.start)
        self._fine.add(asked)

    def check_regex(self, lit: Literal) -> None:
        detail = self.con.regex_error(str(lit.value))
        if detail is not None:
            raise FilterError(f"invalid regular expression: {detail}", self.text, lit.start)

    # -- queries ---------------------------------------------------------------------------
    def _source(self, field: FieldRef) -> tuple[Frag, Frag]:
        return self.dialect.probe_source(field)

    def _first_type(self, field: FieldRef) -> str | None:
        """The type of the first non-null value found (the scan stops there); None if none.

        Most keys hold one type, so this one early-exit query usually settles the probe; a key
        with no values at all costs one scan, and only a miss needs the full type census.
        """
        table, value = self._source(field)
        var = Frag("v")
        query = sql(
            "SELECT {} FROM (SELECT {} AS v FROM {}) WHERE v IS NOT NULL AND NOT {} LIMIT 1",
            self.dialect.json_type_of(var),
            value,
            table,
            self.dialect.json_is(var, "null"),
        )
        rows = self._run(query)
        return self.dialect.json_type_from_engine(str(rows[0][0])) if rows else None

    def _run(self, query: Frag) -> list[tuple[Any, ...]]:
        text, params = self.dialect.render(query)
        return self.con.rows(text, params, self.text)

    def _types_held(self, field: FieldRef) -> set[str]:
        cache_key = _field_key(field)
        if cache_key not in self._held:
            table, value = self._source(field)
            query = sql(
                "SELECT DISTINCT {} FROM (SELECT {} AS v FROM {}) WHERE v IS NOT NULL",
                self.dialect.json_type_of(Frag("v")),
                value,
                table,
            )
            rows = self._run(query)
            held = {self.dialect.json_type_from_engine(str(r[0])) for r in rows if r[0]}
            self._held[cache_key] = held
        return self._held[cache_key]


def _field_key(field: FieldRef) -> tuple[str, str]:
    """What names a probed field: its family and key (metadata: its candidate paths)."""
    return (field.family, repr(field.candidates) if field.candidates else field.key)


def _mismatch(pred: Predicate, held: set[str], text: str) -> str:
    """``tags.cost holds numbers: write tags.cost > 3`` (or the closest we can suggest)."""
    field = pred.field.text
    kinds = sorted(held, key=list(_TYPE_WORDS).index)
    words = " and ".join(_TYPE_WORDS[k] for k in kinds)
    message = f"{field} holds {words}"
    # Suggest a rewrite only when the key holds one type: then the intent is unambiguous.
    rewritten = [_rewrite(lit, held) if len(held) == 1 else None for lit in pred.values]
    op = text[pred.op_start : pred.op_end]
    if pred.op == "=" and "array" in held and pred.values[0].type != "null":
        return f"{message}: to test membership write {field} CONTAINS {pred.values[0].text}"
    if all(r is not None for r in rewritten):
        if pred.op == "IN":
            values = ", ".join(r for r in rewritten if r is not None)
            return f"{message}: write {field} {op} ({values})"
        return f"{message}: write {field} {op} {rewritten[0]}"
    wanted = sorted({lit.type for lit in pred.values if lit.type != "null"})
    return f"{message}, not {' or '.join(_TYPE_WORDS[w] for w in wanted)}"


def _rewrite(lit: Literal, held: set[str]) -> str | None:
    """The literal rewritten to a type the field holds, if there is an obvious one."""
    if lit.type == "null":
        return "null"
    if lit.type == "string":
        raw = str(lit.value).strip()
        if "number" in held and _NUMBER.fullmatch(raw):
            return raw
        if "boolean" in held and raw.lower() in ("true", "false"):
            return raw.lower()
        return None
    if "string" in held:
        shown = lit.text.replace("'", "''")
        return f"'{shown}'"
    return None
