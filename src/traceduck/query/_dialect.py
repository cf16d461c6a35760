"""SQL fragments with bound parameters, and the dialect object the compiler targets.

Every piece of SQL the compiler builds is a ``Frag``: text with ``?`` placeholders plus the
values bound to them, in order. Composing fragments keeps text and parameters in step, so no
user text (values, tag keys, JSON paths) is ever pasted into SQL.

The ``Dialect`` holds every engine-specific spelling (JSON access, regex, type names), so a
second engine (ClickHouse, say) is a second Dialect, not a second compiler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._ast import FieldRef, Predicate

__all__ = ["DUCKDB", "Dialect", "Frag", "JsonType", "json_pointer", "sql"]

JsonType = str  # 'string' | 'number' | 'boolean' | 'null' | 'array' | 'object'


@dataclass(frozen=True)
class Frag:
    """SQL text and its bound parameters."""

    text: str
    params: tuple[Any, ...] = ()

    def __add__(self, other: Frag) -> Frag:
        return Frag(self.text + other.text, self.params + other.params)

    @staticmethod
    def join(sep: str, frags: list[Frag] | tuple[Frag, ...]) -> Frag:
        """``sep.join`` over fragments, keeping the parameters in order."""
        return Frag(sep.join(f.text for f in frags), tuple(p for f in frags for p in f.params))


class Param:
    """A value to bind, rendered as ``CAST(? AS type)`` so its type never depends on context."""

    __slots__ = ("sql_type", "value")

    def __init__(self, value: Any, sql_type: str) -> None:
        self.value = value
        self.sql_type = sql_type


def sql(template: str, *parts: Frag | Param | str) -> Frag:
    """Fill each ``{}`` of ``template`` with a fragment, a Param, or our own (trusted) SQL text."""
    pieces = template.split("{}")
    if len(pieces) != len(parts) + 1:
        raise ValueError(f"template {template!r} takes {len(pieces) - 1} parts, got {len(parts)}")
    text = [pieces[0]]
    params: list[Any] = []
    for part, piece in zip(parts, pieces[1:], strict=True):
        if isinstance(part, Frag):
            text.append(part.text)
            params.extend(part.params)
        elif isinstance(part, Param):
            text.append(f"CAST(? AS {part.sql_type})")
            params.append(part.value)
        else:
            text.append(part)
        text.append(piece)
    return Frag("".join(text), tuple(params))


def json_pointer(key: str, path: tuple[str, ...] = ()) -> str:
    """An RFC 6901 JSON pointer to ``key`` then ``path``: any key text is safe as a parameter."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in (key, *path))


@dataclass(frozen=True)
class Dialect:
    """Engine-specific SQL spellings used by the compiler and the search builder."""

    name: str
    # The engine's names for each JSON type, as reported by its json-type function.
    json_type_names: dict[str, tuple[str, ...]]
    # The FROM item of the trace table, aliased ``t``.
    traces_from: str = "traces t"
    # Whether rows can be fetched back by ``rowid`` (late materialisation of a page).
    has_rowid: bool = True

    def render(self, frag: Frag) -> tuple[str, Any]:
        """The SQL text and parameters in the form the engine's client takes."""
        return frag.text, list(frag.params)

    def probe_source(self, field: FieldRef) -> tuple[Frag, Frag]:
        """(FROM item, JSON value) over which the type probes of a keyed field run."""
        from ._values import field_value

        table = "spans s" if field.family == "span_attr" else "traces t"
        return Frag(table), field_value(field, self)

    def holds_type(self, field: FieldRef, wanted: set[str]) -> Frag | None:
        """A quick query that returns a row only if ``field`` holds a value of one of the
        ``wanted`` JSON types (a sure "yes" for the type probe, which then asks nothing more;
        no row decides nothing), or None when the engine has no quicker way than the probe's."""
        return None

    def keyed_condition(self, pred: Predicate) -> Frag | None:
        """The SQL of a tag, metadata or span attribute predicate, or None for the default
        (one JSON extraction per predicate, see ``_values.json_predicate``)."""
        return None

    def keyed_any(self, preds: list[Predicate]) -> Frag | None:
        """One condition for an OR of predicates on the same tag or metadata field (none of
        them IS), where the engine reads a field through a subquery of its own, or None: each
        predicate then compiles on its own (``keyed_condition``)."""
        return None

    def order_value(self, field: FieldRef, index: int) -> tuple[Frag, Frag | None]:
        """(JSON value of a tag or metadata field to sort by, a join it needs or None)."""
        from ._values import field_value

        return field_value(field, self), None

    def json_get(self, doc: Frag, pointer: str) -> Frag:
        """The JSON value at ``pointer`` in ``doc``; SQL NULL when absent, JSON null kept."""
        return sql("json_extract({}, {})", doc, Param(pointer, "VARCHAR"))

    def json_is(self, value: Frag, json_type: JsonType) -> Frag:
        """Whether a JSON value has one of our JSON types (NULL when the value is missing)."""
        names = ", ".join(f"'{n}'" for n in self.json_type_names[json_type])
        return sql("json_type({}) IN (" + names + ")", value)

    def json_type_of(self, value: Frag) -> Frag:
        """The engine's type name of a JSON value (for probes)."""
        return sql("json_type({})", value)

    def json_type_from_engine(self, engine_name: str) -> JsonType:
        """Our JSON type name for the engine's (any integer or float width is a number)."""
        for ours, names in self.json_type_names.items():
            if engine_name in names:
                return ours
        return "number"

    def json_string(self, value: Frag) -> Frag:
        """The text of a JSON string (only meaningful where the value is a string)."""
        return sql("({} ->> '$')", value)

    def json_number(self, value: Frag) -> Frag:
        """A JSON number as DOUBLE (only meaningful where the value is a number)."""
        return sql("TRY_CAST({} AS DOUBLE)", value)

    def json_number_exact(self, value: Frag) -> Frag:
        """The number a JSON value holds, NULL for every other type (one extraction).

        Casting the JSON *text* to DOUBLE fails for strings (their text is quoted), booleans,
        null, lists and objects; a JSON-to-DOUBLE cast would read ``"5"`` and ``true``.
        """
        return sql("TRY_CAST(CAST({} AS VARCHAR) AS DOUBLE)", value)

    def json_text(self, value: Frag) -> Frag:
        """A string's own text, or the JSON text of any other value (for pattern operators).

        A number's text is Python's JSON text of it on every engine: an integer's digits, a
        float's ``repr`` (``1e-07``, ``1e+21``, ``-0.0``). DuckDB writes JSON floats its own way
        (``1e-7``, ``1e21``) but casts a DOUBLE to Python's form; a DOUBLE without ``.`` or an
        exponent is an integer beyond 64 bits, kept as written."""
        return sql(
            "(CASE json_type({}) WHEN 'VARCHAR' THEN {} ->> '$' WHEN 'DOUBLE' THEN "
            "(CASE WHEN regexp_matches(CAST({} AS VARCHAR), '[.eE]') "
            "THEN CAST(CAST({} AS DOUBLE) AS VARCHAR) ELSE CAST({} AS VARCHAR) END) "
            "ELSE CAST({} AS VARCHAR) END)",
            *[value] * 6,
        )

    def json_array_has(self, array: Frag, json_type: JsonType, value: Any) -> Frag:
        """Whether the JSON array holds an element of ``json_type`` equal to ``value``."""
        names = ", ".join(f"'{n}'" for n in self.json_type_names[json_type])
        elements = sql("json_extract({}, '$[*]')", array)
        e = "__td_e"  # lambda variable; cannot clash with a column
        if json_type == "null":
            return sql(f"list_contains([json_type({e}) FOR {e} IN {{}}], 'NULL')", elements)
        if json_type == "number":
            template = (
                f"list_contains([TRY_CAST({e} AS DOUBLE) FOR {e} IN {{}} "
                f"IF json_type({e}) IN ({names})], {{}})"
            )
            return sql(template, elements, Param(float(value), "DOUBLE"))
        if json_type == "boolean":
            template = (
                f"list_contains([CAST({e} AS VARCHAR) FOR {e} IN {{}} "
                f"IF json_type({e}) = 'BOOLEAN'], {{}})"
            )
            return sql(template, elements, Param("true" if value else "false", "VARCHAR"))
        template = (
            f"list_contains([{e} ->> '$' FOR {e} IN {{}} IF json_type({e}) = 'VARCHAR'], {{}})"
        )
        return sql(template, elements, Param(value, "VARCHAR"))

    def pattern(self, op: str, text: Frag, pattern: str) -> Frag:
        """A pattern operator on text; LIKE has no escape character, RLIKE is unanchored."""
        p = Param(pattern, "VARCHAR")
        template = {
            "LIKE": "({} LIKE {})",
            "ILIKE": "({} ILIKE {})",
            "RLIKE": "regexp_matches({}, {})",
            "CONTAINS": "contains({}, {})",
            "STARTSWITH": "starts_with({}, {})",
            "ENDSWITH": "ends_with({}, {})",
        }[op]
        return sql(template, text, p)

    def regex_check(self) -> str:
        """A query that fails when its one parameter is not a valid regular expression."""
        return "SELECT regexp_matches('', CAST(? AS VARCHAR))"


DUCKDB = Dialect(
    name="duckdb",
    json_type_names={
        "string": ("VARCHAR",),
        "number": ("BIGINT", "UBIGINT", "DOUBLE", "HUGEINT", "UHUGEINT", "INTEGER"),
        "boolean": ("BOOLEAN",),
        "null": ("NULL",),
        "array": ("ARRAY",),
        "object": ("OBJECT",),
    },
)
