"""`traceduck delete` and `traceduck prune`: the count first, the confirmation, the record."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

import traceduck as td
from _old_traces import hours_ago, trace_at
from traceduck.store.duckdb._databases import get_database

from ._helpers import PYTHON, REQUESTS, child_env, run

STAGING = sum(1 for _, env, *_ in REQUESTS if env == "staging")
TOTAL = len(REQUESTS) + 2


def _deletions(db: str) -> list[dict]:
    return td.TraceStore(db).sql("SELECT * FROM deletions ORDER BY deletion_id").to_pylist()


def test_delete_with_yes_deletes_the_matching_traces_and_records_it(db: str) -> None:
    result = run("delete", "tags.env = 'staging'", "--yes", "--db", db)
    assert result.code == 0, result.err
    assert result.out.startswith(f"deleted {STAGING} traces")
    store = td.TraceStore(db)
    assert store.count_traces() == TOTAL - STAGING
    assert store.count_traces("tags.env = 'staging'") == 0
    [record] = _deletions(db)
    assert record["source"] == "cli" and record["filter"] == "tags.env = 'staging'"
    assert record["trace_count"] == STAGING and record["max_traces"] == STAGING


def test_without_yes_and_without_a_terminal_it_deletes_nothing_and_says_why(db: str) -> None:
    result = run("delete", "tags.env = 'staging'", "--db", db)  # click's runner: no terminal
    assert result.code == 1
    assert f"found {STAGING} traces matching tags.env = 'staging'" in result.err
    assert "no terminal" in result.err and "--yes" in result.err
    assert td.TraceStore(db).count_traces() == TOTAL and _deletions(db) == []


def _on_a_terminal(db: str, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`traceduck delete ARGS` with a terminal on stdin, typing ``answer``."""
    master, slave = pty.openpty()
    try:
        os.write(master, answer.encode() + b"\n")
        return subprocess.run(
            [PYTHON, "-m", "traceduck", "delete", *args, "--db", db],
            stdin=slave,
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=60,
        )
    finally:
        os.close(slave)
        os.close(master)


def test_on_a_terminal_it_asks_and_deletes_only_on_yes(db: str) -> None:
    get_database(db).close()  # the child process opens the file
    no = _on_a_terminal(db, "n", "tags.env = 'staging'")
    assert no.returncode == 0, no.stderr
    assert f"Delete {STAGING} traces matching tags.env = 'staging'" in no.stderr
    assert "nothing was deleted" in no.stderr
    assert td.TraceStore(db).count_traces() == TOTAL
    get_database(db).close()
    yes = _on_a_terminal(db, "y", "tags.env = 'staging'")
    assert yes.returncode == 0, yes.stderr
    assert f"deleted {STAGING} traces" in yes.stdout
    assert td.TraceStore(db).count_traces() == TOTAL - STAGING


def test_delete_by_id_prefix(db: str) -> None:
    [target] = td.TraceStore(db).search_traces("name = 'ingest'", max_results=1)
    tid = target.info.trace_id
    result = run("delete", "--id", tid[:10], "--yes", "--db", db)
    assert result.code == 0, result.err
    assert result.out.startswith("deleted 1 trace")
    assert td.TraceStore(db).count_traces(f"trace_id = '{tid}'") == 0
    assert json.loads(_deletions(db)[0]["trace_ids"]) == [tid]


def test_no_match_deletes_nothing_and_succeeds(db: str) -> None:
    result = run("delete", "tags.env = 'nowhere'", "--db", db)
    assert result.code == 0 and "nothing deleted" in result.out
    assert _deletions(db) == []


@pytest.mark.parametrize("age", ["9999999999999d", "99999999999999999d"])
def test_an_age_before_year_one_deletes_nothing_and_says_so(db: str, age: str) -> None:
    """The message named the cutoff as a date, which Python cannot make before year 1:
    'error: [Errno 75] Value too large' or 'unexpected OverflowError' instead."""
    for command in ("delete", "prune"):
        result = run(command, "--older-than", age, "--yes", "--db", db)
        assert result.code == 0, result.err
        assert result.out.startswith("no trace started before") and "nothing deleted" in result.out
    assert td.TraceStore(db).count_traces() == TOTAL


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give a FILTER, --id ID or --older-than"),
        (("--older-than", "30x"), "'30d', '12h'"),
        (("tags.env =",), "expected a value"),
    ],
)
def test_bad_input_is_a_clear_error(db: str, args: tuple[str, ...], message: str) -> None:
    result = run("delete", *args, "--yes", "--db", db)
    assert result.code in (1, 2) and message in result.err
    assert "Traceback" not in result.out + result.err
    assert td.TraceStore(db).count_traces() == TOTAL


def _aged_store(tmp_path: Path) -> tuple[str, list[str], list[str]]:
    path = str(tmp_path / "aged.duckdb")
    td.configure(db=path, auto_context=False)
    old = [trace_at("job", hours_ago(h)) for h in (72, 50)]
    young = [trace_at("job", hours_ago(h)) for h in (20, 0)]
    assert td.flush(10)
    td.shutdown()
    get_database(path).close()
    return path, old, young


def test_prune_deletes_what_started_before_the_age(tmp_path: Path) -> None:
    path, _, young = _aged_store(tmp_path)
    refused = run("prune", "--older-than", "1d", "--db", path)
    assert refused.code == 1 and "2 traces started before" in refused.err
    result = run("prune", "--older-than", "1d", "--yes", "--db", path)
    assert result.code == 0, result.err
    assert result.out.startswith("deleted 2 traces")
    store = td.TraceStore(path)
    assert sorted(t.info.trace_id for t in store.search_traces()) == sorted(young)
    [record] = _deletions(path)
    assert record["source"] == "cli" and record["filter"] is None
    assert record["max_timestamp_ms"] == pytest.approx(hours_ago(24), abs=60_000)
    assert run("prune", "--older-than", "1d", "--yes", "--db", path).out.startswith("no trace")


def test_delete_older_than_combines_with_a_filter(tmp_path: Path) -> None:
    path, old, young = _aged_store(tmp_path)
    result = run("delete", f"trace_id != '{old[0]}'", "--older-than", "1d", "-y", "--db", path)
    assert result.code == 0, result.err
    left = {t.info.trace_id for t in td.TraceStore(path).search_traces()}
    assert left == {old[0], *young}


def test_prune_needs_an_age(db: str) -> None:
    result = run("prune", "--yes", "--db", db)
    assert result.code == 2 and "--older-than" in result.err
