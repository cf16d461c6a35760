"""AST -> one boolean SQL expression over ``traces t`` plus its bound parameters.

Three passes, so errors come out in a predictable order: (1) static checks of every predicate
in source order (operators, literal types, status values: no database needed), (2) checks that
ask the store (regex validity, type probes), (3) SQL generation.

Two-valued logic: every generated predicate is true exactly when the filter's predicate holds
and false *or NULL* otherwise; NULL behaves as false under AND/OR, so only ``NOT`` has to turn
NULL into false before negating (``NOT COALESCE(x, FALSE)``). Plain predicates therefore stay
plain SQL comparisons that DuckDB can push into its scans.

Span semantics: span predicates ANDed in one conjunction (parentheses flattened, no OR between
them) are one ``EXISTS``-style semi-join over one span; OR separates; NOT negates existence.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._json import json_type
from ..errors import FilterError
from ._ast import And, Literal, Node, Not, Or, Predicate, iter_predicates
from ._dialect import Dialect, Frag, Param, sql
from ._fields import FieldSpec, spec_of, suggest
from ._parser import PATTERN_OPS, parse
from ._probe import Prober
from ._runner import as_runner
from ._tokens import number_value
from ._values import field_document, field_value, json_predicate, single_path

__all__ = ["CompiledFilter", "compile_ast", "compile_filter_deferred", "compile_filter_frag"]

TRACE_STATUSES = ("OK", "ERROR", "IN_PROGRESS")
SPAN_STATUSES = ("OK", "ERROR")
# Other tools' names for the same states, for better suggestions than string similarity.
_STATUS_SYNONYMS = {
    "UNSET": "OK",
    "SUCCESS": "OK",
    "SUCCEEDED": "OK",
    "FINISHED": "OK",
    "FAILED": "ERROR",
    "FAILURE": "ERROR",
    "FAIL": "ERROR",
    "RUNNING": "IN_PROGRESS",
}
_ORDERED = ("<", "<=", ">", ">=")
_KEYED = ("tag", "metadata", "span_attr")
_PROBED_OPS = ("=", "!=", "IN", *_ORDERED)
_TYPE_NAMES = {"string": "a string", "number": "a number", "boolean": "a boolean", "null": "null"}


def compile_filter_frag(
    filter_string: str | None, con: Any, dialect: Dialect | None = None
) -> Frag:
    """Parse and compile a filter string, probing the store now; ``TRUE`` for an empty one."""
    compiled = compile_filter_deferred(filter_string, con, dialect, defer=False)
    return compiled.frag


@dataclass
class CompiledFilter:
    """A compiled filter whose type probes may partly wait until the result is known.

    A probe only matters when a key holds no value of the literal's type. A predicate that is
    reached from the root through AND only, and whose operator can only be true on a value of
    the literal's type (``= < <= > >= IN``), is satisfied by every returned trace: if the
    search returns anything, its probe cannot fail. Deferring those probes to empty results
    saves a probe query (~2 ms on a million traces) on the common path.

    ``unsettled`` (compiled with ``settle=True``): the other probed tag predicates (under OR or
    NOT), which a result does not prove. A returned trace whose current tags hold the key with
    a value of a literal's type does: the key holds that type, so the probe would pass. The
    caller, who loads the page's tags anyway, hands them to ``settle``; only a predicate no
    shown trace proves is probed then (on chdb each probe is a query of ~15 ms on 100,000
    traces, benchmarks/README.md).
    """

    frag: Frag
    pending: list[Predicate]
    prober: Prober | None
    # Every predicate is on the trace's own columns (no tag, metadata or span); False for none.
    builtin_only: bool = False
    unsettled: list[Predicate] = dataclasses.field(default_factory=list)

    def finish(self) -> None:
        """Run the deferred probes (call when the search returned no rows), in source order."""
        waiting, self.pending = [*self.pending, *self.unsettled], []
        self._probe(waiting)

    def finish_unsettled(self) -> None:
        """Run the probes of ``unsettled`` alone, in source order (before reporting an error of
        the search itself, which the probes would have come before)."""
        self._probe(self.unsettled)

    def _probe(self, preds: list[Predicate]) -> None:
        """Probe ``preds`` in source order; none is left unsettled."""
        self.unsettled = []
        if self.prober is not None:
            for pred in sorted(preds, key=lambda p: p.op_start):
                self.prober.check(pred)

    def settle(self, tags: Iterable[Mapping[str, Any]]) -> None:
        """Probe what the result did not prove (call with the shown traces' current tags when
        the search returned rows; none when it returned none).

        The conjunct probes are proved by any row; an unsettled predicate is proved by a trace
        holding its key with a value of one of its literals' types. The rest are probed, in
        source order, as ``compile`` would have. At most ``SETTLE_TRACES`` traces are looked at.
        """
        rows = 0
        proven: set[int] = set()
        unsettled = [(id(p), p.field.key, _wanted(p)) for p in self.unsettled]
        for row_tags in itertools.islice(tags, SETTLE_TRACES):
            rows += 1
            for ident, key, wanted in unsettled:
                if ident not in proven and key in row_tags and json_type(row_tags[key]) in wanted:
                    proven.add(ident)
            if len(proven) == len(unsettled):
                break
        if rows == 0:
            self.finish()
            return
        self.pending = []
        self._probe([p for p in self.unsettled if id(p) not in proven])


SETTLE_TRACES = 1_000  # a key none of the first 1,000 shown traces holds is probed instead


def _wanted(pred: Predicate) -> set[str]:
    return {lit.type for lit in pred.values if lit.type != "null"}


def compile_filter_deferred(
    filter_string: str | None,
    con: Any,
    dialect: Dialect | None = None,
    *,
    defer: bool = True,
    settle: bool = False,
) -> CompiledFilter:
    """Parse and compile; with ``defer``, probes that a non-empty result proves unneeded wait;
    with ``settle`` too, the probes of tag predicates the shown traces' tags may prove
    (``CompiledFilter.settle``).

    ``con`` is the store's Runner; ``dialect`` defaults to the runner's."""
    con = as_runner(con)
    dialect = dialect or con.dialect
    if filter_string is None:
        return CompiledFilter(Frag("TRUE"), [], None)
    if not isinstance(filter_string, str):
        raise FilterError(f"a filter must be a string, got {type(filter_string).__name__}")
    node = parse(filter_string)
    if node is None:
        return CompiledFilter(Frag("TRUE"), [], None)
    return compile_ast(node, filter_string, con, dialect, defer=defer, settle=settle)


def compile_ast(
    node: Node,
    text: str,
    con: Any,
    dialect: Dialect,
    *,
    defer: bool = False,
    settle: bool = False,
) -> CompiledFilter:
    """Compile a parsed filter (see the module docstring for the three passes)."""
    con = as_runner(con)
    compiler = _Compiler(text, con, dialect)
    predicates = list(iter_predicates(node))
    for pred in predicates:
        compiler.check_static(pred)
    prober = Prober(con, dialect, text)
    for pred in predicates:
        if pred.op == "RLIKE":
            prober.check_regex(pred.values[0])
    probed = [p for p in predicates if p.field.family in _KEYED and p.op in _PROBED_OPS]
    deferrable = _positive_conjuncts(node) if defer else set()
    pending = [p for p in probed if id(p) in deferrable and p.op != "!=" and not p.negated]
    waiting = {id(p) for p in pending}
    unsettled = []
    if settle and defer:
        unsettled = [p for p in probed if p.field.family == "tag" and id(p) not in waiting]
        waiting |= {id(p) for p in unsettled}
    try:
        for pred in probed:
            if id(pred) not in waiting:
                prober.check(pred)
    except FilterError:
        for pred in probed:  # report the first error in source order, as without deferral
            prober.check(pred)
        raise
    builtin_only = all(p.field.family == "builtin" for p in predicates)
    return CompiledFilter(compiler.node(node), pending, prober, builtin_only, unsettled)


def _positive_conjuncts(node: Node) -> set[int]:
    """ids of predicates reached from the root through AND nodes only."""
    if isinstance(node, Predicate):
        return {id(node)}
    if isinstance(node, And):
        return set().union(*(_positive_conjuncts(c) for c in node.children))
    return set()


class _Compiler:
    def __init__(self, text: str, con: Any, dialect: Dialect) -> None:
        self.text = text
        self.con = con
        self.dialect = dialect
        # Literals of built-in fields after coercion ('3' -> 3 on numeric fields).
        self.coerced: dict[int, tuple[Literal, ...]] = {}

    def error(self, message: str, position: int) -> FilterError:
        return FilterError(message, self.text, position)

    # -- pass 1: static checks -------------------------------------------------------------
    def check_static(self, pred: Predicate) -> None:
        if pred.field.family in ("builtin", "span"):
            self.coerced[id(pred)] = self._check_builtin(pred, spec_of(pred.field))
        elif pred.op != "IS":
            self._check_json(pred)

    def _op_text(self, pred: Predicate) -> str:
        return self.text[pred.op_start : pred.op_end]

    def _null_message(self, pred: Predicate) -> str:
        """Built-in fields have no JSON null: point at IS NULL / IS NOT NULL instead."""
        field = pred.field.text
        op = self._op_text(pred)
        written = f"{op} (null)" if pred.op == "IN" else f"{op} null"
        return f"{field} {written} is never true: use {field} IS NULL or IS NOT NULL"

    def _check_json(self, pred: Predicate) -> None:
        op = pred.op
        for lit in pred.values:
            if op in _ORDERED and lit.type not in ("string", "number"):
                raise self.error(
                    f"{op} compares numbers or strings, not {lit.type}s"
                    + (": test null with = null or IS NULL" if lit.type == "null" else ""),
                    lit.start,
                )
            if op in PATTERN_OPS and op != "CONTAINS" and lit.type != "string":
                raise self.error(
                    f"{op} takes a quoted pattern, as in {pred.field.text} {op} '%{lit.text}%'",
                    lit.start,
                )

    def _check_builtin(self, pred: Predicate, spec: FieldSpec) -> tuple[Literal, ...]:
        field, op = pred.field.text, pred.op
        if op == "IS":
            return ()
        if spec.kind == "number":
            if op in PATTERN_OPS:
                raise self.error(
                    f"{op} works on text; {field} is a number (use =, !=, <, <=, >, >=, IN)",
                    pred.op_start,
                )
            return tuple(self._as_number(pred, lit) for lit in pred.values)
        for lit in pred.values:
            if lit.type == "null":
                raise self.error(self._null_message(pred), lit.start)
            if lit.type != "string":
                raise self.error(
                    f"{field} holds text: quote the value, as in {field} "
                    f"{self._op_text(pred)} '{lit.text}'",
                    lit.start,
                )
        if spec.kind in ("status", "span_status"):
            allowed = TRACE_STATUSES if spec.kind == "status" else SPAN_STATUSES
            if op in _ORDERED:
                raise self.error(f"{field} has no order; use =, !=, IN or NOT IN", pred.op_start)
            if op in ("=", "!=", "IN"):
                for lit in pred.values:
                    self._check_status(field, lit, allowed)
        return pred.values

    def _check_status(self, field: str, lit: Literal, allowed: tuple[str, ...]) -> None:
        value = str(lit.value)
        if value in allowed:
            return
        hint = _STATUS_SYNONYMS.get(value.upper()) or suggest(value.upper(), allowed)
        if hint not in allowed:
            hint = None
        names = ", ".join(f"'{a}'" for a in allowed)
        extra = f"; did you mean '{hint}'?" if hint else f"; it is one of {names}"
        raise self.error(f"{value!r} is not a {field} value{extra}", lit.start)

    def _as_number(self, pred: Predicate, lit: Literal) -> Literal:
        field = pred.field.text
        if lit.type == "number":
            return lit
        if lit.type == "string":
            number = number_value(str(lit.value).strip())
            if number is not None:
                return Literal("number", number, lit.start, lit.end, lit.text)
            raise self.error(f"{field} is a number; {lit.text} is not one", lit.start)
        if lit.type == "null":
            raise self.error(self._null_message(pred), lit.start)
        raise self.error(f"{field} is a number, not {_TYPE_NAMES[lit.type]}", lit.start)

    # -- pass 3: SQL -----------------------------------------------------------------------
    def node(self, node: Node) -> Frag:
        if isinstance(node, Predicate):
            if node.field.family in ("span", "span_attr"):
                return self.span_group([node])
            return self.trace_predicate(node)
        if isinstance(node, Not):
            return sql("(NOT COALESCE({}, FALSE))", self.node(node.child))
        if isinstance(node, Or):
            return sql("({})", Frag.join(" OR ", self.disjuncts(node)))
        return self.conjunction(node)

    def disjuncts(self, node: Or) -> list[Frag]:
        """The OR's children; those that compare one tag or metadata field (not IS) as one
        condition where the dialect can (``keyed_any``: a hundred ORs on one tag are one
        subquery on ClickHouse, not a hundred)."""
        same: dict[tuple[str, str, tuple[Any, ...]], list[Predicate]] = {}
        for child in node.children:
            if (
                isinstance(child, Predicate)
                and child.field.family in ("tag", "metadata")
                and child.op != "IS"
            ):
                field = child.field
                same.setdefault((field.family, field.key, field.candidates), []).append(child)
        # id of a merged group's first predicate -> the group's condition; of the others: None
        merged: dict[int, Frag | None] = {}
        for preds in same.values():
            cond = self.dialect.keyed_any(preds) if len(preds) > 1 else None
            if cond is not None:
                merged[id(preds[0])] = cond
                merged.update((id(p), None) for p in preds[1:])
        parts = []
        for child in node.children:
            if id(child) not in merged:
                parts.append(self.node(child))
            elif merged[id(child)] is not None:
                parts.append(merged[id(child)])  # type: ignore[arg-type]
        return parts

    def conjunction(self, node: And) -> Frag:
        """AND: the span predicates directly in it (parentheses flattened) share one span."""
        flat: list[Node] = []
        stack = list(reversed(node.children))
        while stack:
            child = stack.pop()
            if isinstance(child, And):
                stack.extend(reversed(child.children))
            else:
                flat.append(child)
        spans = [
            c for c in flat if isinstance(c, Predicate) and c.field.family in ("span", "span_attr")
        ]
        parts: list[Frag] = []
        for child in flat:
            if spans and child is spans[0]:
                parts.append(self.span_group(spans))
            elif not any(child is s for s in spans):
                parts.append(self.node(child))
        return sql("({})", Frag.join(" AND ", parts))

    def span_group(self, preds: list[Predicate]) -> Frag:
        conds = [self.span_condition(p) for p in preds]
        return sql(
            "t.trace_id IN (SELECT s.trace_id FROM spans s WHERE {})",
            Frag.join(" AND ", conds),
        )

    def span_condition(self, pred: Predicate) -> Frag:
        if pred.field.family == "span":
            spec = spec_of(pred.field)
            return self.builtin_condition(Frag(f"s.{spec.column}"), spec, pred)
        return self.json_condition(pred)

    def trace_predicate(self, pred: Predicate) -> Frag:
        if pred.field.family == "builtin":
            spec = spec_of(pred.field)
            return self.builtin_condition(Frag(f"t.{spec.column}"), spec, pred)
        return self.json_condition(pred)

    def json_condition(self, pred: Predicate) -> Frag:
        """A tag, metadata or span attribute predicate (``s`` is the span alias)."""
        own = self.dialect.keyed_condition(pred)
        if own is not None:
            return own
        field = pred.field
        pointer = single_path(field)
        doc_path = (field_document(field), pointer) if pointer is not None else None
        value = field_value(field, self.dialect)
        return json_predicate(self.dialect, value, pred, doc_path)

    def builtin_condition(self, column: Frag, spec: FieldSpec, pred: Predicate) -> Frag:
        op = pred.op
        if op == "IS":
            return sql("({} IS " + ("NOT NULL)" if pred.negated else "NULL)"), column)
        params = [_param(lit, spec) for lit in self.coerced[id(pred)]]
        if op == "IN":
            holes = ", ".join(["{}"] * len(params))
            word = "NOT IN" if pred.negated else "IN"
            return sql("({} " + word + " (" + holes + "))", column, *params)
        if op in PATTERN_OPS:
            cond = self.dialect.pattern(op, column, str(pred.values[0].value))
            return sql("(NOT {})", cond) if pred.negated else cond
        sql_op = "<>" if op == "!=" else op
        return sql("({} " + sql_op + " {})", column, params[0])


def _param(lit: Literal, spec: FieldSpec) -> Param:
    if spec.kind != "number":
        return Param(lit.value, "VARCHAR")
    if isinstance(lit.value, int) and not isinstance(lit.value, bool):
        return Param(lit.value, "BIGINT")
    return Param(float(lit.value), "DOUBLE")  # type: ignore[arg-type]
