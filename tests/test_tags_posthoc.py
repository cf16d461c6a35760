"""Tags and metadata after the fact: typed values, history, exclusive moves, bulk edits."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import traceduck as td
from _engines import ENGINES, new_store_name, write_trace, write_traces

# The store of the running test when it is not DuckDB: traces are written to it as write
# batches (the records the exporter hands to any engine), since tracing writes DuckDB only.
_BATCH_STORE: list[td.TraceStore] = []


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> td.TraceStore:
    if request.param == "duckdb":
        td.configure(db=str(tmp_path / "tags.duckdb"))
        yield td.TraceStore(tmp_path / "tags.duckdb")
        td.shutdown()
        return
    store = td.TraceStore(new_store_name(request.param, tmp_path))
    _BATCH_STORE.append(store)
    yield store
    _BATCH_STORE.clear()


def make_trace(name: str = "job", **tags: object) -> str:
    if _BATCH_STORE:
        return write_trace(_BATCH_STORE[0], name, tags)

    @td.trace(name=name)
    def job() -> None:
        if tags:
            td.update_current_trace(tags=tags)

    job()
    trace_id = td.get_last_trace_id()
    assert trace_id is not None
    return trace_id


def flushed(*ids: str) -> list[str]:
    assert td.flush(timeout_s=10)
    return list(ids)


def test_set_update_delete_keep_types_and_history(store: td.TraceStore) -> None:
    (tid,) = flushed(make_trace())
    store.set_trace_tag(tid, "cost", 3.5)
    store.set_trace_tag(tid[:10], "cost", 4)  # by prefix; a change of value is an update
    store.set_trace_tag(tid, "flags", ["a", "b"])
    store.delete_trace_tag(tid, "flags")
    assert store.get_trace(tid).info.tags == {"cost": 4}
    history = [(e.key, e.operation, e.old_value, e.new_value, e.source)
               for e in store.tag_history(tid)]  # fmt: skip
    assert history == [
        ("cost", "set", None, 3.5, "api"),
        ("cost", "update", 3.5, 4, "api"),
        ("flags", "set", None, ["a", "b"], "api"),
        ("flags", "delete", ["a", "b"], None, "api"),
    ]


def test_append_builds_a_list(store: td.TraceStore) -> None:
    (tid,) = flushed(make_trace(source="a"))
    store.set_trace_tag(tid, "source", "b", append=True)
    store.set_trace_tag(tid, "new", 1, append=True)
    assert store.get_trace(tid).info.tags == {"source": ["a", "b"], "new": [1]}


def test_errors_are_clear_and_change_nothing(store: td.TraceStore) -> None:
    (tid,) = flushed(make_trace(keep="me"))
    with pytest.raises(td.TagError, match="has no tag 'missing'"):
        store.delete_trace_tag(tid, "missing")
    with pytest.raises(td.TraceNotFoundError):
        store.set_trace_tag("0" * 32, "k", 1)
    with pytest.raises(td.TagError, match="reserved"):
        store.set_trace_tag(tid, "traceduck.x", 1)
    with pytest.raises(td.TagError, match="not a JSON value"):
        store.set_trace_tag(tid, "k", object())
    # bulk calls with arguments of the wrong shape: a TagError, not AttributeError/TypeError
    where = f"trace_id = '{tid}'"
    with pytest.raises(td.TagError, match="must be a dict"):
        store.append_trace_tags(where, ["keep"])  # type: ignore[arg-type]
    with pytest.raises(td.TagError, match="tag keys"):
        store.delete_trace_tags(where, None)  # type: ignore[arg-type]
    with pytest.raises(td.TagError, match="not a JSON value"):
        store.delete_trace_tags(where, ["keep"], values={"keep": float("nan")})
    assert store.get_trace(tid).info.tags == {"keep": "me"}


def test_a_string_value_with_a_lone_surrogate_is_kept_with_u_fffd(store: td.TraceStore) -> None:
    # A file name read with surrogateescape: DuckDB kept it (U+FFFD, as JSON text); ClickHouse's
    # string column raised UnicodeEncodeError, and refused the whole trace when set live.
    (tid,) = flushed(make_trace())
    store.set_trace_tag(tid, "file", "data-\udcff.csv")
    kept = "data-\udcff.csv".encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    assert store.get_trace(tid).info.tags == {"file": kept}
    assert [t.info.trace_id for t in store.search_traces(f"tags.file = '{kept}'")] == [tid]


def test_a_value_nested_past_pythons_stack_is_a_tag_error(store: td.TraceStore) -> None:
    (tid,) = flushed(make_trace(keep="me"))
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    # It was the encoder's RecursionError, outside traceduck's error tree.
    with pytest.raises(td.TagError, match="nests too deeply"):
        store.set_trace_tag(tid, "k", deep)
    with pytest.raises(td.TagError, match="nests too deeply"):
        store.log_metadata(tid, {"m": deep})
    assert store.get_trace(tid).info.tags == {"keep": "me"}


def test_exclusive_tag_moves_within_the_same_name_only(store: td.TraceStore) -> None:
    a, b, other = flushed(make_trace("train"), make_trace("train"), make_trace("eval"))
    store.set_trace_tag(a, "latest", True, exclusive=True)
    store.set_trace_tag(other, "latest", True)  # stays exclusive (stored), other scope
    store.set_trace_tag(b, "latest", True)
    assert "latest" not in store.get_trace(a).info.tags
    assert store.get_trace(b).info.tags == {"latest": True}
    assert store.get_trace(other).info.tags == {"latest": True}
    moved = [e for e in store.tag_history(a) if e.operation == "moved"]
    assert [(e.key, e.old_value) for e in moved] == [("latest", True)]


def test_every_match_as_arrow_shows_an_exclusive_tag_on_its_holder_only(
    store: td.TraceStore,
) -> None:
    """The every-match fetch (no page) reads tags in one statement with the search: a trace
    that lost an exclusive tag shows it no more, there as in a page."""
    a, b, c = flushed(make_trace("train"), make_trace("train"), make_trace("train"))
    store.set_trace_tag(a, "latest", "v1", exclusive=True)
    store.set_trace_tag(b, "latest", "v2")  # moves from a
    store.set_trace_tag(c, "run", 3)
    table = store.search_traces("name = 'train'", max_results=None, return_type="arrow")
    tags = {row["trace_id"]: json.loads(row["tags"]) for row in table.to_pylist()}
    assert tags == {a: {}, b: {"latest": "v2"}, c: {"run": 3}}
    paged = {t.info.trace_id: t.info.tags for t in store.search_traces("name = 'train'")}
    assert paged == tags


def test_global_exclusive_scope(store: td.TraceStore) -> None:
    a, b = flushed(make_trace("x"), make_trace("y"))
    store.register_tag("champion", exclusive=True, scope="global")
    store.set_trace_tag(a, "champion", "v1")
    store.set_trace_tag(b, "champion", "v2")
    holders = store.sql("SELECT trace_id FROM trace_tags WHERE key = 'champion'").to_pylist()
    assert holders == [{"trace_id": b}]


def test_concurrent_exclusive_setters_leave_one_holder(store: td.TraceStore) -> None:
    ids = flushed(*[make_trace("race") for _ in range(8)])
    store.register_tag("winner")
    errors: list[BaseException] = []

    def claim(tid: str) -> None:
        try:
            store.set_trace_tag(tid, "winner", True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(t,)) for t in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    holders = store.sql("SELECT count(*) AS n FROM trace_tags WHERE key = 'winner'").to_pylist()
    assert holders == [{"n": 1}]


def test_live_exclusive_tags_last_root_to_end_wins(store: td.TraceStore) -> None:
    # Set live; both traces end before the flush, so they land in one write batch.
    @td.trace(name="deploy")
    def deploy() -> None:
        td.update_current_trace(tags=[td.Tag("current", exclusive=True)])

    if _BATCH_STORE:  # the batch the exporter would write: two roots, the newer ends last
        older, newer = write_traces(
            _BATCH_STORE[0], [("deploy", {"current": True}, {"current": "name"})] * 2
        )
    else:
        deploy()
        older = td.get_last_trace_id()
        deploy()
        newer = td.get_last_trace_id()
        assert td.flush(timeout_s=10)
    assert "current" not in store.get_trace(older).info.tags
    assert store.get_trace(newer).info.tags == {"current": True}


def test_bulk_set_and_delete_count_and_history(store: td.TraceStore) -> None:
    ids = flushed(*[make_trace("bulk", env="prod" if i % 2 else "dev") for i in range(10)])
    assert store.set_trace_tags("tags.env = 'prod'", {"reviewed": True, "batch": 7}) == 5
    prod = [t for t in ids if store.get_trace(t).info.tags["env"] == "prod"]
    assert all(store.get_trace(t).info.tags["batch"] == 7 for t in prod)
    assert store.delete_trace_tags("tags.env = 'prod'", ["reviewed"]) == 5
    assert store.delete_trace_tags("tags.env = 'prod'", ["reviewed"]) == 0
    ops = [e.operation for e in store.tag_history(prod[0])]
    assert ops == ["set", "set", "set", "delete"]
    with pytest.raises(td.FilterError):
        store.set_trace_tags("tags.env = ", {"x": 1})


def test_a_bulk_append_keeps_an_exclusive_tag_on_one_trace_per_scope(
    store: td.TraceStore,
) -> None:
    """append_trace_tags (``traceduck tag add --where ... --append``) follows the exclusive
    rules as set_trace_tags does: refused when the filter matches two traces of one scope,
    else each matching trace takes the tag over. It used to give the tag to every match
    (DuckDB: three holders; ClickHouse: two, a different answer)."""
    a, b, c = flushed(make_trace("job"), make_trace("job"), make_trace("job"))
    other = flushed(make_trace("eval"))[0]
    store.register_tag("best")
    store.set_trace_tag(a, "best", 1)
    with pytest.raises(td.TagError, match="narrow the filter"):
        store.append_trace_tags("name = 'job'", {"best": 2})
    assert [t.info.trace_id for t in store.search_traces("tags.best IS NOT NULL")] == [a]

    assert store.append_trace_tags(f"trace_id IN ('{b}', '{other}')", {"best": 3}) == 2
    found = store.search_traces("tags.best CONTAINS 3")
    holders = {t.info.trace_id: t.info.tags["best"] for t in found}
    assert holders == {b: [3], other: [3]}
    assert "best" not in store.get_trace(a).info.tags
    assert [e.operation for e in store.tag_history(a)] == ["set", "moved"]
    assert "best" not in store.get_trace(c).info.tags


def test_a_refused_exclusive_bulk_set_registers_nothing(store: td.TraceStore) -> None:
    flushed(make_trace("job"), make_trace("job"))
    with pytest.raises(td.TagError, match="narrow the filter"):
        store.set_trace_tags("name = 'job'", [td.Tag("best", exclusive=True)])
    assert store.exclusive_tag_keys() == {}  # ClickHouse used to keep the key registered
    assert store.set_trace_tags("name = 'job'", {"best": True}) == 2


def test_a_key_named_twice_in_a_bulk_delete_is_deleted_once(store: td.TraceStore) -> None:
    (tid,) = flushed(make_trace("twice", env="prod"))
    assert store.delete_trace_tags("tags.env = 'prod'", ["env", "env"]) == 1
    assert [(e.key, e.operation) for e in store.tag_history(tid)] == [
        ("env", "set"),
        ("env", "delete"),
    ]


def test_log_metadata_after_the_fact_keeps_history(store: td.TraceStore) -> None:
    (tid,) = flushed(make_trace())
    store.log_metadata(tid, {"eval": {"accuracy": 0.9}})
    store.log_metadata(tid[:8], {"eval": {"accuracy": 0.95}, "judge": "gpt"})
    metadata = store.get_trace(tid).info.metadata
    metadata.pop("context", None)  # the process's automatic context, logged with the trace
    assert metadata == {"eval": {"accuracy": 0.95}, "judge": "gpt"}
    history = [(e.key, e.value) for e in store.metadata_history(tid) if e.key != "context"]
    assert history == [
        ("eval", {"accuracy": 0.9}),
        ("eval", {"accuracy": 0.95}),
        ("judge", "gpt"),
    ]
    assert [t.info.trace_id for t in store.search_traces("metadata.eval.accuracy > 0.92")] == [tid]


def test_trace_info_alone_matches_the_full_trace(store: td.TraceStore) -> None:
    (tid,) = flushed(make_trace(keep="me"))
    store.set_trace_tag(tid[:10], "reviewed", True)
    assert store.get_trace_info(tid[:10]) == store.get_trace(tid).info
    with pytest.raises(td.TraceNotFoundError):
        store.get_trace_info("0" * 32)
