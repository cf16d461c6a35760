"""Live tags and metadata: set from anywhere in a trace, JSON-typed, validated, with history."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest

import traceduck as td
from traceduck import TraceduckWarning

from ._helpers import flush, last_trace, user_metadata


def test_tags_and_metadata_from_root_and_nested_calls_last_value_wins() -> None:
    @td.trace
    def step(i):
        td.update_current_trace(tags={"env": "prod", f"step_{i}": True}, metadata={"stage": i})

    @td.trace
    def root():
        td.update_current_trace(tags={"env": "dev", "owner": "ana"}, metadata={"user": "u1"})
        step(1)
        step(2)
        td.update_current_trace(tags={"owner": "bo"})

    root()
    info = last_trace().info
    assert info.tags == {"env": "prod", "owner": "bo", "step_1": True, "step_2": True}
    assert user_metadata(info) == {"user": "u1", "stage": 2}


def test_tags_do_not_leak_into_the_next_trace() -> None:
    @td.trace
    def tagged():
        td.update_current_trace(tags={"only": "here"}, metadata={"m": 1})

    @td.trace
    def plain():
        return None

    tagged()
    first = last_trace().info
    plain()
    second = last_trace().info
    assert first.tags == {"only": "here"}
    assert second.trace_id != first.trace_id
    assert second.tags == {}
    assert user_metadata(second) == {}


def test_tags_and_metadata_from_threads_with_copied_context_and_asyncio_tasks() -> None:
    def in_thread(i):
        td.update_current_trace(tags={f"thread_{i}": i}, metadata={f"t{i}": "x"})

    async def in_task(i):
        await asyncio.sleep(0)
        td.update_current_trace(tags={f"task_{i}": i}, metadata={f"a{i}": "y"})

    @td.trace
    def root():
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(in_thread, i))
            for i in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)

        async def gather():
            await asyncio.gather(in_task(0), in_task(1))

        asyncio.run(gather())

    root()
    info = last_trace().info
    assert info.tags == {"thread_0": 0, "thread_1": 1, "task_0": 0, "task_1": 1}
    assert {k: info.metadata[k] for k in ("t0", "t1", "a0", "a1")} == {
        "t0": "x",
        "t1": "x",
        "a0": "y",
        "a1": "y",
    }


TYPED = {
    "s": ("text", str, "string"),
    "i": (3, int, "number"),
    "big": (2**60, int, "number"),
    "neg": (-7, int, "number"),
    "f": (3.25, float, "number"),
    "whole_float": (2.0, float, "number"),
    "t": (True, bool, "boolean"),
    "fa": (False, bool, "boolean"),
    "n": (None, type(None), "null"),
    "l": ([1, "a", None, 2.5], list, "array"),
    "d": ({"a": {"b": [1, 2]}, "c": False}, dict, "object"),
    "unicode": ("häst 🦆", str, "string"),
}


def test_tag_values_keep_their_json_type() -> None:
    @td.trace
    def root():
        td.update_current_trace(tags={k: v for k, (v, _, _) in TYPED.items()})

    root()
    info = last_trace().info
    for key, (value, py_type, _) in TYPED.items():
        assert type(info.tags[key]) is py_type, key
        assert info.tags[key] == value, key

    rows = td.sql(
        "SELECT key, value_type, value_str, value_num FROM trace_tags WHERE trace_id = ?",
        [info.trace_id],
    ).to_pylist()
    by_key = {r["key"]: r for r in rows}
    assert set(by_key) == set(TYPED)
    for key, (_, _, json_type) in TYPED.items():
        assert by_key[key]["value_type"] == json_type, key
    assert by_key["s"]["value_str"] == "text"
    assert by_key["i"]["value_num"] == 3
    assert by_key["f"]["value_num"] == 3.25
    assert by_key["neg"]["value_num"] == -7
    assert by_key["t"]["value_num"] is None


def test_metadata_values_keep_their_json_type() -> None:
    values = {k: v for k, (v, _, _) in TYPED.items()}

    @td.trace
    def root():
        td.update_current_trace(metadata=values)

    root()
    trace = last_trace()
    for key, (value, py_type, _) in TYPED.items():
        assert type(trace.info.metadata[key]) is py_type, key
        assert trace.info.metadata[key] == value, key
    history = td.metadata_history(trace.info.trace_id)
    assert {e.key: e.value for e in history if e.key != "context"} == values


def test_trace_decorator_tags_are_added_whenever_the_function_runs_in_the_trace() -> None:
    @td.trace(tags={"component": "retriever", "version": 2})
    def retrieve():
        return "docs"

    @td.trace(tags=["cached", td.Tag("tier", "gold")])
    def cache():
        return "hit"

    @td.trace
    def root(use_cache):
        retrieve()
        if use_cache:
            cache()

    root(True)
    assert last_trace().info.tags == {
        "component": "retriever",
        "version": 2,
        "cached": True,
        "tier": "gold",
    }
    root(False)
    assert last_trace().info.tags == {"component": "retriever", "version": 2}


def test_live_tags_override_decorator_tags_set_earlier() -> None:
    @td.trace(tags={"env": "default"})
    def root():
        td.update_current_trace(tags={"env": "override"})

    root()
    assert last_trace().info.tags == {"env": "override"}


def test_label_lists_and_tag_objects() -> None:
    @td.trace
    def root():
        td.update_current_trace(
            tags=["reviewed", td.Tag("tenant", "acme"), td.Tag("score", 0.5), td.Tag("flag")]
        )
        td.update_current_trace(tags="single-label")

    root()
    assert last_trace().info.tags == {
        "reviewed": True,
        "tenant": "acme",
        "score": 0.5,
        "flag": True,
        "single-label": True,
    }


BAD_KEYS = {
    "empty": "",
    "too long": "k" * 251,
    "newline": "bad\nkey",
    "tab": "bad\tkey",
    "nul": "bad\x00key",
    "delete char": "bad\x7fkey",
    "reserved prefix": "traceduck.internal",
    "not a string": 42,
}


@pytest.mark.parametrize("key", list(BAD_KEYS.values()), ids=list(BAD_KEYS))
def test_bad_tag_keys_warn_and_record_nothing_for_that_call(key: Any) -> None:
    @td.trace
    def root():
        td.update_current_trace(tags={"kept": 1})
        with pytest.warns(TraceduckWarning):
            td.update_current_trace(tags={key: "v", "also_dropped": 2}, metadata={"m": 1})
        return "still fine"

    assert root() == "still fine"
    trace = last_trace()
    assert trace.info.tags == {"kept": 1}
    assert "m" not in trace.info.metadata
    assert trace.info.status == "OK"


@pytest.mark.parametrize("key", list(BAD_KEYS.values()), ids=list(BAD_KEYS))
def test_bad_metadata_keys_warn_and_record_nothing_for_that_call(key: Any) -> None:
    @td.trace
    def root():
        with pytest.warns(TraceduckWarning):
            td.update_current_trace(metadata={key: 1, "ok": 2}, tags={"t": 1})
        return "fine"

    assert root() == "fine"
    info = last_trace().info
    assert info.tags == {}
    assert "ok" not in info.metadata


def test_a_key_of_exactly_250_characters_is_accepted() -> None:
    key = "k" * 250

    @td.trace
    def root():
        td.update_current_trace(tags={key: 1})

    root()
    assert last_trace().info.tags == {key: 1}


@pytest.mark.parametrize(
    "value",
    [object(), {1, 2}, float("nan"), "x" * (64 * 1024 + 1)],
    ids=["object", "set", "nan", "over 64 KiB"],
)
def test_bad_tag_values_warn_and_record_nothing(value: Any) -> None:
    @td.trace
    def root():
        with pytest.warns(TraceduckWarning):
            td.update_current_trace(tags={"bad": value, "other": 1})
        return 1

    assert root() == 1
    assert last_trace().info.tags == {}


@pytest.mark.parametrize("how", ["update_current_trace", "log_metadata"])
def test_metadata_values_over_64_kib_of_json_warn_and_record_nothing_as_tag_values_do(
    how: str,
) -> None:
    """Metadata values have the tags' size limit (64 KiB of JSON) wherever they are logged: a
    larger one live warns and records nothing for that call; after the fact it is a TagError."""
    limit = 64 * 1024
    fits = "x" * (limit - 2)  # with its quotes, exactly the limit

    @td.trace
    def root():
        log = td.log_metadata if how == "log_metadata" else None
        with pytest.warns(TraceduckWarning, match="the limit is 65536"):
            if log:
                log({"big": "x" * (limit - 1), "other": 1})
            else:
                td.update_current_trace(metadata={"big": "x" * (limit - 1), "other": 1})
        td.update_current_trace(metadata={"fits": fits})
        return 1

    assert root() == 1
    trace = last_trace()
    assert user_metadata(trace.info) == {"fits": fits}
    with pytest.raises(td.TagError, match="limit"):
        td.log_metadata({"big": ["x" * limit]}, trace_id=trace.info.trace_id)
    assert user_metadata(td.get_trace(trace.info.trace_id).info) == {"fits": fits}


def test_bad_tags_argument_types_warn() -> None:
    @td.trace
    def root():
        with pytest.warns(TraceduckWarning):
            td.update_current_trace(tags=42)
        with pytest.warns(TraceduckWarning):
            td.update_current_trace(metadata=["not", "a", "dict"])
        return 1

    assert root() == 1
    info = last_trace().info
    assert (info.tags, user_metadata(info)) == ({}, {})


def test_bad_decorator_tags_warn_at_decoration_and_the_function_still_works() -> None:
    with pytest.warns(TraceduckWarning):

        @td.trace(tags={"": "empty key"})
        def f(x):
            return x * 2

    assert f(4) == 8
    trace = last_trace()
    assert trace.info.name == "f"
    assert trace.info.tags == {}


def test_update_current_trace_outside_a_trace_warns_and_records_nothing() -> None:
    with pytest.warns(TraceduckWarning, match="outside a trace"):
        td.update_current_trace(tags={"env": "prod"}, metadata={"user": "u1"})
    flush()
    assert td.sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 0}]


def test_warning_points_at_the_callers_line() -> None:
    @td.trace
    def root():
        with pytest.warns(TraceduckWarning) as record:
            td.update_current_trace(tags={"": 1})
        return record

    record = root()
    assert record[0].filename == __file__


def test_tag_history_has_one_live_set_event_per_tag() -> None:
    @td.trace
    def root():
        td.update_current_trace(tags={"env": "dev", "n": 1})
        td.update_current_trace(tags={"env": "prod"})  # changed while running: final value only
        td.update_current_trace(tags=["reviewed"])

    root()
    trace_id = last_trace().info.trace_id
    history = td.tag_history(trace_id)
    assert sorted((e.key, e.new_value) for e in history) == [
        ("env", "prod"),
        ("n", 1),
        ("reviewed", True),
    ]
    for event in history:
        assert event.trace_id == trace_id
        assert event.operation == "set"
        assert event.source == "live"
        assert event.old_value is None
        assert event.time is not None
    rows = td.sql(
        "SELECT key, operation, source FROM tag_events WHERE trace_id = ? ORDER BY key",
        [trace_id],
    ).to_pylist()
    assert rows == [
        {"key": "env", "operation": "set", "source": "live"},
        {"key": "n", "operation": "set", "source": "live"},
        {"key": "reviewed", "operation": "set", "source": "live"},
    ]


def test_metadata_history_keeps_every_entry_in_order() -> None:
    @td.trace
    def root():
        td.update_current_trace(metadata={"step": "load", "user": "u1"})
        td.update_current_trace(metadata={"step": "train"})
        td.log_metadata({"step": "eval", "eval": {"accuracy": 0.93}})

    root()
    trace = last_trace()
    assert trace.info.metadata["step"] == "eval"
    assert trace.info.metadata["user"] == "u1"
    assert trace.info.metadata["eval"] == {"accuracy": 0.93}
    history = [
        e for e in td.metadata_history(trace.info.trace_id) if e.key in ("step", "user", "eval")
    ]
    assert [(e.key, e.value) for e in history if e.key == "step"] == [
        ("step", "load"),
        ("step", "train"),
        ("step", "eval"),
    ]
    assert len(history) == 5
    assert all(e.source == "live" for e in history)
    assert all(e.trace_id == trace.info.trace_id for e in history)
    times = [e.time for e in history]
    assert times == sorted(times)


def test_non_json_metadata_values_fall_back_to_repr() -> None:
    class Model:
        def __repr__(self) -> str:
            return "<Model v3>"

    @td.trace
    def root():
        td.update_current_trace(metadata={"model": Model()})

    root()
    assert last_trace().info.metadata["model"] == "<Model v3>"


@pytest.mark.parametrize("how", ["update_current_trace", "log_metadata"])
def test_non_finite_float_metadata_keeps_the_trace(how: str) -> None:
    # A bare NaN or infinity (a loss that diverged) is not JSON; it used to pass the call's check
    # and make the writer refuse the whole trace, which was then dropped. It is kept as its text,
    # as a NaN nested in a dict already is.
    @td.trace
    def train():
        values = {"loss": float("nan"), "best": float("inf"), "nested": {"x": float("-inf")}}
        if how == "log_metadata":
            td.log_metadata(values)
        else:
            td.update_current_trace(metadata=values)
        return 1

    assert train() == 1
    flush()
    metadata = last_trace().info.metadata
    assert (metadata["loss"], metadata["best"], metadata["nested"]) == ("nan", "inf", {"x": "-inf"})
    assert td.stats()["dropped_traces"] == 0


def test_tags_are_recorded_on_a_failing_trace() -> None:
    @td.trace
    def root():
        td.update_current_trace(tags={"attempt": 1}, metadata={"input": "x"})
        raise ValueError("nope")

    with pytest.raises(ValueError):
        root()
    info = last_trace().info
    assert info.status == "ERROR"
    assert info.tags == {"attempt": 1}
    assert info.metadata["input"] == "x"


def test_exclusive_live_tag_is_held_by_the_trace_that_ended_last() -> None:
    @td.trace
    def deploy(version):
        td.update_current_trace(tags=[td.Tag("latest", exclusive=True), {"version": version}])

    deploy(1)
    first = last_trace().info.trace_id
    deploy(2)
    second = last_trace().info.trace_id
    assert td.get_trace(second).info.tags == {"latest": True, "version": 2}
    assert td.get_trace(first).info.tags == {"version": 1}
    moved = [e for e in td.tag_history(first) if e.key == "latest"]
    assert [(e.operation, e.old_value, e.new_value) for e in moved] == [
        ("set", None, True),
        ("moved", True, None),
    ]


def test_keys_with_a_lone_surrogate_warn_live_and_are_a_tag_error_after_the_fact() -> None:
    # A key made from a file name read with surrogateescape cannot be stored as UTF-8: it cost
    # the whole trace live (the store refused it) and was DuckDB's error after the fact.
    bad = "file-\udcff"

    @td.trace
    def root():
        with pytest.warns(TraceduckWarning, match="surrogate"):
            td.update_current_trace(tags={bad: 1})
        with pytest.warns(TraceduckWarning, match="surrogate"):
            td.update_current_trace(metadata={bad: 1})
        td.update_current_trace(tags={"good": 2}, metadata={"m": 2})
        return 1

    assert root() == 1
    trace = last_trace()
    assert trace.info.tags == {"good": 2}
    assert user_metadata(trace.info) == {"m": 2}
    with pytest.raises(td.TagError, match="surrogate"):
        td.set_trace_tag(trace.info.trace_id, bad, 1)
    with pytest.raises(td.TagError, match="surrogate"):
        td.log_metadata({bad: 1}, trace_id=trace.info.trace_id)
    assert td.stats()["dropped_traces"] == 0
