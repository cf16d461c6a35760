"""`traceduck demo` fills a store that search, show and sql then read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from traceduck.cli import main


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("cli") / "demo.duckdb")
    result = CliRunner().invoke(main, ["demo", "--db", path, "--traces", "30"])
    assert result.exit_code == 0, result.output
    assert "traced 30 requests" in result.output
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_search_json_lists_matching_traces(demo_db: str) -> None:
    code, out, _ = run("search", "status = 'ERROR'", "--json", "--db", demo_db, "--limit", "100")
    assert code == 0
    rows = json.loads(out)
    assert rows, "the demo records failing requests"
    assert all(r["status"] == "ERROR" and len(r["trace_id"]) == 32 for r in rows)
    code, out, _ = run("sql", "SELECT count(*) AS n FROM traces WHERE status = 'ERROR'",
                       "--json", "--db", demo_db)  # fmt: skip
    assert json.loads(out) == [{"n": len(rows)}]


def test_show_prints_the_span_tree(demo_db: str) -> None:
    code, out, _ = run("search", "--json", "--db", demo_db, "--limit", "1")
    trace_id = json.loads(out)[0]["trace_id"]
    code, out, _ = run("show", trace_id[:10], "--db", demo_db)
    assert code == 0
    assert "answer" in out and "retrieve" in out and "generate" in out


def test_bad_filter_is_one_line_with_a_caret_and_exit_1(demo_db: str) -> None:
    code, out, err = run("search", "tags.env = ", "--db", demo_db)
    assert code == 1
    assert "Traceback" not in out + err
    assert "error:" in err and "^" in err


def test_unknown_trace_id_is_a_clear_error(demo_db: str) -> None:
    code, _, err = run("show", "ffffffffffff", "--db", demo_db)
    assert code == 1
    assert "no trace id starts with" in err


def test_write_sql_is_refused(demo_db: str) -> None:
    code, _, err = run("sql", "DELETE FROM traces", "--db", demo_db)
    assert code == 1 and "read-only" in err
    code, out, _ = run("sql", "SELECT count(*) AS n FROM traces", "--json", "--db", demo_db)
    assert json.loads(out) == [{"n": 30}]


def test_tracedb_env_var_is_the_default_store(
    demo_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACEDUCK_DB", demo_db)
    code, out, _ = run("sql", "SELECT count(*) AS n FROM traces", "--json")
    assert code == 0 and json.loads(out) == [{"n": 30}]


def test_show_sql_prints_bound_parameters_not_pasted_values(tmp_path: Path, demo_db: str) -> None:
    code, out, _ = run("search", "tags.env = 'zebra'", "--show-sql", "--db", demo_db)
    assert code == 0
    sql, params = out.split("-- params:", 1)
    assert "zebra" not in sql
    assert "'zebra'" in params
