"""A pure-Python reference for the filter language, written from DESIGN.md, not from the code.

Filters are built as small trees (``Pred``/``AndN``/``OrN``/``NotN``), rendered to filter text,
and evaluated here directly over ``TraceRow`` objects. The compiled SQL must agree with
``evaluate`` on every tree, including raising FilterError exactly when ``expects_error`` says a
typed comparison meets a key that holds values but none of the literal's type.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Union

from querytest_data import TraceRow

__all__ = [
    "AndN",
    "Lit",
    "NotN",
    "OrN",
    "Pred",
    "evaluate",
    "expects_error",
    "json_text",
    "json_type",
    "render",
    "sort_key",
]


@dataclass(frozen=True)
class Lit:
    type: str  # string | number | boolean | null
    value: Any
    style: int = 0  # how to write it (quote style, keyword case)


@dataclass(frozen=True)
class Pred:
    text: str  # the field as written
    family: str  # tag | metadata | span_attr | builtin | span
    key: str  # tag / span attribute key, or the builtin's canonical name
    path: tuple[str, ...]  # metadata: the dotted segments after "metadata."
    op: str  # = != < <= > >= LIKE ILIKE RLIKE CONTAINS STARTSWITH ENDSWITH IN IS
    values: tuple[Lit, ...] = ()
    negated: bool = False


@dataclass(frozen=True)
class AndN:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class OrN:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class NotN:
    child: Node


Node = Union[Pred, AndN, OrN, NotN]  # noqa: UP007

_MISSING = object()
_BUILTIN_ATTRS = {
    "trace_id": "trace_id",
    "name": "name",
    "status": "status",
    "timestamp_ms": "timestamp_ms",
    "execution_time_ms": "execution_time_ms",
    "span_count": "span_count",
    "service_name": "service_name",
}
_SPAN_ATTRS = {
    "span.name": "name",
    "span.type": "type",
    "span.status": "status",
    "span.execution_time_ms": "duration_ms",
}


# -- rendering ---------------------------------------------------------------------------------
def render_literal(lit: Lit) -> str:
    if lit.type == "null":
        return ("null", "NULL", "Null")[lit.style % 3]
    if lit.type == "boolean":
        word = "true" if lit.value else "false"
        return (word, word.upper(), word.title())[lit.style % 3]
    if lit.type == "number":
        return repr(lit.value)
    text = str(lit.value)
    style = lit.style % 3
    # Backslash-quote escaping only for texts without backslashes: a backslash before the quote
    # would otherwise be ambiguous (the language keeps every other backslash as written).
    if style == 1 and "\\" not in text:
        return "'" + text.replace("'", "\\'") + "'"
    if style == 2:
        return '"' + text.replace('"', '""') + '"'
    return "'" + text.replace("'", "''") + "'"


def render(node: Node, keyword_case: int = 0) -> str:
    """Filter text for a tree; parentheses only where precedence needs them (and for NOT)."""

    def kw(word: str) -> str:
        return (word, word.lower(), word.title())[keyword_case % 3]

    if isinstance(node, Pred):
        if node.op == "IS":
            return f"{node.text} {kw('IS')} {kw('NOT') + ' ' if node.negated else ''}{kw('NULL')}"
        if node.op == "IN":
            values = ", ".join(render_literal(v) for v in node.values)
            neg = kw("NOT") + " " if node.negated else ""
            return f"{node.text} {neg}{kw('IN')} ({values})"
        neg = kw("NOT") + " " if node.negated else ""
        op = kw(node.op) if node.op.isalpha() else node.op
        return f"{node.text} {neg}{op} {render_literal(node.values[0])}"
    if isinstance(node, NotN):
        inner = render(node.child, keyword_case)
        return f"{kw('NOT')} ({inner})"
    if isinstance(node, AndN):
        parts = []
        for child in node.children:
            text = render(child, keyword_case)
            parts.append(f"({text})" if isinstance(child, OrN) else text)
        return f" {kw('AND')} ".join(parts)
    return f" {kw('OR')} ".join(render(c, keyword_case) for c in node.children)


# -- JSON typing -------------------------------------------------------------------------------
def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def json_text(value: Any) -> str:
    """A string's own text, else the minified JSON text (as DuckDB writes it)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _equal(value: Any, lit: Lit) -> bool:
    if json_type(value) != lit.type:
        return False
    if lit.type == "number":
        return float(value) == float(lit.value)
    return value == lit.value


def _like(text: str, pattern: str, flags: int = 0) -> bool:
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, text, re.DOTALL | flags) is not None


def _pattern(op: str, text: str, pattern: str) -> bool:
    if op == "LIKE":
        return _like(text, pattern)
    if op == "ILIKE":
        return _like(text, pattern, re.IGNORECASE)
    if op == "RLIKE":
        return re.search(pattern, text) is not None
    if op == "STARTSWITH":
        return text.startswith(pattern)
    if op == "ENDSWITH":
        return text.endswith(pattern)
    return pattern in text  # CONTAINS on text


def _compare(op: str, a: Any, b: Any) -> bool:
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def json_holds(value: Any, pred: Pred) -> bool:
    """Whether a present JSON value satisfies the predicate (ignoring ``negated``)."""
    op = pred.op
    if op in ("=", "!="):
        equal = _equal(value, pred.values[0])
        return equal if op == "=" else not equal
    if op == "IN":
        return any(_equal(value, lit) for lit in pred.values)
    lit = pred.values[0]
    if op in ("<", "<=", ">", ">="):
        if json_type(value) != lit.type:
            return False
        if lit.type == "number":
            return _compare(op, float(value), float(lit.value))
        return _compare(op, value, lit.value)
    if op == "CONTAINS":
        if isinstance(value, list):
            return any(_equal(e, lit) for e in value)
        return lit.type == "string" and lit.value in json_text(value)
    return _pattern(op, json_text(value), str(lit.value))


def builtin_holds(value: Any, pred: Pred) -> bool:
    """Built-in columns: plain values; quoted numbers on numeric fields read as numbers."""
    op = pred.op
    lits = [v.value for v in pred.values]
    if isinstance(value, (int, float)):
        lits = [float(x) for x in lits]
        value = float(value)
    if op == "=":
        return value == lits[0]
    if op == "!=":
        return value != lits[0]
    if op == "IN":
        return value in lits
    if op in ("<", "<=", ">", ">="):
        return _compare(op, value, lits[0])
    return _pattern(op, value, str(lits[0]))


# -- resolution --------------------------------------------------------------------------------
def metadata_value(metadata: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    """The flat dotted key if present, else shorter keys with the rest as a JSON path."""
    if not metadata:
        return _MISSING
    for i in range(len(path), 0, -1):
        key = ".".join(path[:i])
        if key not in metadata:
            continue
        value = metadata[key]
        for part in path[i:]:
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                value = _MISSING
                break
        if value is not _MISSING:
            return value
    return _MISSING


def trace_value(trace: TraceRow, pred: Pred) -> Any:
    if pred.family == "tag":
        return (trace.tags or {}).get(pred.key, _MISSING)
    if pred.family == "metadata":
        return metadata_value(trace.metadata, pred.path)
    value = getattr(trace, _BUILTIN_ATTRS[pred.key])
    return _MISSING if value is None else value


def span_value(span: Any, pred: Pred) -> Any:
    if pred.family == "span_attr":
        return span.attributes.get(pred.key, _MISSING)
    value = getattr(span, _SPAN_ATTRS[pred.key])
    return _MISSING if value is None else value


def pred_holds(value: Any, pred: Pred) -> bool:
    if pred.op == "IS":
        return (value is not _MISSING) if pred.negated else (value is _MISSING)
    if value is _MISSING:
        return False
    family_json = pred.family in ("tag", "metadata", "span_attr")
    result = json_holds(value, pred) if family_json else builtin_holds(value, pred)
    return not result if pred.negated else result


# -- evaluation --------------------------------------------------------------------------------
def _is_span(node: Node) -> bool:
    return isinstance(node, Pred) and node.family in ("span", "span_attr")


def holds(node: Node, trace: TraceRow) -> bool:
    if isinstance(node, Pred):
        if _is_span(node):
            return any(pred_holds(span_value(s, node), node) for s in trace.spans)
        return pred_holds(trace_value(trace, node), node)
    if isinstance(node, NotN):
        return not holds(node.child, trace)
    if isinstance(node, OrN):
        return any(holds(c, trace) for c in node.children)
    flat: list[Node] = []
    stack = list(node.children)
    while stack:
        child = stack.pop(0)
        if isinstance(child, AndN):
            stack[:0] = list(child.children)
        else:
            flat.append(child)
    spans = [c for c in flat if _is_span(c)]
    others = [c for c in flat if not _is_span(c)]
    if spans and not any(
        all(pred_holds(span_value(s, p), p) for p in spans)  # type: ignore[arg-type]
        for s in trace.spans
    ):
        return False
    return all(holds(c, trace) for c in others)


def _preds(node: Node) -> list[Pred]:
    if isinstance(node, Pred):
        return [node]
    if isinstance(node, NotN):
        return _preds(node.child)
    return [p for c in node.children for p in _preds(c)]


def held_types(pred: Pred, traces: list[TraceRow]) -> set[str]:
    if pred.family == "span_attr":
        values = [span_value(s, pred) for t in traces for s in t.spans]
    else:
        values = [trace_value(t, pred) for t in traces]
    return {json_type(v) for v in values if v is not _MISSING} - {"null"}


def expects_error(node: Node, traces: list[TraceRow]) -> bool:
    """True when a typed comparison meets a key holding values but none of its type."""
    for pred in _preds(node):
        if pred.family not in ("tag", "metadata", "span_attr"):
            continue
        if pred.op not in ("=", "!=", "<", "<=", ">", ">=", "IN"):
            continue
        wanted = {lit.type for lit in pred.values} - {"null"}
        held = held_types(pred, traces)
        if wanted and held and not (held & wanted):
            return True
    return False


def evaluate(node: Node, traces: list[TraceRow]) -> set[str]:
    return {t.trace_id for t in traces if holds(node, t)}


# -- ordering ----------------------------------------------------------------------------------
class _Desc:
    """Inverts the order of a value inside a sort key tuple."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and other.value == self.value


def _part(value: Any, descending: bool) -> tuple[Any, ...]:
    """(is missing, value) with missing last in both directions."""
    if value is None:
        return (1, 0)
    return (0, _Desc(value) if descending else value)


def sort_key(trace: TraceRow, items: list[tuple[str, str, bool]]) -> tuple[Any, ...]:
    """The reference order: items are (family, key-or-dotted-path, descending).

    JSON values sort by type rank (numbers, strings, booleans, others; missing last), then the
    number, then the text; then timestamp_ms DESC and trace_id ASC.
    """
    parts: list[Any] = []
    for family, key, descending in items:
        if family == "builtin":
            parts.extend(_part(getattr(trace, key), descending))
            continue
        if family == "tag":
            value = (trace.tags or {}).get(key, _MISSING)
        else:
            value = metadata_value(trace.metadata, tuple(key.split(".")))
        if value is _MISSING:
            parts.extend([(1, 0), (1, 0), (1, 0)])
            continue
        kind = json_type(value)
        rank = {"number": 0, "string": 1, "boolean": 2}.get(kind, 3)
        number = float(value) if kind == "number" else None
        text = None if kind == "number" else json_text(value)
        parts.extend([(0, rank), _part(number, descending), _part(text, descending)])
    parts.extend(_part(trace.timestamp_ms, True))
    parts.append(trace.trace_id)
    return tuple(parts)
