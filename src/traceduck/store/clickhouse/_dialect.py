"""The filter language in ClickHouse SQL: the same rules, the same matches as on DuckDB.

JSON values are JSON text here (``Nullable(String)``), read with ClickHouse's ``JSON*``
functions (``JSONType`` guards every read, since ``JSONExtractFloat`` also reads numeric
strings). Tags are not JSON documents but events (``_sql.current_tags``) with typed columns, so
a tag predicate is a semi-join on the current tag rows of one key whose condition reads the
column of the literal's type: ``tags.cost > 3`` is ``value_type = 'number' AND value_num > 3``
and a trace without the key is in no row, so a missing key is never 0 or ''. Metadata is the
latest entry per key (``_sql.current_metadata``), read by JSON path.

Bound parameters: the compiler's ``CAST(? AS TYPE)`` placeholders become ClickHouse's
server-side ``{pN:Type}`` parameters in ``render``; no user text is pasted into SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...query._ast import FieldRef, Predicate
from ...query._dialect import Dialect, Frag, JsonType, Param, sql
from ...query._values import JsonAccess, value_condition
from ._numbers import bare_bigint, float_text, is_number, is_string, number_text
from ._sql import current_metadata, current_tags, stale_claims

__all__ = ["CLICKHOUSE", "ClickHouseDialect"]

_TYPES = {"VARCHAR": "String", "DOUBLE": "Float64", "BIGINT": "Int64"}
_PLACEHOLDER = re.compile(r"CAST\(\? AS (VARCHAR|DOUBLE|BIGINT)\)")


def _key(key: str) -> Param:
    return Param(key, "VARCHAR")


def _path(field: FieldRef) -> list[tuple[str, tuple[str, ...]]]:
    if field.family == "metadata":
        return list(field.candidates)
    return [(field.key or "", ())]


def _json_at(doc: Frag, parts: tuple[str, ...]) -> Frag:
    """The JSON text at ``parts`` in ``doc`` (NULL when absent), as a JSON pointer reads it: a
    part of digits is an array index (from 0) in an array, a key in an object. Every read goes
    to the stored text ``doc`` with the whole path (``_at``), never to a value ClickHouse
    extracted and wrote back, which has lost what ``_at`` needs."""
    if not parts:
        return sql("toNullable({})", doc)
    return _path_at(doc, [], parts)


def _path_at(doc: Frag, path: list[Param], rest: tuple[str, ...]) -> Frag:
    if not rest:
        return _at(doc, path)
    part, rest = rest[0], rest[1:]
    by_key = _path_at(doc, [*path, Param(part, "VARCHAR")], rest)
    if not (part.isdigit() and part.isascii() and (part == "0" or not part.startswith("0"))):
        return by_key
    by_index = _path_at(doc, [*path, Param(int(part) + 1, "BIGINT")], rest)
    return sql("if({} = 'Array', {}, {})", _call("JSONType", doc, path), by_index, by_key)


def _call(function: str, doc: Frag, path: list[Param]) -> Frag:
    return sql(function + "({}" + ", {}" * len(path) + ")", doc, *path)


def _at(doc: Frag, path: list[Param]) -> Frag:
    """The value at ``path`` in the stored JSON text ``doc``, NULL when absent. ClickHouse
    writes an extracted float its own way, a whole one as an integer (``100``, ``-0``): such a
    float is given its ``.0`` back, as Python wrote it; an integer beyond 64 bits is bare."""
    # The extracted text is bound once (a lambda over a one-element array): written out at
    # each use, ClickHouse extracts it again for each (measured 3x slower on span attributes).
    raw = Frag("__r")
    return sql(
        "arrayMap(__r -> multiIf(__r = '', NULL, match(__r, '^-{0,1}[0-9]+$') AND {} = 'Double', "
        "concat(__r, '.0'), {}), [{}])[1]",
        _call("JSONType", doc, path), bare_bigint(raw, doc), _call("JSONExtractRaw", doc, path),
    )  # fmt: skip


class TagAccess(JsonAccess):
    """A tag event row of ``td_tag_events``: typed columns instead of JSON parsing."""

    def is_type(self, json_type: str) -> Frag:
        return sql("(value_type = {})", Param(json_type, "VARCHAR"))

    def string(self) -> Frag:
        return Frag("value_str")

    def number(self) -> Frag:
        return Frag("(value_num + 0.)")  # -0.0 as 0.0: ClickHouse's IN and has() tell them apart

    def text(self) -> Frag:
        raw = Frag("ifNull(new_value, '')")
        number = sql("if(match({}, '[.eE]'), {}, {})", raw, float_text(Frag("value_num")), raw)
        return sql("multiIf(value_type = 'string', value_str, value_type = 'number', {}, {})",
                   number, raw)  # fmt: skip

    def array_has(self, json_type: str, value: Any) -> Frag:
        return array_has(self.value, self.value, json_type, value)


@dataclass(frozen=True)
class DocAccess(JsonAccess):
    """A value read out of the stored JSON text ``doc`` (metadata, span attributes): list
    elements are read against the document (``_numbers.bare_bigint``)."""

    doc: Frag | None = None

    def array_has(self, json_type: str, value: Any) -> Frag:
        return array_has(self.value, self.doc or self.value, json_type, value)


def array_has(array: Frag, doc: Frag, json_type: str, value: Any) -> Frag:
    """Whether the JSON array (read out of ``doc``) holds an element of ``json_type`` equal to
    ``value``."""
    items = sql("arrayMap(x -> {}, JSONExtractArrayRaw(ifNull({}, '')))",
                bare_bigint(Frag("x"), doc), array)  # fmt: skip
    if json_type == "null":
        return sql("has(arrayMap(x -> JSONType(x), {}), 'Null')", items)
    if json_type == "number":
        return sql(
            "has(arrayMap(x -> JSONExtractFloat(x) + 0., arrayFilter(x -> {}, {})), {})",
            is_number(Frag("x")), items, Param(float(value) + 0.0, "DOUBLE"),
        )  # fmt: skip
    if json_type == "boolean":
        return sql(
            "has(arrayFilter(x -> JSONType(x) = 'Bool', {}), {})",
            items, Param("true" if value else "false", "VARCHAR"),
        )  # fmt: skip
    return sql(
        "has(arrayMap(x -> JSONExtractString(x), arrayFilter(x -> {}, {})), {})",
        is_string(Frag("x")), items, Param(value, "VARCHAR"),
    )  # fmt: skip


@dataclass(frozen=True)
class ClickHouseDialect(Dialect):
    def render(self, frag: Frag) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {}
        names: dict[tuple[str, type, Any], str] = {}
        values = iter(frag.params)
        bound = 0

        def bind(match: re.Match[str]) -> str:
            # One name per distinct value: the same expression (a JSON read of one key, say)
            # is then the same text wherever it stands, and ClickHouse computes it once.
            nonlocal bound
            value = next(values)
            bound += 1
            ch_type = _TYPES[match.group(1)]
            name = names.setdefault((ch_type, type(value), value), f"p{len(names)}")
            params[name] = value
            return "{" + name + ":" + ch_type + "}"

        text = _PLACEHOLDER.sub(bind, frag.text)
        if bound != len(frag.params) or "?" in _PLACEHOLDER.sub("", frag.text):
            raise AssertionError(f"unbound placeholder in {frag.text!r}")  # our bug, not user's
        return text, params

    # -- JSON text --------------------------------------------------------------------------
    def json_get(self, doc: Frag, pointer: str) -> Frag:
        raise NotImplementedError("ClickHouse reads keyed fields through keyed_condition")

    def json_is(self, value: Frag, json_type: JsonType) -> Frag:
        if json_type == "number":
            return is_number(value)
        if json_type == "string":
            return is_string(value)
        name = {"boolean": "Bool", "null": "Null", "array": "Array", "object": "Object"}[json_type]
        return sql("(JSONType({}) = '" + name + "')", value)

    def json_type_of(self, value: Frag) -> Frag:
        return sql("if({}, 'Double', JSONType({}))", is_number(value), value)

    def json_string(self, value: Frag) -> Frag:
        return sql("JSONExtractString({})", value)

    def json_number(self, value: Frag) -> Frag:
        # + 0.: -0.0 as 0.0, which ClickHouse's IN and has() tell apart (= does not)
        return sql("(JSONExtractFloat({}) + 0.)", value)

    def json_number_exact(self, value: Frag) -> Frag:
        return sql("if({}, JSONExtractFloat({}) + 0., NULL)", is_number(value), value)

    def json_text(self, value: Frag) -> Frag:
        return sql(
            "multiIf({}, JSONExtractString({}), {}, {}, {})",
            is_string(value), value, is_number(value), number_text(value), value,
        )  # fmt: skip

    def json_array_has(self, array: Frag, json_type: JsonType, value: Any) -> Frag:
        return array_has(array, array, json_type, value)

    def pattern(self, op: str, text: Frag, pattern: str) -> Frag:
        if op in ("LIKE", "ILIKE"):
            # ClickHouse's LIKE escapes with a backslash; the language has no escape character,
            # so a backslash in the pattern stands for itself.
            p = Param(pattern.replace("\\", "\\\\"), "VARCHAR")
            return sql("like({}, {})" if op == "LIKE" else "ilike({}, {})", text, p)
        template = {
            "RLIKE": "match({}, {})",
            "CONTAINS": "(position({}, {}) > 0)",
            "STARTSWITH": "startsWith({}, {})",
            "ENDSWITH": "endsWith({}, {})",
        }[op]
        return sql(template, text, Param(pattern, "VARCHAR"))

    def regex_check(self) -> str:
        return "SELECT match('', CAST(? AS VARCHAR))"

    # -- keyed fields ------------------------------------------------------------------------
    def _source(self, field: FieldRef) -> tuple[Frag, Frag]:
        """(a subquery of (trace_id, value) with a row per trace holding the field, value as
        JSON text) for tags and metadata; metadata rows also have ``doc``, the stored JSON text
        the value was read from."""
        if field.family == "tag":
            template = f"({current_tags('key = {}')})"
            rows = sql(template, *[_key(field.key or "")] * template.count("{}"))
            return rows, Frag("c.value")
        candidates = _path(field)
        keys = [key for key, _ in candidates]
        holes = ", ".join(["{}"] * len(keys))
        template = f"({current_metadata('key IN (' + holes + ')')})"
        repeat = template.count("{}") // len(keys)
        latest = sql(template, *[_key(k) for k in keys] * repeat)
        if len(candidates) == 1:
            _, parts = candidates[0]
            value = _json_at(Frag("m.value"), parts)
            table = sql(
                "(SELECT m.trace_id AS trace_id, {} AS value, m.value AS doc FROM {} AS m)",
                value, latest,
            )  # fmt: skip
            return sql("(SELECT * FROM {} WHERE value IS NOT NULL)", table), Frag("c.value")
        # metadata.a.b: the flat key "a.b" where a trace has it, else key "a", path "b".
        per_key = [
            sql(
                "argMaxIf({}, length(m.key), m.key = {}) AS v"
                + str(i)
                + ", argMaxIf(m.value, length(m.key), m.key = {}) AS d"
                + str(i),
                _json_at(Frag("m.value"), parts),
                _key(key),
                _key(key),
            )
            for i, (key, parts) in enumerate(candidates)
        ]
        n = range(len(candidates))
        value = "coalesce(" + ", ".join(f"v{i}" for i in n) + ")"
        doc = "multiIf(" + ", ".join(f"v{i} IS NOT NULL, d{i}" for i in n) + ", NULL)"
        table = sql(
            f"(SELECT trace_id, {value} AS value, {doc} AS doc FROM (SELECT m.trace_id AS "
            "trace_id, {} FROM {} AS m GROUP BY m.trace_id))",
            Frag.join(", ", per_key), latest,
        )  # fmt: skip
        return sql("(SELECT * FROM {} WHERE value IS NOT NULL)", table), Frag("c.value")

    def holds_type(self, field: FieldRef, wanted: set[str]) -> Frag | None:
        """For a tag: the key's latest event among values of the wanted types, if it is still
        its trace's current value (no later event of the key on that trace, no stale claim).
        Two primary-key reads instead of the probe's pass over every trace's current value,
        which takes ClickHouse the whole GROUP BY before its LIMIT 1 (~0.2 s on 1M traces)."""
        if field.family != "tag":
            return None
        key = _key(field.key or "")
        types = sorted(wanted)
        holes = ", ".join(["{}"] * len(types))
        stale = stale_claims("key = {}", "key = {}")
        return sql(
            "WITH (SELECT groupArray(tuple(trace_id, ord)) FROM (SELECT trace_id, ord "
            "FROM td_tag_events WHERE kind = 'event' AND key = {} AND value_type IN ("
            + holes + ") ORDER BY ord DESC LIMIT 1)) AS c "
            "SELECT 1 FROM td_tag_events WHERE key = {} AND kind = 'event' AND "
            "trace_id = tupleElement(c[1], 1) AND trace_id NOT IN (SELECT trace_id FROM ("
            + stale + ")) HAVING count() > 0 AND max(ord) = tupleElement(c[1], 2)",
            key, *[Param(t, "VARCHAR") for t in types], key, key, key,
        )  # fmt: skip

    def keyed_condition(self, pred: Predicate) -> Frag | None:
        if pred.field.family == "span_attr":
            return self._span_attr(pred)
        return self.keyed_any([pred])

    def keyed_any(self, preds: list[Predicate]) -> Frag | None:
        """The traces whose field satisfies any of ``preds`` (one tag or metadata field; IS
        only alone), read by one subquery."""
        pred = preds[0]
        family = pred.field.family
        if family not in ("tag", "metadata"):
            return None
        if pred.op == "IS":  # NULL: not among the traces holding the field
            if family == "tag":
                held = self._tag_held(pred.field, Frag("1"))
            else:
                source, _ = self._source(pred.field)
                held = sql("(SELECT c.trace_id FROM {} AS c)", source)
            return sql("(t.trace_id " + ("IN" if pred.negated else "NOT IN") + " {})", held)
        if family == "tag":
            access = TagAccess(self, Frag("ifNull(new_value, '')"))
            cond = sql("({})", Frag.join(" OR ", [value_condition(access, p, self) for p in preds]))
            return sql("(t.trace_id IN {})", self._tag_held(pred.field, cond))
        source, value = self._source(pred.field)
        access = DocAccess(self, value, Frag("c.doc"))
        cond = Frag.join(" OR ", [value_condition(access, p, self) for p in preds])
        return sql("(t.trace_id IN (SELECT c.trace_id FROM {} AS c WHERE ({})))", source, cond)

    def _tag_held(self, field: FieldRef, cond: Frag) -> Frag:
        """The traces whose current value of the tag satisfies ``cond``: it is evaluated on
        every event of the key and the latest event's answer kept (``argMax(cond, ord)``, a
        number per trace, not the row)."""
        key = _key(field.key or "")
        stale = stale_claims("key = {}", "key = {}")
        return sql(
            "(SELECT trace_id FROM td_tag_events WHERE kind = 'event' AND key = {} "
            "GROUP BY trace_id HAVING argMax(value_type != '' AND {}, ord) "
            "AND trace_id NOT IN (SELECT trace_id FROM (" + stale + ")))",
            key, cond, key, key,
        )  # fmt: skip

    def _span_attr(self, pred: Predicate) -> Frag:
        key = _key(pred.field.key or "")
        present = sql("JSONHas(s.attributes, {})", key)
        if pred.op == "IS":
            return sql("(NOT {})" if not pred.negated else "({})", present)
        cond = value_condition(DocAccess(self, Frag("__v"), Frag("s.attributes")), pred, self)
        value = _at(Frag("s.attributes"), [key])
        return sql("({} AND arrayExists(__v -> ifNull({}, 0), [{}]))", present, cond, value)

    def probe_source(self, field: FieldRef) -> tuple[Frag, Frag]:
        if field.family == "span_attr":
            key = _key(field.key or "")
            return Frag("spans s"), _at(Frag("s.attributes"), [key])
        source, value = self._source(field)
        return sql("{} AS c", source), value

    def order_value(self, field: FieldRef, index: int) -> tuple[Frag, Frag | None]:
        source, _ = self._source(field)
        alias = f"o{index}"
        join = sql(f" LEFT JOIN {{}} AS {alias} ON {alias}.trace_id = t.trace_id", source)
        return Frag(f"{alias}.value"), join


CLICKHOUSE = ClickHouseDialect(
    name="clickhouse",
    json_type_names={
        "string": ("String",),
        "number": ("Int64", "UInt64", "Double"),
        "boolean": ("Bool",),
        "null": ("Null",),
        "array": ("Array",),
        "object": ("Object",),
    },
    traces_from="td_traces AS t FINAL",
    has_rowid=False,
)
