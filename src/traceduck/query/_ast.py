"""The filter AST: what the parser builds and the compiler (and tests) walk.

Nodes keep source positions so that errors found late (a type mismatch found by probing the
store) still point at the right character.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal as TypingLiteral
from typing import Union

__all__ = [
    "And",
    "FieldFamily",
    "FieldRef",
    "Literal",
    "LiteralType",
    "Node",
    "Not",
    "Or",
    "Predicate",
    "iter_predicates",
]

LiteralType = TypingLiteral["string", "number", "boolean", "null"]

# builtin: a column of ``traces``; tag / metadata: keyed trace values; span: a column of
# ``spans``; span_attr: a key of ``spans.attributes``.
FieldFamily = TypingLiteral["builtin", "tag", "metadata", "span", "span_attr"]


@dataclass(frozen=True)
class Literal:
    """A value as written: its JSON type, the Python value, where it stands and its raw text.

    The type is the type written (``'3'`` is a string): typed comparisons depend on it, and only
    the compiler decides that a quoted number on a numeric built-in field reads as a number.
    """

    type: LiteralType
    value: str | int | float | bool | None
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class FieldRef:
    """A resolved field.

    ``name`` is the canonical built-in name for builtin/span fields (``timestamp_ms``,
    ``span.type``...). ``key`` is the tag key or span attribute key. For metadata,
    ``candidates`` lists (top-level key, JSON path) pairs to try in order: the flat dotted key
    first, then ever shorter keys with the rest as a path.
    """

    family: FieldFamily
    name: str
    text: str
    start: int
    end: int
    key: str = ""
    candidates: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Predicate:
    """``field op value(s)``.

    ``op`` is one of ``= != < <= > >= LIKE ILIKE RLIKE CONTAINS STARTSWITH ENDSWITH IN IS``;
    ``negated`` turns IN into NOT IN, IS NULL into IS NOT NULL and a pattern operator into its
    NOT form (which, like NOT IN, is false on a missing key).
    """

    field: FieldRef
    op: str
    values: tuple[Literal, ...]
    negated: bool
    op_start: int
    op_end: int


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node
    start: int


Node = Union[Predicate, And, Or, Not]  # noqa: UP007 - a runtime alias, also used on 3.10


def iter_predicates(node: Node) -> Iterator[Predicate]:
    """Every predicate of the tree, in source order."""
    if isinstance(node, Predicate):
        yield node
    elif isinstance(node, Not):
        yield from iter_predicates(node.child)
    else:
        for child in node.children:
            yield from iter_predicates(child)
