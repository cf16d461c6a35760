"""What a tag edit changes, as both engines compute it (``store/_tagrules``): no store needed.

A trace's tags and a requested edit give the history event the edit writes (or none) and the
tags after it; DuckDB and ClickHouse both call these, so a user sees the same history on each.
"""

from __future__ import annotations

from typing import Any

import pytest

from traceduck import _json
from traceduck._constants import MAX_TAG_VALUE_BYTES
from traceduck.errors import TagError
from traceduck.store._tagrules import (
    TagChange,
    append_changes,
    apply,
    delete_changes,
    removal,
    set_change,
    set_changes,
)


def test_setting_a_new_key_is_a_set_event_with_no_old_value() -> None:
    tags: dict[str, Any] = {"env": "prod"}
    change = set_change(tags, "reviewed", True)
    assert change == TagChange("reviewed", None, "true", True, "set")
    assert apply(tags, [change]) == {"env": "prod", "reviewed": True}


def test_changing_a_value_is_an_update_event_with_the_old_and_new_json() -> None:
    tags: dict[str, Any] = {"env": "dev", "n": 1}
    change = set_change(tags, "env", "prod")
    assert change == TagChange("env", '"dev"', '"prod"', "prod", "update")
    assert apply(tags, [change]) == {"env": "prod", "n": 1}


def test_setting_the_value_a_trace_has_already_writes_no_event() -> None:
    assert set_change({"env": "prod"}, "env", "prod") is None
    assert set_change({"cfg": {"a": [1, 2]}}, "cfg", {"a": [1, 2]}) is None
    assert set_changes({"env": "prod", "n": 1}, {"env": "prod", "n": 2}) == [
        TagChange("n", "1", "2", 2, "update")
    ]


def test_a_value_of_another_json_type_is_a_change() -> None:
    # 1 and true, 1 and "1": different JSON, so an update, not a no-op
    assert set_change({"n": 1}, "n", True) == TagChange("n", "1", "true", True, "update")
    assert set_change({"n": 1}, "n", "1") == TagChange("n", "1", '"1"', "1", "update")


def test_append_starts_a_list_turns_a_scalar_into_a_list_and_extends_a_list() -> None:
    tags: dict[str, Any] = {"one": "a", "many": ["a", "b"]}
    changes = append_changes(tags, {"new": "x", "one": "b", "many": "c"})
    assert changes == [
        TagChange("new", None, '["x"]', ["x"], "set"),
        TagChange("one", '"a"', '["a","b"]', ["a", "b"], "update"),
        TagChange("many", '["a","b"]', '["a","b","c"]', ["a", "b", "c"], "update"),
    ]
    assert apply(tags, changes) == {"one": ["a", "b"], "many": ["a", "b", "c"], "new": ["x"]}


def test_append_of_a_value_already_in_the_list_still_appends() -> None:
    change = set_change({"seen": ["a"]}, "seen", "a", append=True)
    assert change is not None and change.new_value == ["a", "a"]


def test_an_append_that_makes_the_list_too_large_is_refused() -> None:
    big = "x" * (MAX_TAG_VALUE_BYTES // 2)
    with pytest.raises(TagError, match="limit"):
        set_change({"log": [big]}, "log", big, append=True)


def test_deleting_a_key_is_a_delete_event_with_the_old_value_and_no_new_one() -> None:
    tags: dict[str, Any] = {"env": "prod", "n": 1}
    change = removal(tags, "env")
    assert change == TagChange("env", '"prod"', None, None, "delete")
    assert change.removes
    assert apply(tags, [change]) == {"n": 1}


def test_an_exclusive_move_is_a_moved_event_for_the_trace_that_loses_the_tag() -> None:
    tags: dict[str, Any] = {"best": True}
    change = removal(tags, "best", "moved")
    assert (change.operation, change.old_text, change.new_text) == ("moved", "true", None)
    assert apply(tags, [change]) == {}


def test_a_bulk_delete_removes_the_keys_a_trace_has_with_the_value_asked_for() -> None:
    tags: dict[str, Any] = {"env": "prod", "stage": "final", "n": 1}
    only = {"stage": _json.dumps("draft")}
    changes = delete_changes(tags, ["env", "missing", "stage"], only)
    assert changes == [TagChange("env", '"prod"', None, None, "delete")]  # stage is not draft
    assert apply(tags, changes) == {"stage": "final", "n": 1}
    assert delete_changes({"stage": "draft"}, ["stage"], only) == [
        TagChange("stage", '"draft"', None, None, "delete")
    ]


def test_a_key_named_twice_in_a_bulk_delete_goes_once() -> None:
    assert delete_changes({"env": "prod"}, ["env", "env"], {}) == [
        TagChange("env", '"prod"', None, None, "delete")
    ]


def test_the_edit_functions_leave_the_tags_they_read_alone() -> None:
    tags: dict[str, Any] = {"env": "dev", "l": ["a"]}
    set_changes(tags, {"env": "prod", "new": 1})
    append_changes(tags, {"l": "b"})
    delete_changes(tags, ["env"], {})
    assert tags == {"env": "dev", "l": ["a"]}
