"""`traceduck tag add|update|rm|history` and `metadata log|history` change stored traces, on
both engines."""

from __future__ import annotations

import json

import pytest

from traceduck import TraceStore

from ._helpers import run


@pytest.fixture
def db(engine_db: str) -> str:
    """Every test here runs on a DuckDB file and on chdb (``--db chdb:///...``)."""
    return engine_db


def _id(db: str, where: str) -> str:
    return TraceStore(db).search_traces(where, max_results=1)[0].info.trace_id


def _tags(db: str, trace_id: str) -> dict:
    return TraceStore(db).get_trace(trace_id).info.tags


def test_add_parses_json_values_and_labels(db: str) -> None:
    tid = _id(db, "tags.env = 'dev'")
    r = run("tag", "add", tid[:8], "reviewed", "score=3.2", "final=true", 'flags=["a","b"]',
            "user=rasmus", "n=7", "none=null", "--db", db)  # fmt: skip
    assert r.code == 0, r.err
    tags = _tags(db, tid)
    assert tags["reviewed"] is True and tags["final"] is True
    assert tags["score"] == 3.2 and tags["n"] == 7 and tags["none"] is None
    assert tags["flags"] == ["a", "b"] and tags["user"] == "rasmus"
    # typed values are searchable as their type
    r = run("search", "tags.score > 3 AND tags.flags CONTAINS 'b'", "--json", "--db", db)
    assert [row["trace_id"] for row in json.loads(r.out)] == [tid]


def test_values_that_are_not_json_numbers_stay_text(db: str) -> None:
    """NaN, Infinity and 1e999 are no JSON values (Python's json reads them as floats that no
    tag or metadata can hold): they stay text, as any other value that is not JSON does. They
    used to fail the whole command ("value nan is not a JSON value")."""
    tid = _id(db, "tags.env = 'dev'")
    r = run("tag", "add", tid, "a=NaN", "b=-Infinity", "c=1e999", "d=1e3", "--db", db)
    assert r.code == 0, r.err
    tags = _tags(db, tid)
    assert (tags["a"], tags["b"], tags["c"], tags["d"]) == ("NaN", "-Infinity", "1e999", 1000.0)
    assert run("metadata", "log", tid, "score=NaN", "--db", db).code == 0
    assert TraceStore(db).get_trace(tid).info.metadata["score"] == "NaN"


def test_add_refuses_an_existing_key_with_another_value_and_changes_nothing(db: str) -> None:
    tid = _id(db, "tags.env = 'dev'")
    before = TraceStore(db).tag_history(tid)
    r = run("tag", "add", tid, "new=1", "env=prod", "--db", db)
    assert r.code == 1
    assert "already has env=" in r.err and "tag update" in r.err
    assert _tags(db, tid)["env"] == "dev" and "new" not in _tags(db, tid)
    assert TraceStore(db).tag_history(tid) == before
    # the same value again is fine (nothing to change)
    assert run("tag", "add", tid, "env=dev", "--db", db).code == 0


def test_update_changes_existing_keys_and_refuses_new_ones(db: str) -> None:
    tid = _id(db, "tags.env = 'dev'")
    r = run("tag", "update", tid, "cost=0.5", "--db", db)
    assert r.code == 0 and _tags(db, tid)["cost"] == 0.5
    r = run("tag", "update", tid, "cost=1", "brand_new=1", "--db", db)
    assert r.code == 1 and "no tag 'brand_new'" in r.err and "tag add" in r.err
    assert _tags(db, tid)["cost"] == 0.5


def test_append_builds_a_list_that_search_tag_finds(db: str) -> None:
    tid = _id(db, "tags.env = 'dev'")
    for source in ("web", "cli"):
        assert run("tag", "add", tid, "--append", f"source={source}", "--db", db).code == 0
    assert run("tag", "add", tid, "--append", "env=canary", "--db", db).code == 0
    tags = _tags(db, tid)
    assert tags["source"] == ["web", "cli"] and tags["env"] == ["dev", "canary"]
    r = run("search", "--tag", "source=cli", "--json", "--db", db)
    assert [row["trace_id"] for row in json.loads(r.out)] == [tid]
    # a key holding lists and strings: --tag matches both the list member and the plain value
    r = run("search", "--tag", "env=dev", "--json", "--db", db)
    assert [row["trace_id"] for row in json.loads(r.out)] == [tid]
    r = run("search", "--tag", "env=prod", "--json", "--db", db)
    assert len(json.loads(r.out)) == 3


def test_rm_removes_keys_and_key_value_only_when_it_matches(db: str) -> None:
    tid = _id(db, "tags.env = 'dev'")
    r = run("tag", "rm", tid, "env=prod", "--db", db)
    assert r.code == 1 and 'not "prod"' in r.err and _tags(db, tid)["env"] == "dev"
    r = run("tag", "rm", tid, "missing", "--db", db)
    assert r.code == 1 and "no tag 'missing'" in r.err
    r = run("tag", "rm", tid, "env=dev", "cost", "--db", db)
    assert r.code == 0 and _tags(db, tid) == {}


def test_exclusive_moves_between_traces_of_the_same_name(db: str) -> None:
    a, b = (_id(db, f"tags.env = '{e}'") for e in ("dev", "staging"))
    ingest = _id(db, "name = 'ingest'")
    assert run("tag", "add", a, "latest", "--exclusive", "--db", db).code == 0
    assert run("tag", "add", ingest, "latest", "--exclusive", "--db", db).code == 0
    assert run("tag", "add", b, "latest", "--db", db).code == 0  # the key is exclusive now
    assert "latest" not in _tags(db, a) and _tags(db, b)["latest"] is True
    assert _tags(db, ingest)["latest"] is True  # another root name: its own holder
    r = run("tag", "history", a, "--json", "--db", db)
    assert json.loads(r.out)[-1]["operation"] == "moved"


def test_history_shows_every_change_with_its_source(db: str) -> None:
    tid = _id(db, "tags.env = 'dev'")
    run("tag", "add", tid, "stage=1", "--db", db)
    run("tag", "update", tid, "stage=2", "--db", db)
    run("tag", "rm", tid, "stage", "--db", db)
    r = run("tag", "history", tid[:9], "--json", "--db", db)
    events = json.loads(r.out)
    assert [(e["key"], e["operation"], e["source"]) for e in events] == [
        ("env", "set", "live"),
        ("cost", "set", "live"),
        ("stage", "set", "cli"),
        ("stage", "update", "cli"),
        ("stage", "delete", "cli"),
    ]
    assert "old_value" not in events[2] and events[3]["old_value"] == 1
    assert events[3]["new_value"] == 2 and "new_value" not in events[4]
    r = run("tag", "history", tid, "--db", db)
    assert r.code == 0 and "stage" in r.out and "delete" in r.out


def test_bulk_where_asks_first_and_prints_the_count(db: str) -> None:
    r = run("tag", "add", "--where", "tags.env = 'prod'", "triage=true", "--db", db, input="n\n")
    assert r.code == 0
    assert "3 traces" in r.err and "nothing was changed" in r.err
    assert TraceStore(db).search_traces("tags.triage = true") == []
    r = run("tag", "add", "--where", "tags.env = 'prod'", "triage=true", "--db", db, input="y\n")
    assert r.code == 0 and "tagged 3 traces" in r.out
    assert len(TraceStore(db).search_traces("tags.triage = true")) == 3


def test_bulk_with_yes_update_rm_and_append(db: str) -> None:
    where = "name = 'answer'"
    r = run("tag", "update", "--where", where, "--yes", "cost=1", "--db", db)
    assert r.code == 0 and "updated 7 traces" in r.out
    r = run("tag", "update", "--where", "trace_id LIKE '%'", "--yes", "cost=2", "--db", db)
    assert r.code == 1 and "IS NOT NULL" in r.err  # ingest traces have no cost
    assert len(TraceStore(db).search_traces("tags.cost = 1")) == 7
    r = run("tag", "add", "--where", where, "--yes", "--append", "source=batch", "--db", db)
    assert r.code == 0 and "7 traces" in r.out
    assert len(TraceStore(db).search_traces("tags.source CONTAINS 'batch'")) == 7
    r = run("tag", "rm", "--where", where, "--yes", "env=prod", "--db", db)
    assert r.code == 0 and "removed tags from 3 traces" in r.out
    assert TraceStore(db).search_traces("tags.env = 'prod'") == []
    assert len(TraceStore(db).search_traces("tags.env = 'staging'")) == 3
    r = run("tag", "rm", "--where", "tags.env = 'nowhere'", "--yes", "env", "--db", db)
    assert r.code == 0 and "no trace matches" in r.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tag", "add"], "ID_PREFIX"),
        (["tag", "add", "abc"], "at least one"),
        (["tag", "add", "abc", "=3"], "key is empty"),
        (["tag", "add", "abc", "k=1", "--append", "--exclusive"], "does not go with"),
        (["tag", "add", "ffffffffff", "k=1"], "no trace id starts with"),
        (["tag", "add", "--where", "tags.env = ", "k=1", "--yes"], "expected a value"),
        (["tag", "add", "--where", "", "k=1"], "--where needs a filter"),
        (["tag", "update", "abc", "flag"], "expected key=value"),
        (["tag", "rm", "abc"], "at least one"),
        (["tag", "history", "ffffffffff"], "no trace id"),
        (["metadata", "log", "abc"], "at least one"),
        (["metadata", "log", "abc", "novalue"], "expected key=value"),
        (["metadata", "history", "xyz"], "not a trace id"),
    ],
)
def test_bad_tag_arguments_are_one_line(db: str, args: list[str], message: str) -> None:
    r = run(*args, "--db", db)
    assert r.code != 0 and message in r.err, r.err
    assert "Traceback" not in r.err


def test_reserved_and_bad_keys_are_refused(db: str) -> None:
    tid = _id(db, "tags.env = 'dev'")
    r = run("tag", "add", tid, "traceduck.internal=1", "--db", db)
    assert r.code == 1 and "reserved" in r.err
    r = run("tag", "add", tid, "a\tb=1", "--db", db)
    assert r.code == 1 and "control character" in r.err


def test_metadata_log_keeps_history_and_shows_the_latest(db: str) -> None:
    tid = _id(db, "tags.env = 'dev'")
    assert run("metadata", "log", tid[:8], 'eval={"accuracy": 0.8}', "--db", db).code == 0
    assert (
        run("metadata", "log", tid[:8], 'eval={"accuracy": 0.93}', "judge=ana", "--db", db).code
        == 0
    )
    info = TraceStore(db).get_trace(tid).info
    assert info.metadata["eval"] == {"accuracy": 0.93} and info.metadata["judge"] == "ana"
    r = run("search", "metadata.eval.accuracy > 0.9", "--json", "--db", db)
    assert [row["trace_id"] for row in json.loads(r.out)] == [tid]
    r = run("metadata", "history", tid, "--json", "--db", db)
    entries = [(e["key"], e["value"], e["source"]) for e in json.loads(r.out)]
    assert entries == [
        ("user", "u-dev", "live"),
        ("eval", {"accuracy": 0.8}, "cli"),
        ("eval", {"accuracy": 0.93}, "cli"),
        ("judge", "ana", "cli"),
    ]
    r = run("metadata", "history", tid, "--db", db)
    assert r.code == 0 and "0.93" in r.out and "judge" in r.out


def test_search_tag_with_a_bare_key_finds_labels(db: str) -> None:
    tid = _id(db, "tags.env = 'dev'")
    assert run("tag", "add", tid, "reviewed", "--db", db).code == 0
    r = run("search", "--tag", "reviewed", "--json", "--db", db)
    assert [row["trace_id"] for row in json.loads(r.out)] == [tid]
