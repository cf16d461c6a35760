"""Metadata after the fact (ZenML's log_metadata): latest value shown, history kept, nested
values filterable by dotted path with numbers compared as numbers."""

from __future__ import annotations

import pytest

import traceduck as td

from .conftest import last_trace


def _own(metadata: dict) -> dict:
    """A trace's metadata without the automatic context."""
    return {k: v for k, v in metadata.items() if k != "context"}


@td.trace
def run_model(name: str) -> str:
    td.update_current_trace(tags={"model": name})
    return name


def test_log_metadata_inside_a_trace_goes_to_the_current_trace() -> None:
    @td.trace
    def job() -> None:
        td.log_metadata({"model": {"name": "m1", "version": 3}})

    job()
    assert _own(last_trace().info.metadata) == {"model": {"name": "m1", "version": 3}}


def test_log_metadata_after_the_fact_by_prefix_latest_shown_history_kept() -> None:
    run_model("a")
    trace_id = last_trace().info.trace_id
    td.log_metadata({"eval": {"accuracy": 0.95, "n": 100}}, trace_id=trace_id[:10])
    td.log_metadata({"eval": {"accuracy": 0.85, "n": 200}, "reviewer": "ana"}, trace_id=trace_id)

    info = td.get_trace(trace_id).info
    assert _own(info.metadata) == {"eval": {"accuracy": 0.85, "n": 200}, "reviewer": "ana"}
    history = [(e.key, e.value, e.source) for e in td.metadata_history(trace_id)]
    own = [h for h in history if h[0] != "context"]
    assert own == [
        ("eval", {"accuracy": 0.95, "n": 100}, "api"),
        ("eval", {"accuracy": 0.85, "n": 200}, "api"),
        ("reviewer", "ana", "api"),
    ]
    times = [e.time for e in td.metadata_history(trace_id) if e.key == "eval"]
    assert times == sorted(times)


def test_filters_see_the_latest_value_and_compare_nested_numbers_as_numbers() -> None:
    ids = []
    for name, accuracy in (("a", 0.95), ("b", 0.5), ("c", 0.91)):
        run_model(name)
        ids.append(last_trace().info.trace_id)
        td.log_metadata({"eval": {"accuracy": accuracy, "tags": ["x", name]}}, trace_id=ids[-1])
    # a later, lower score for "a": filters see only the latest entry
    td.log_metadata({"eval": {"accuracy": 0.7}}, trace_id=ids[0])

    def names(filter_string: str) -> set[str]:
        return {t.info.tags["model"] for t in td.search_traces(filter_string)}

    assert names("metadata.eval.accuracy > 0.9") == {"c"}
    # 10 > 9 as numbers (a text comparison would say otherwise)
    td.log_metadata({"eval": {"accuracy": 10}}, trace_id=ids[1])
    assert names("metadata.eval.accuracy > 9") == {"b"}
    assert names("metadata.eval.accuracy >= 0.7 AND metadata.eval.accuracy < 1") == {"a", "c"}


def test_nested_dotted_paths_deeper_than_one_level() -> None:
    run_model("deep")
    trace_id = last_trace().info.trace_id
    td.log_metadata({"eval": {"scores": {"f1": 0.42, "label": "ok"}}}, trace_id=trace_id)
    assert len(td.search_traces("metadata.eval.scores.f1 < 0.5")) == 1
    assert len(td.search_traces("metadata.eval.scores.label = 'ok'")) == 1
    assert len(td.search_traces("metadata.eval.scores.f1 > 0.5")) == 0


def test_bad_ids_and_values_are_clear_errors_and_change_nothing() -> None:
    run_model("x")
    trace_id = last_trace().info.trace_id
    td.log_metadata({"k": 1}, trace_id=trace_id)
    with pytest.raises(td.TraceNotFoundError):
        td.log_metadata({"k": 2}, trace_id="ffffffffffff")
    with pytest.raises(td.TagError):
        td.log_metadata({"": 2}, trace_id=trace_id)
    with pytest.raises(td.TagError):
        td.log_metadata({}, trace_id=trace_id)
    # the error names metadata, not a tag (it said "tag key ...", "tag 'score': ...")
    with pytest.raises(td.TagError, match=r"^metadata key 'traceduck\.x' uses the reserved"):
        td.log_metadata({"traceduck.x": 2}, trace_id=trace_id)
    with pytest.raises(td.TagError, match=r"^metadata 'score': value nan is not a JSON value"):
        td.log_metadata({"score": float("nan")}, trace_id=trace_id)
    assert _own(td.get_trace(trace_id).info.metadata) == {"k": 1}
    assert [e.value for e in td.metadata_history(trace_id) if e.key == "k"] == [1]


def test_set_trace_tag_append_builds_a_list_found_by_contains() -> None:
    run_model("t")
    trace_id = last_trace().info.trace_id
    td.set_trace_tag(trace_id, "source", "s3", append=True)  # missing key: starts a list
    td.set_trace_tag(trace_id, "source", "gcs", append=True)
    td.set_trace_tag(trace_id, "single", "a")
    td.set_trace_tag(trace_id, "single", "b", append=True)  # a scalar becomes a list
    tags = td.get_trace(trace_id).info.tags
    assert tags == {"model": "t", "source": ["s3", "gcs"], "single": ["a", "b"]}
    assert len(td.search_traces("tags.source CONTAINS 'gcs'")) == 1
    assert len(td.search_traces("tags.source CONTAINS 'azure'")) == 0
