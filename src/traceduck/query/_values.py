"""Typed comparisons on JSON-valued fields: tags, metadata and span attributes.

All three are JSON values inside a JSON document (``traces.tags``, ``traces.metadata``,
``spans.attributes``), so the typing rules are written once here: ``=``/``!=`` compare type and
value, ordered operators only see values of the literal's type, pattern operators read a
non-string by its JSON text, CONTAINS is membership on a list and substring otherwise, and a
missing key makes every comparison false (also ``!=`` and ``NOT IN``).

Cost model: parsing the document dominates. Each predicate therefore extracts its value once and
binds it to a lambda variable (``[cond FOR v IN [value]][1]``) that the condition may use many
times. The most common filters take cheaper paths without the lambda: string equality
(``tags.env = 'prod'``) as ``json_extract_string(doc, path) = 'prod'``, which is type-exact
whenever the literal is not itself valid JSON text (any non-string value's text is valid JSON);
number comparisons (``tags.cost > 3``) by casting the value's JSON *text* to a number, which
fails (NULL) for strings (quoted), booleans, null, lists and objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ._ast import FieldRef, Literal, Predicate
from ._dialect import Dialect, Frag, Param, json_pointer, sql

__all__ = [
    "JsonAccess",
    "field_document",
    "field_value",
    "json_predicate",
    "single_path",
    "value_condition",
]

VALUE_VAR = "__td_v"


def metadata_value(field: FieldRef, dialect: Dialect, alias: str = "t") -> Frag:
    """The latest metadata value a field names: the flat dotted key if present, else key+path."""
    doc = Frag(f"{alias}.metadata")
    gets = [dialect.json_get(doc, json_pointer(key, path)) for key, path in field.candidates]
    if len(gets) == 1:
        return gets[0]
    return sql("COALESCE(" + ", ".join(["{}"] * len(gets)) + ")", *gets)


def field_document(field: FieldRef, trace_alias: str = "t", span_alias: str = "s") -> Frag:
    """The JSON document a keyed field reads from."""
    if field.family == "tag":
        return Frag(f"{trace_alias}.tags")
    if field.family == "metadata":
        return Frag(f"{trace_alias}.metadata")
    return Frag(f"{span_alias}.attributes")


def field_value(field: FieldRef, dialect: Dialect, alias: str = "t") -> Frag:
    """The JSON value of a tag, metadata or span attribute field (SQL NULL when missing)."""
    if field.family == "metadata":
        return metadata_value(field, dialect, alias)
    if field.family == "tag":
        return dialect.json_get(Frag(f"{alias}.tags"), json_pointer(field.key))
    return dialect.json_get(Frag("s.attributes"), json_pointer(field.key))


def single_path(field: FieldRef) -> str | None:
    """The JSON pointer when the field is one plain extraction (no metadata fallbacks)."""
    if field.family == "metadata":
        if len(field.candidates) != 1:
            return None
        key, path = field.candidates[0]
        return json_pointer(key, path)
    return json_pointer(field.key)


@dataclass(frozen=True)
class JsonAccess:
    """How to read one JSON value (``value``: SQL NULL when the key is missing)."""

    dialect: Dialect
    value: Frag

    def is_type(self, json_type: str) -> Frag:
        return self.dialect.json_is(self.value, json_type)

    def string(self) -> Frag:
        return self.dialect.json_string(self.value)

    def number(self) -> Frag:
        return self.dialect.json_number(self.value)

    def text(self) -> Frag:
        return self.dialect.json_text(self.value)

    def array_has(self, json_type: str, value: object) -> Frag:
        """Whether the value is an array holding an element of ``json_type`` equal to
        ``value`` (NULL or false otherwise)."""
        return self.dialect.json_array_has(self.value, json_type, value)


def json_predicate(
    dialect: Dialect, value: Frag, pred: Predicate, doc_path: tuple[Frag, str] | None = None
) -> Frag:
    """SQL that is true exactly when ``pred`` holds for the JSON ``value``.

    ``doc_path`` (document, JSON pointer) is given when ``value`` is one plain extraction, which
    enables the string-equality shortcut.
    """
    if pred.op == "IS":
        return sql("({} IS NOT NULL)" if pred.negated else "({} IS NULL)", value)
    if _plain_match(pred, "string"):
        if doc_path is not None:
            doc, pointer = doc_path
            text = sql("json_extract_string({}, {})", doc, Param(pointer, "VARCHAR"))
        else:
            text = dialect.json_string(value)
        params = [Param(lit.value, "VARCHAR") for lit in pred.values]
        if len(params) == 1:
            # ``x = ?``, not ``x IN (?)``: DuckDB runs the one-element IN list ~20% slower
            # (measured on 100k traces; benchmarks/suites/search.py).
            return sql("({} = {})", text, params[0])
        holes = ", ".join(["{}"] * len(params))
        return sql("({} IN (" + holes + "))", text, *params)
    if _plain_match(pred, "number"):
        number = dialect.json_number_exact(value)
        params = [_number(lit.value) for lit in pred.values]
        if pred.op == "IN":
            return sql("({} IN (" + ", ".join(["{}"] * len(params)) + "))", number, *params)
        return sql("({} " + pred.op + " {})", number, params[0])
    var = Frag(VALUE_VAR)
    cond = value_condition(JsonAccess(dialect, var), pred, dialect)
    if pred.op == "!=" or pred.negated:
        cond = sql("({} IS NOT NULL AND {})", var, cond)  # a missing key is never "not equal"
    return sql("[{} FOR " + VALUE_VAR + " IN [{}]][1]", cond, value)


def _plain_match(pred: Predicate, json_type: str) -> bool:
    """Whether one cheap, type-exact expression decides ``pred`` (see the module docstring).

    Strings: ``=``/``IN`` whose literals cannot be the JSON text of a non-string. Numbers:
    ``= < <= > >= IN`` with number literals, read through ``json_number_exact``.
    """
    if pred.negated or not all(lit.type == json_type for lit in pred.values):
        return False
    if json_type == "number":
        return pred.op in ("=", "<", "<=", ">", ">=", "IN")
    if pred.op not in ("=", "IN"):
        return False
    for lit in pred.values:
        try:
            json.loads(str(lit.value))
        except ValueError:
            continue
        return False
    return True


def _not(cond: Frag) -> Frag:
    """Two-valued negation: NULL (unknown) counts as false before negating."""
    return sql("NOT COALESCE({}, FALSE)", cond)


def _number(value: object) -> Param:
    return Param(float(value) + 0.0, "DOUBLE")  # type: ignore[arg-type]  # -0.0 is 0.0


def _equal(acc: JsonAccess, lit: Literal) -> Frag:
    if lit.type == "null":
        return acc.is_type("null")
    if lit.type == "boolean":
        flag = Param("true" if lit.value else "false", "VARCHAR")
        return sql("({} AND {} = {})", acc.is_type("boolean"), acc.text(), flag)
    if lit.type == "number":
        return sql("({} AND {} = {})", acc.is_type("number"), acc.number(), _number(lit.value))
    text = Param(lit.value, "VARCHAR")
    return sql("({} AND {} = {})", acc.is_type("string"), acc.string(), text)


def _equal_any(acc: JsonAccess, lits: tuple[Literal, ...]) -> Frag:
    """``IN``: equal to one of the literals; literals of one type share one SQL IN list."""
    parts: list[Frag] = []
    groups = (
        ("string", acc.string(), [Param(x.value, "VARCHAR") for x in lits if x.type == "string"]),
        ("number", acc.number(), [_number(x.value) for x in lits if x.type == "number"]),
    )
    for json_type, column, params in groups:
        if params:
            holes = ", ".join(["{}"] * len(params))
            template = "({} AND {} IN (" + holes + "))"
            parts.append(sql(template, acc.is_type(json_type), column, *params))
    for flag in sorted({bool(x.value) for x in lits if x.type == "boolean"}):
        parts.append(_equal(acc, Literal("boolean", flag, 0, 0, "")))
    if any(x.type == "null" for x in lits):
        parts.append(acc.is_type("null"))
    return sql("({})", Frag.join(" OR ", parts))


def _contains(acc: JsonAccess, lit: Literal, dialect: Dialect) -> Frag:
    """CONTAINS: membership in a list; substring of a string (or of another value's JSON)."""
    member = acc.array_has(lit.type, lit.value)
    in_list = sql("({} AND COALESCE({}, FALSE))", acc.is_type("array"), member)
    if lit.type != "string":
        return in_list
    substring = dialect.pattern("CONTAINS", acc.text(), str(lit.value))
    return sql("({} OR (NOT {} AND {}))", in_list, acc.is_type("array"), substring)


def value_condition(acc: JsonAccess, pred: Predicate, dialect: Dialect) -> Frag:
    """The condition on a present value (presence itself is the caller's business)."""
    op, lits = pred.op, pred.values
    if op == "IN":
        cond = _equal_any(acc, lits)
        return _not(cond) if pred.negated else cond
    lit = lits[0]
    if op == "=":
        return _equal(acc, lit)
    if op == "!=":
        return _not(_equal(acc, lit))
    if op in ("<", "<=", ">", ">="):
        template = "({} AND {} " + op + " {})"  # op is one of ours, never user text
        if lit.type == "number":
            return sql(template, acc.is_type("number"), acc.number(), _number(lit.value))
        text = Param(lit.value, "VARCHAR")
        return sql(template, acc.is_type("string"), acc.string(), text)
    if op == "CONTAINS":
        cond = _contains(acc, lit, dialect)
    else:
        cond = dialect.pattern(op, acc.text(), str(lit.value))
    return _not(cond) if pred.negated else cond
