"""Label tags (ZenML's names), dicts and Tag objects, through the decorator and live calls."""

from __future__ import annotations

import pytest

import traceduck as td

from .conftest import last_trace


def test_labels_dicts_and_tag_objects_mix_in_update_current_trace() -> None:
    @td.trace
    def job() -> None:
        td.update_current_trace(
            tags=["reviewed", {"env": "prod", "cost": 3.2}, td.Tag("stage", "final"), "exp"]
        )

    job()
    assert last_trace().info.tags == {
        "reviewed": True,
        "exp": True,
        "env": "prod",
        "cost": 3.2,
        "stage": "final",
    }
    assert [t.info.name for t in td.search_traces("tags.reviewed = true AND tags.cost > 3")] == [
        "job"
    ]


def test_labels_and_tag_objects_in_the_decorator() -> None:
    @td.trace(tags=[td.Tag("latest", exclusive=True), "experiment", {"team": "search"}])
    def train() -> int:
        return 1

    @td.trace(tags="single-label")
    def root() -> int:
        return train()

    root()
    assert last_trace().info.tags == {
        "single-label": True,
        "latest": True,
        "experiment": True,
        "team": "search",
    }


def test_a_tag_object_alone_and_a_typed_value() -> None:
    @td.trace
    def job() -> None:
        td.update_current_trace(tags=td.Tag("scores", [1, 2.5, None]))

    job()
    assert last_trace().info.tags == {"scores": [1, 2.5, None]}
    assert len(td.search_traces("tags.scores CONTAINS 2.5")) == 1


def test_a_bad_item_in_a_tag_list_warns_and_records_nothing_from_that_call() -> None:
    @td.trace
    def job() -> None:
        td.update_current_trace(tags=["ok"])
        with pytest.warns(td.TraceduckWarning, match="a tag is a name"):
            td.update_current_trace(tags=["fine", 42])

    job()
    assert last_trace().info.tags == {"ok": True}


def test_exclusive_tag_object_moves_between_traces_of_the_same_root_name_only() -> None:
    @td.trace(name="train", tags=[td.Tag("latest", exclusive=True)])
    def train() -> None:
        return None

    @td.trace(name="evaluate")
    def evaluate() -> None:
        td.update_current_trace(tags=[td.Tag("latest", exclusive=True)])

    train()
    first = last_trace().info.trace_id
    evaluate()
    other_name = last_trace().info.trace_id
    train()
    second = last_trace().info.trace_id

    holders = {t.info.trace_id for t in td.search_traces("tags.latest = true")}
    assert holders == {second, other_name}
    assert "latest" not in td.get_trace(first).info.tags
    moved = [e for e in td.tag_history(first) if e.key == "latest"]
    assert [e.operation for e in moved] == ["set", "moved"]


def test_exclusive_tag_object_with_global_scope_has_one_holder_in_the_store() -> None:
    @td.trace(name="a")
    def a() -> None:
        td.update_current_trace(tags=[td.Tag("champion", exclusive=True, scope="global")])

    @td.trace(name="b")
    def b() -> None:
        td.update_current_trace(tags=[td.Tag("champion", exclusive=True, scope="global")])

    a()
    last_trace()
    b()
    holder = last_trace().info.trace_id
    assert [t.info.trace_id for t in td.search_traces("tags.champion = true")] == [holder]
