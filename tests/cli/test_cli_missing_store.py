"""A mistyped --db: reading commands say so and exit 1; writing commands create the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import traceduck as td

from ._helpers import run

READING = [
    ["search"],
    ["search", "status = 'ERROR'", "--json"],
    ["show", "abc123"],
    ["sql", "SELECT count(*) FROM traces"],
    ["stats"],
    ["compare", "--where", "status = 'OK'"],
    ["export", "--to", "{tmp}/out.jsonl"],
    ["tag", "add", "abc123", "k=v"],
    ["tag", "rm", "--where", "status = 'OK'", "--yes", "k"],
    ["tag", "history", "abc123"],
    ["metadata", "log", "abc123", "k=v"],
    ["metadata", "history", "abc123"],
]


@pytest.mark.parametrize("args", READING, ids=[" ".join(a[:2]) for a in READING])
@pytest.mark.parametrize("where", ["file", "folder"])
def test_reading_command_on_a_missing_store_is_one_error(
    args: list[str], where: str, tmp_path: Path
) -> None:
    missing = tmp_path / ("doesnotexist.duckdb" if where == "file" else "nodir/t.duckdb")
    result = run(*(a.replace("{tmp}", str(tmp_path)) for a in args), "--db", str(missing))
    assert result.code == 1
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"error: no store at {missing}")
    assert ("no folder" if where == "folder" else "no such file") in lines[0]
    assert not missing.exists() and not missing.parent.joinpath("doesnotexist.duckdb.wal").exists()


@pytest.mark.parametrize("args", READING, ids=[" ".join(a[:2]) for a in READING])
def test_reading_command_on_a_missing_chdb_directory_is_one_error(
    args: list[str], tmp_path: Path
) -> None:
    """As for a DuckDB file: a chdb directory that does not exist is a mistyped --db. It used
    to be created (a whole empty ClickHouse store) and the command answered 'no trace matches'."""
    missing = tmp_path / "nodir"
    url = f"chdb://{missing}?database=traces"
    result = run(*(a.replace("{tmp}", str(tmp_path)) for a in args), "--db", url)
    assert result.code == 1
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"error: no store at {url} (no such directory {missing})")
    assert not missing.exists()


def test_default_store_missing_names_the_environment_variable(tmp_path: Path) -> None:
    missing = str(tmp_path / "env.duckdb")
    result = run("search", env={"TRACEDUCK_DB": missing})
    assert result.code == 1
    assert f"no store at {missing}" in result.err and "$TRACEDUCK_DB" in result.err


def test_writing_commands_still_create_the_store(db: str, tmp_path: Path) -> None:
    exported = tmp_path / "all.jsonl"
    assert run("export", "--to", str(exported), "--db", db).code == 0
    new = tmp_path / "new" / "copy.duckdb"
    new.parent.mkdir()
    result = run("import", str(exported), "--db", str(new))
    assert result.code == 0, result.err
    found = run("search", "--json", "--db", str(new))
    assert found.code == 0 and len(json.loads(found.out)) == 9
    demo = tmp_path / "demo.duckdb"
    try:
        assert run("demo", "--traces", "2", "--db", str(demo)).code == 0
    finally:
        td.shutdown()  # the demo configured tracing in this process
    assert demo.exists()


def test_an_existing_empty_store_is_an_empty_answer(tmp_path: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    empty.touch()  # a 0-byte file counts as a new, empty store
    result = run("search", "--json", "--db", str(empty))
    assert (result.code, json.loads(result.out)) == (0, [])
