"""delete_traces: each way to select, what goes with a trace, the record, exclusive holders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import traceduck as td
from _engines import ENGINES, HAVE_CHDB, new_store_name
from _old_traces import hours_ago, trace_at


@pytest.fixture(params=ENGINES)
def db_path(request: pytest.FixtureRequest, db_path: str, tmp_path: Path) -> str:
    """Every test on both engines: the conftest's DuckDB file, or traceduck configured to
    write into a fresh chdb store."""
    if request.param == "duckdb":
        return db_path
    if not HAVE_CHDB:
        pytest.skip("needs the clickhouse extra")
    name = new_store_name("chdb", tmp_path)
    td.configure(db=name)
    return name


def _in(ids: list[str]) -> str:
    """``trace_id IN (...)`` with the ids inlined (hex: safe), the same SQL on both engines."""
    return "trace_id IN (" + ", ".join(f"'{i}'" for i in ids) + ")"


def _counts(store: td.TraceStore, ids: list[str]) -> dict[str, int]:
    """Rows of these traces left in every table of the SQL surface that holds rows per trace
    (a ClickHouse store keeps its exclusive claims inside ``tag_events``' own table)."""
    tables = ["traces", "spans", "tag_events", "trace_metadata"]
    if not store.path.startswith("chdb:"):
        tables.append("exclusive_holders")
    out = {}
    for table in tables:
        rows = store.sql(f"SELECT count(*) AS n FROM {table} WHERE {_in(ids)}")
        out[table] = rows.to_pylist()[0]["n"]
    return out


def _deletions(store: td.TraceStore) -> list[dict]:
    rows = store.sql("SELECT * FROM deletions ORDER BY deletion_id").to_pylist()
    for row in rows:
        row["trace_ids"] = json.loads(row["trace_ids"]) if row["trace_ids"] else row["trace_ids"]
    return rows


def _seed(db_path: str) -> tuple[list[str], list[str]]:
    """Three 'dev' and three 'prod' traces, each with tags, metadata and an edited tag."""
    dev = [trace_at("job", hours_ago(3 - i), tags={"env": "dev", "n": i}) for i in range(3)]
    prod = [trace_at("job", hours_ago(3 - i), tags={"env": "prod", "n": i}) for i in range(3)]
    assert td.flush(10)
    store = td.TraceStore(db_path)
    for tid in dev + prod:
        store.log_metadata(tid, {"score": 1})
        store.set_trace_tag(tid, "reviewed", True)
    return dev, prod


def test_delete_by_filter_takes_spans_tags_metadata_and_histories_and_records_it(
    db_path: str,
) -> None:
    dev, prod = _seed(db_path)
    store = td.TraceStore(db_path)
    before = _counts(store, prod)
    assert all(_counts(store, dev)[t] for t in ("traces", "spans", "tag_events", "trace_metadata"))

    assert store.delete_traces("tags.env = 'dev'") == 3

    assert _counts(store, dev) == dict.fromkeys(before, 0)
    assert _counts(store, prod) == before  # the others keep everything
    assert {t.info.trace_id for t in store.search_traces(max_results=None)} == set(prod)
    with pytest.raises(td.TraceNotFoundError):
        store.get_trace(dev[0])
    [record] = _deletions(store)
    assert record["trace_count"] == 3 and record["filter"] == "tags.env = 'dev'"
    assert record["source"] == "api" and record["trace_ids"] is None
    assert record["max_timestamp_ms"] is None and record["max_traces"] is None


def test_delete_by_ids_and_prefixes_records_the_ids(db_path: str) -> None:
    dev, prod = _seed(db_path)
    store = td.TraceStore(db_path)
    unknown = "f" * 32 if not any(t.startswith("f" * 32) for t in dev + prod) else "e" * 32
    # A full id not in the store is skipped (MLflow's way); a prefix names one trace.
    assert store.delete_traces(trace_ids=[dev[0], "tr-" + dev[1].upper(), unknown]) == 2
    assert store.delete_traces(trace_ids=prod[0][:12]) == 1  # one id, not its characters
    left = {t.info.trace_id for t in store.search_traces(max_results=None)}
    assert left == {dev[2], prod[1], prod[2]}
    records = _deletions(store)
    assert [sorted(r["trace_ids"]) for r in records] == [sorted(dev[:2]), [prod[0]]]
    assert [r["trace_count"] for r in records] == [2, 1]


def test_a_prefix_that_names_no_trace_deletes_nothing(db_path: str) -> None:
    dev, _ = _seed(db_path)
    store = td.TraceStore(db_path)
    with pytest.raises(td.TraceNotFoundError):
        store.delete_traces(trace_ids=[dev[0], "0123z"])
    assert store.count_traces() == 6 and _deletions(store) == []


def test_delete_by_age_with_a_cap_takes_the_oldest_first(db_path: str) -> None:
    ids = [trace_at("job", hours_ago(hours)) for hours in (50, 40, 30, 20, 10)]  # oldest first
    fresh = trace_at("job", hours_ago(0))
    assert td.flush(10)
    store = td.TraceStore(db_path)

    assert store.count_deletable(older_than="1d") == 3
    assert store.delete_traces(older_than="1d", max_traces=2) == 2
    assert store.delete_traces(max_timestamp_millis=int(hours_ago(15))) == 2
    assert {t.info.trace_id for t in store.search_traces(max_results=None)} == {ids[4], fresh}
    first, second = _deletions(store)
    assert first["max_traces"] == 2 and second["max_traces"] is None
    assert abs(first["max_timestamp_ms"] - hours_ago(24)) < 60_000  # the cutoff: a day ago
    assert second["max_timestamp_ms"] == pytest.approx(hours_ago(15), abs=60_000)


def test_selectors_combine_with_and(db_path: str) -> None:
    old_dev = trace_at("job", hours_ago(48), tags={"env": "dev"})
    trace_at("job", hours_ago(48), tags={"env": "prod"})
    trace_at("job", hours_ago(1), tags={"env": "dev"})
    assert td.flush(10)
    assert td.delete_traces("tags.env = 'dev'", older_than="1d") == 1  # the default store
    assert td.search_traces(f"trace_id = '{old_dev}'") == []
    assert len(td.search_traces(max_results=None)) == 2


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"filter_string": ""}, {"filter_string": "   "}, {"max_traces": 5}],
    ids=["nothing", "empty filter", "blank filter", "only a cap"],
)
def test_no_selector_is_an_error_and_deletes_nothing(db_path: str, kwargs: dict) -> None:
    _seed(db_path)
    store = td.TraceStore(db_path)
    with pytest.raises(td.FilterError, match="needs a selector"):
        store.delete_traces(**kwargs)
    with pytest.raises(td.FilterError, match="needs a selector"):
        td.delete_traces(**kwargs)
    assert store.count_traces() == 6 and _deletions(store) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"older_than": "30x"}, td.ConfigError, "'30d', '12h'"),
        ({"older_than": "0s"}, td.ConfigError, "positive"),
        ({"older_than": "1w"}, td.ConfigError, "units s, m, h, d"),
        ({"older_than": "1d", "max_traces": 0}, td.FilterError, "max_traces"),
        ({"max_timestamp_millis": "yesterday"}, td.FilterError, "max_timestamp_millis"),
        ({"filter_string": "tags.env ="}, td.FilterError, "position"),
        ({"trace_ids": [None]}, td.FilterError, "trace_ids"),
    ],
)
def test_bad_arguments_are_clear_errors(
    db_path: str, kwargs: dict, error: type, match: str
) -> None:
    _seed(db_path)
    store = td.TraceStore(db_path)
    with pytest.raises(error, match=match):
        store.delete_traces(**kwargs)
    assert store.count_traces() == 6


def test_a_cap_or_cutoff_beyond_64_bits_means_no_cap_and_every_time(db_path: str) -> None:
    """Python ints have no size: a cap of 10**23 is no cap, a cutoff of 10**30 ms is after every
    trace, -10**30 before every one. DuckDB used to fail to cast them (a raw engine error) and
    ClickHouse deleted the traces and then failed to record the deletion (OverflowError)."""
    _dev, prod = _seed(db_path)
    store = td.TraceStore(db_path)
    assert store.count_deletable("tags.env = 'dev'", max_traces=10**23) == 3
    assert store.count_deletable(max_timestamp_millis=-(10**30)) == 0
    assert store.count_deletable(max_timestamp_millis=10**30) == 6

    assert store.delete_traces("tags.env = 'dev'", max_traces=2**63) == 3
    assert store.delete_traces(f"trace_id = '{prod[0]}'", max_timestamp_millis=10**30) == 1
    assert store.delete_traces(max_timestamp_millis=-(10**30)) == 0
    assert store.delete_traces(older_than=1e308) == 0  # seconds: was int(inf), OverflowError

    assert store.count_traces() == 2
    first, second = _deletions(store)  # each one recorded (deleting nothing is not)
    assert (first["filter"], first["max_traces"]) == ("tags.env = 'dev'", 2**63 - 1)
    assert second["max_timestamp_ms"] == 2**63 - 1


def _holders(store: td.TraceStore, key: str, name: str) -> list[str]:
    """The traces that hold exclusive ``key`` among roots called ``name``: DuckDB's
    ``exclusive_holders`` table; on ClickHouse the latest claim (kept in its tag events)."""
    if not store.path.startswith("chdb:"):
        rows = store.sql(f"SELECT trace_id FROM exclusive_holders WHERE key = '{key}'")
        return [r["trace_id"] for r in rows.to_pylist()]
    from traceduck.store.clickhouse._events import holders
    from traceduck.store.duckdb._tags import scope_value

    return list(holders(store.conn, [(key, scope_value("name", name))]).values())


def test_an_exclusive_tag_of_a_deleted_trace_has_no_holder_and_moves_from_no_one(
    db_path: str,
) -> None:
    first = trace_at("train", hours_ago(2))
    second = trace_at("train", hours_ago(1))
    assert td.flush(10)
    store = td.TraceStore(db_path)
    store.set_trace_tag(first, "latest", True, exclusive=True)
    assert _holders(store, "latest", "train") == [first]

    assert store.delete_traces(trace_ids=[first]) == 1
    assert _holders(store, "latest", "train") == []

    store.set_trace_tag(second, "latest", True)  # still exclusive: the registry stays
    assert _holders(store, "latest", "train") == [second]
    events = store.sql("SELECT trace_id, key, operation FROM tag_events WHERE key = 'latest'")
    assert events.to_pylist() == [{"trace_id": second, "key": "latest", "operation": "set"}]


def test_a_deleted_holder_does_not_hand_the_tag_back(db_path: str) -> None:
    first = trace_at("train", hours_ago(2))
    second = trace_at("train", hours_ago(1))
    assert td.flush(10)
    store = td.TraceStore(db_path)
    store.set_trace_tag(first, "latest", True, exclusive=True)
    store.set_trace_tag(second, "latest", True)  # moves from first

    assert store.delete_traces(trace_ids=[second]) == 1
    assert _holders(store, "latest", "train") == []  # not first again
    assert "latest" not in store.get_trace_info(first).tags
    assert store.search_traces("tags.latest = true") == []

    store.set_trace_tag(first, "latest", True)
    assert _holders(store, "latest", "train") == [first]
    events = store.sql(
        f"SELECT operation FROM tag_events WHERE key = 'latest' AND trace_id = '{first}'"
    )
    assert sorted(r["operation"] for r in events.to_pylist()) == ["moved", "set", "set"]


def test_a_read_only_store_refuses_to_delete(db_path: str, tmp_path: Path) -> None:
    _seed(db_path)
    td.shutdown()
    store = td.TraceStore(db_path, read_only=True)
    with pytest.raises(td.StorageError, match="read-only"):
        store.delete_traces("tags.env = 'dev'")
    assert store.count_traces() == 6
