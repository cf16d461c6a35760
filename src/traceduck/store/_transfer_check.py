"""What an import accepts: each chunk of an export file's records, checked before any engine
writes it, so a hand-made or hand-edited file means the same on both engines and nothing is
stored that the live API would refuse.

A record is refused (with one line naming the file, the trace and the field, and nothing of the
file is imported) when it lacks a field every stored trace has, or holds a value the live API
refuses: a trace id that is not 32 lower-case hex characters, a status other than OK or ERROR,
tags or metadata that are not a JSON object, a key ``_tagrules.check_key`` refuses or a value
over the size limit, in the current tags and metadata or in their histories. A record without
tags or metadata has none (``{}``).

The checks run on whole Arrow columns; only the rows a cheap test flags as possibly bad are
parsed in Python and checked with the live API's own rules.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .._constants import ATTR_PREFIX, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_BYTES, STATUS_ERROR, STATUS_OK
from ..errors import TagError, TraceduckError
from . import _tagrules
from ._rows import TRACE_ID

__all__ = ["checked"]

# Fields every stored trace (and item of its lists) has: without one, the engines would each
# make up a different value (DuckDB kept NULL, ClickHouse 'OK' or 0).
REQUIRED = (
    "trace_id", "status", "timestamp_ms", "execution_time_ms", "start_time_ns", "end_time_ns",
    "span_count", "has_root",
)  # fmt: skip
REQUIRED_ITEMS = {
    "spans": ("span_id", "start_time_ns"),
    "tag_events": ("ts", "key", "operation", "source"),
    "metadata_entries": ("ts", "key", "value", "source"),
}
STATUSES = (STATUS_OK, STATUS_ERROR)

# JSON text that may hold a key ``check_key`` refuses: an empty string, an escape (a control
# character, or any character written as \u...), a raw control character, the reserved prefix,
# or a string of more than MAX_TAG_KEY_LEN characters before a colon. A superset of the bad rows.
_CONTROL = _tagrules._CONTROL.pattern  # the live key rule's control characters
_SUSPECT_KEYS = (
    rf'""|\\u|\\[bfnrt]|{_CONTROL}|"{re.escape(ATTR_PREFIX)}'
    rf'|(?:[^"\\]|\\.){{{MAX_TAG_KEY_LEN + 1},}}"\s*:'
)
# JSON text this long may hold a value over the limit once written compactly (a number such as
# 9e15 grows at most 4.5 times: 9000000000000000.0); shorter text cannot.
_SUSPECT_BYTES = MAX_TAG_VALUE_BYTES // 5


def checked(table: pa.Table, path: str) -> pa.Table:
    """``table`` (a chunk of records) when every record is importable, with ``tags`` and
    ``metadata`` of ``{}`` where a record has none; else TraceduckError naming the first bad
    record's trace and field."""
    ids = _ids(table, path)
    _required(table, ids, path)
    bad = pc.invert(pc.fill_null(pc.match_substring_regex(ids, TRACE_ID), False))
    _refuse_first(ids, bad, path, lambda _: "its trace_id is not 32 lower-case hex characters")
    status = table.column("status")
    if _is_text(status.type):
        bad = pc.invert(pc.is_in(status, value_set=pa.array(STATUSES, status.type)))
    else:
        bad = pa.array([True] * table.num_rows)
    _refuse_first(ids, bad, path, lambda _: f"its status is not {' or '.join(STATUSES)}")
    for name in ("tags", "metadata"):
        table = _objects(table, ids, name, path)
    for name, fields in REQUIRED_ITEMS.items():
        if name in table.column_names:
            _items(table.column(name), ids, name, fields, path)
    return table


def _ids(table: pa.Table, path: str) -> pa.ChunkedArray:
    if "trace_id" not in table.column_names:
        raise TraceduckError(f"{path} is not a traceduck export (no trace_id column)")
    ids = table.column("trace_id")
    if not _is_text(ids.type):
        raise TraceduckError(f"{path}: its trace_id column does not hold text")
    if ids.null_count:
        raise TraceduckError(f"{path}: a record has no trace_id")
    return ids


def _required(table: pa.Table, ids: pa.ChunkedArray, path: str) -> None:
    """Refuse the first record that lacks a required field, naming every field it lacks."""
    missing = pa.array([False] * table.num_rows)
    for name in REQUIRED:
        if name in table.column_names:
            missing = pc.or_(missing, pc.is_null(table.column(name)))
        elif table.num_rows:
            missing = pa.array([True] * table.num_rows)

    def lacks(row: int) -> str:
        names = [n for n in REQUIRED if n not in table.column_names or not table[n][row].is_valid]
        return f"it lacks {', '.join(names)} (every trace record has {', '.join(REQUIRED)})"

    _refuse_first(ids, missing, path, lacks)


def _objects(table: pa.Table, ids: pa.ChunkedArray, name: str, path: str) -> pa.Table:
    """``table`` with its column ``name`` (JSON text) checked as a JSON object whose keys and
    values the live API accepts; ``{}`` where it is missing or null."""
    if name not in table.column_names:
        return table.append_column(name, pa.array(["{}"] * table.num_rows, pa.string()))
    column = table.column(name)
    if not _is_text(column.type):
        return table  # not JSON text: the engine's own layout check refuses it
    text = pc.utf8_trim_whitespace(column)
    ok = pc.or_(pc.starts_with(text, "{"), pc.equal(text, "null"))
    not_object = pc.invert(pc.fill_null(ok, True))
    _refuse_first(ids, not_object, path, lambda _: f"its {name} is not a JSON object")
    suspect = _any(
        pc.match_substring_regex(column, _SUSPECT_KEYS),
        pc.greater(pc.binary_length(column), _SUSPECT_BYTES),
    )
    for row in _rows(suspect):
        _check_object(column[row].as_py(), name, ids[row].as_py(), path)
    text = pc.if_else(pc.equal(text, "null"), pa.scalar(None, column.type), column)
    index = table.column_names.index(name)
    return table.set_column(index, table.field(index), pc.fill_null(text, "{}"))


def _check_object(text: str, name: str, tid: str, path: str) -> None:
    from .._context import storable_metadata

    try:
        value = json.loads(text)
    except ValueError:
        raise TraceduckError(
            f"{path}: the record of trace {tid}: its {name} is not valid JSON"
        ) from None
    if not isinstance(value, dict):
        raise TraceduckError(f"{path}: the record of trace {tid}: its {name} is not a JSON object")
    try:
        for key, item in value.items():
            if name == "tags":
                _tagrules.check_key(key)
                _tagrules.encode_value(item, key)
            else:
                storable_metadata(key, item)
    except TagError as exc:
        raise TraceduckError(f"{path}: the record of trace {tid}: {exc}") from None


def _items(
    column: pa.ChunkedArray, ids: pa.ChunkedArray, name: str, fields: tuple[str, ...], path: str
) -> None:
    """The items of a nested list column: required fields present, keys and values valid."""
    column = column.combine_chunks()
    kind = column.type
    if not pa.types.is_list(kind) or not pa.types.is_struct(kind.value_type):
        return  # the engine's own layout check refuses it
    have = {kind.value_type.field(i).name for i in range(kind.value_type.num_fields)}
    what = {"spans": "a span", "tag_events": "a tag event", "metadata_entries": "a metadata entry"}
    owner = pc.take(ids, pc.list_parent_indices(column))
    items = pc.list_flatten(column)
    if not len(items):
        return
    for field in fields:
        if field not in have:
            raise TraceduckError(
                f"{path}: the record of trace {owner[0].as_py()}: {what[name]} lacks {field}"
            )
        lack = pc.is_null(pc.struct_field(items, field))
        _refuse_first(owner, lack, path, lambda _, f=field: f"{what[name]} lacks {f}")
    if name == "spans":
        return
    keys = pc.struct_field(items, "key")
    suspect = _any(
        pc.equal(keys, ""),
        pc.greater(pc.utf8_length(keys), MAX_TAG_KEY_LEN),
        pc.starts_with(keys, ATTR_PREFIX),
        pc.match_substring_regex(keys, _CONTROL),
    )
    kind_of = "tag" if name == "tag_events" else "metadata"
    value_field = "new_value" if name == "tag_events" else "value"
    values = pc.struct_field(items, value_field) if value_field in have else None
    if values is not None and _is_text(values.type):
        suspect = _any(suspect, pc.greater(pc.binary_length(values), _SUSPECT_BYTES))
    for row in _rows(suspect):
        key = keys[row].as_py()
        text = values[row].as_py() if values is not None else None
        try:
            _tagrules.check_key(key, kind_of)
            if isinstance(text, str):
                _tagrules.encode_value(json.loads(text), key, kind_of)
        except (TagError, ValueError) as exc:
            problem = exc if isinstance(exc, TagError) else f"{kind_of} {key!r}: not valid JSON"
            raise TraceduckError(
                f"{path}: the record of trace {owner[row].as_py()}: in its {name}, {problem}"
            ) from None


def _rows(mask: Any) -> list[int]:
    """The row numbers where ``mask`` is true."""
    return pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist()


def _refuse_first(ids: Any, bad: Any, path: str, problem: Any) -> None:
    """TraceduckError for the first row of ``bad``: '<path>: the record of trace <id>:
    <problem(row)>'."""
    rows = _rows(bad)
    if rows:
        tid = ids[rows[0]].as_py()
        raise TraceduckError(f"{path}: the record of trace {tid}: {problem(rows[0])}")


def _any(*masks: Any) -> Any:
    """The rows where any of ``masks`` is true (null counts as false)."""
    out = pc.fill_null(masks[0], False)
    for mask in masks[1:]:
        out = pc.or_(out, pc.fill_null(mask, False))
    return out


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)
