"""`traceduck search`, `show`, `sql`, `stats` (and compare's JSON) on a store filled by real
tracing, on both engines."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from traceduck import TraceStore

from ._helpers import REQUESTS, run, with_trace_ids


@pytest.fixture
def db(engine_db: str) -> str:
    """Every test here runs on a DuckDB file and on chdb (``--db chdb:///...``)."""
    return engine_db


def _latencies(db: str, where: str | None = None) -> list[float]:
    traces = TraceStore(db).search_traces(where, max_results=None)
    return sorted(t.info.execution_time_ms for t in traces)


def _quantile(xs: list[float], q: float) -> float:
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def test_search_json_is_a_list_of_traces_with_typed_tags(db: str) -> None:
    r = run("search", "tags.cost > 0.035", "--json", "--db", db)
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    expected = sorted(c for _, _, c, _ in REQUESTS if c > 0.035)
    assert sorted(row["tags"]["cost"] for row in rows) == expected
    assert all(len(row["trace_id"]) == 32 and row["name"] == "answer" for row in rows)
    # newest first by default
    stamps = [row["timestamp_ms"] for row in rows]
    assert stamps == sorted(stamps, reverse=True)


def test_search_table_shows_id_prefix_name_status_and_tags(db: str) -> None:
    r = run("search", "status = 'ERROR'", "--db", db)
    assert r.code == 0
    assert r.out.count("ERROR") == sum(1 for *_, fails in REQUESTS if fails)
    assert "answer" in r.out and "env=" in r.out


def test_search_csv_has_a_header_and_one_row_per_trace(db: str) -> None:
    r = run("search", "--csv", "--limit", "100", "--db", db)
    assert r.code == 0
    rows = list(csv.DictReader(io.StringIO(r.out)))
    assert len(rows) == len(REQUESTS) + 2
    answers = [row for row in rows if row["name"] == "answer"]
    assert {json.loads(row["tags"])["env"] for row in answers} == {"prod", "staging", "dev"}


def test_limit_and_order_by(db: str) -> None:
    r = run("search", "name = 'answer'", "--order-by", "tags.cost DESC", "--limit", "2",
            "--json", "--db", db)  # fmt: skip
    assert [row["tags"]["cost"] for row in json.loads(r.out)] == [0.07, 0.06]


def test_tag_shortcut_means_tags_key_equals_value(db: str) -> None:
    r = run("search", "--tag", "env=staging", "--tag", "cost=0.04", "--json", "--db", db)
    rows = json.loads(r.out)
    assert [(row["tags"]["env"], row["tags"]["cost"]) for row in rows] == [("staging", 0.04)]
    # combined with a filter by AND
    r = run("search", "status = 'ERROR'", "--tag", "env=prod", "--json", "--db", db)
    assert [row["tags"]["cost"] for row in json.loads(r.out)] == [0.03]


def test_show_sql_prints_bound_parameters(db: str) -> None:
    r = run("search", "tags.env = 'zebra'", "--show-sql", "--db", db)
    assert r.code == 0
    sql, params = r.out.split("-- params:", 1)
    assert "zebra" not in sql and "'zebra'" in params


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "tags.env = "], "expected a value"),
        (["search", "tagz.env = 'x'"], "did you mean"),
        (["search", "tags.cost > 'high'"], "tags.cost"),
        (["stats", "status = 'MAYBE'"], "status"),
        (["export", "name ==", "--to", "x.jsonl"], "name"),
    ],
)
def test_bad_filters_are_one_line_with_a_caret(db: str, args: list[str], message: str) -> None:
    r = run(*args, "--db", db)
    assert r.code == 1
    assert r.out == ""
    lines = r.err.splitlines()
    assert lines[0].startswith("error: ") and message in r.err
    assert len(lines) == 3 and lines[2].strip() == "^", r.err  # message, filter, caret
    assert "Traceback" not in r.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--limit", "0"], "--limit"),
        (["search", "--json", "--csv"], "--json and --csv"),
        (["search", "--tag", "=x"], "key is empty"),
        (["search", "--tag", 'k=["a"]'], "--tag takes"),
        (["search", "--order-by", "nonsense DESC"], "nonsense"),
        (["stats", "--by", "colour"], "cannot group by"),
        (["show", "zz-not-hex"], "not a trace id"),
        (["show", "ffffffffffff"], "no trace id starts with"),
        (["sql", "DELETE FROM traces"], "read-only"),
        (["sql", "SELECT nope FROM traces"], "SQL error"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_arguments_fail_with_one_clear_line(db: str, args: list[str], message: str) -> None:
    r = run(*args, "--db", db)
    assert r.code != 0
    assert message in r.err
    assert "Traceback" not in r.out + r.err
    errors = [line for line in r.err.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1, r.err


def test_an_ambiguous_prefix_lists_candidates(db: str, tmp_path: Path) -> None:
    copy = with_trace_ids(db, tmp_path, ["abcd1" + "0" * 27, "abcd2" + "0" * 27])
    r = run("show", "abcd", "--db", copy)
    assert r.code == 1
    assert "ambiguous" in r.err and "abcd1" in r.err and "abcd2" in r.err
    assert run("show", "abcd2", "--db", copy).code == 0


def test_show_prints_tree_errors_inputs_outputs_tags_and_metadata(db: str) -> None:
    store = TraceStore(db)
    failed = store.search_traces("status = 'ERROR' AND tags.env = 'prod'")[0].info.trace_id
    r = run("show", failed[:10], "--db", db)
    assert r.code == 0, r.err
    out = r.out
    assert out.index("answer") < out.index("retrieve")  # root before its child
    assert "TimeoutError: the model did not answer in time" in out
    assert '"question": "please fail"' in out  # inputs
    assert "doc about please fail" in out  # the child's output
    assert "env" in out and "prod" in out and "u-prod" in out  # tags and metadata
    r = run("show", failed, "--json", "--db", db)
    whole = json.loads(r.out)
    assert whole["info"]["trace_id"] == failed and len(whole["spans"]) == 2


def test_show_truncates_long_values(tmp_path: Path, db: str) -> None:
    store = TraceStore(db)
    tid = store.search_traces("name = 'answer'")[0].info.trace_id
    store.log_metadata(tid, {"essay": "x" * 5000})
    r = run("show", tid, "--width", "40", "--db", db)
    assert r.code == 0
    assert "x" * 5000 not in r.out and "…" in r.out


def test_control_characters_in_stored_text_are_shown_not_sent_to_the_terminal(db: str) -> None:
    """A tag or metadata value holding an ANSI sequence (any OpenTelemetry sender can
    store one) is printed as visible escapes: show and compare wrote the raw ESC, so a value
    could recolour the terminal or set its title."""
    store = TraceStore(db)
    tid = store.search_traces("name = 'answer'")[0].info.trace_id
    store.set_trace_tag(tid, "ansi", "\x1b[31mRED\x1b[0m")
    store.log_metadata(tid, {"title": "\x1b]0;pwned\x07"})
    for args in (
        ["show", tid],
        ["compare", tid],
        ["search", f"trace_id = '{tid}'"],
        ["tag", "history", tid],
        ["metadata", "history", tid],
    ):
        r = run(*args, "--db", db)
        assert r.code == 0, r.err
        assert "\x1b" not in r.out and "\x07" not in r.out, args
    assert "\\x1b[31mRED" in run("show", tid, "--db", db).out


def test_sql_prints_rows_as_table_json_and_csv(db: str) -> None:
    query = "SELECT name, count(*) AS n FROM traces GROUP BY name ORDER BY name"
    r = run("sql", query, "--json", "--db", db)
    assert json.loads(r.out) == [{"name": "answer", "n": len(REQUESTS)}, {"name": "ingest", "n": 2}]
    r = run("sql", query, "--csv", "--db", db)
    assert r.out.splitlines() == ["name,n", f"answer,{len(REQUESTS)}", "ingest,2"]
    r = run("sql", query, "--db", db)
    assert "answer" in r.out and "ingest" in r.out


@pytest.mark.parametrize(
    ("args", "empty"),
    [(["search"], []), (["stats"], []), (["compare", "--where"], {})],
    ids=["search", "stats", "compare"],
)
def test_json_output_is_json_when_nothing_matches(db: str, args: list[str], empty: object) -> None:
    """A script reads JSON whatever matched: compare --json printed 'no traces match'."""
    r = run(*args, "tags.env = 'nowhere'", "--json", "--db", db)
    assert r.code == 0, r.err
    assert json.loads(r.out) == empty


def test_stats_by_tag_counts_errors_and_percentiles(db: str) -> None:
    r = run("stats", "name = 'answer'", "--by", "tags.env", "--json", "--db", db)
    assert r.code == 0, r.err
    groups = {g["group"]: g for g in json.loads(r.out)}
    assert set(groups) == {"prod", "staging", "dev"}
    assert (groups["prod"]["count"], groups["prod"]["errors"]) == (3, 1)
    assert groups["prod"]["error_rate"] == pytest.approx(1 / 3)
    assert groups["dev"]["errors"] == 0
    xs = _latencies(db, "tags.env = 'staging'")
    for q, key in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
        assert groups["staging"][key] == pytest.approx(_quantile(xs, q))
    assert groups["staging"]["max_ms"] == pytest.approx(max(xs))


def test_stats_by_name_status_and_untagged_group(db: str) -> None:
    r = run("stats", "--by", "name", "--json", "--db", db)
    counts = {g["group"]: g["count"] for g in json.loads(r.out)}
    assert counts == {"answer": len(REQUESTS), "ingest": 2}
    r = run("stats", "--by", "tags.env", "--json", "--db", db)
    assert {g["group"]: g["count"] for g in json.loads(r.out)}[None] == 2  # ingest: no env tag
    r = run("stats", "--by", "status", "--db", db)
    assert "ERROR" in r.out and "OK" in r.out
    r = run("stats", "--db", db, "--json")
    (whole,) = json.loads(r.out)
    assert whole["count"] == len(REQUESTS) + 2
    xs = _latencies(db)
    assert whole["p50_ms"] == pytest.approx(_quantile(xs, 0.5))


def test_stats_by_nested_metadata(db: str) -> None:
    store = TraceStore(db)
    tid = store.search_traces("tags.env = 'dev'")[0].info.trace_id
    store.log_metadata(tid, {"model": {"name": "duck-7b"}})
    groups = store.stats("name = 'answer'", by="metadata.model.name")
    assert {g["group"]: g["count"] for g in groups} == {"duck-7b": 1, None: len(REQUESTS) - 1}


def test_db_defaults_to_the_environment_then_the_working_directory(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = run("sql", "SELECT count(*) AS n FROM traces", "--json", env={"TRACEDUCK_DB": db})
    assert json.loads(r.out) == [{"n": len(REQUESTS) + 2}]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRACEDUCK_DB", raising=False)
    r = run("search", "--json")  # ./traceduck.duckdb does not exist: said, not an empty table
    assert r.code == 1 and r.out == ""
    assert "no store at traceduck.duckdb" in r.err and "the default" in r.err
    assert not (tmp_path / "traceduck.duckdb").exists()  # reading creates nothing


def test_a_corrupt_store_is_one_line_and_left_untouched(tmp_path: Path) -> None:
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"this is not a database" * 100)
    before = bad.read_bytes()
    for args in (["search"], ["tag", "add", "abc", "k=1"], ["import", str(bad)]):
        r = run(*args, "--db", str(bad))
        assert r.code == 1 and len(r.err.splitlines()) == 1, r.err
        assert "Traceback" not in r.err
    assert bad.read_bytes() == before
