"""The search table: says when it shows only part of the matches, and never breaks an id or a
tag on a narrow terminal."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

import traceduck as td
from traceduck import TraceStore

from ._helpers import run, with_trace_ids


def _rows(out: str) -> list[list[list[str]]]:
    """The table's body rows, each a list of its lines, each line a list of its cells."""
    rows: list[list[list[str]]] = []
    for line in out.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[0] or not rows:
            rows.append([cells])
        else:
            rows[-1].append(cells)
    return rows


# -- item 4: how many more match ---------------------------------------------------------------


def test_a_cut_page_says_how_many_match(db: str) -> None:
    result = run("search", "--tag", "env=prod", "--limit", "2", "--db", db)
    assert result.code == 0
    assert len(_rows(result.out)) == 2
    assert "2 of 3 shown; --limit N for more" in result.out
    whole = run("search", "--tag", "env=prod", "--db", db)
    assert len(_rows(whole.out)) == 3 and "shown" not in whole.out  # nothing left out


def test_json_stays_json_and_the_note_goes_to_stderr(db: str) -> None:
    result = run("search", "--json", "--limit", "4", "--db", db)
    assert len(json.loads(result.out)) == 4
    assert "4 of 9 shown; --limit N for more" in result.err


def test_demo_prints_a_command_that_shows_what_the_demo_showed(tmp_path: Path) -> None:
    path = str(tmp_path / "demo.duckdb")
    try:
        demo = run("demo", "--traces", "40", "--db", path)
    finally:
        td.shutdown()  # the demo configured tracing in this process
    assert demo.code == 0, demo.err
    lines = demo.out.splitlines()
    command = next(line[2:] for line in lines if line.startswith("$ traceduck search"))
    shown = demo.out.split(f"$ {command}\n", 1)[1].split("\nnext:", 1)[0].strip()
    again = run(*shlex.split(command)[1:])
    assert again.code == 0
    assert again.out.strip() == shown  # same rows, same "N of M shown" line
    matching = TraceStore(path).count_traces("status = 'ERROR' OR tags.cost > 0.03")
    if matching > 10:
        assert f"10 of {matching} shown" in shown


# -- item 7: narrow terminals ------------------------------------------------------------------


@pytest.mark.parametrize("columns", ["80", "100"])
def test_ids_are_never_broken_on_a_narrow_terminal(db: str, columns: str) -> None:
    TraceStore(db).set_trace_tags(
        "trace_id LIKE '%'", {"model": "gpt-4o-mini-2024-07-18-a-very-long-model-name", "n": 25}
    )
    result = run("search", "--db", db, env={"COLUMNS": columns})
    assert result.code == 0
    assert max(len(line) for line in result.out.splitlines()) <= int(columns)
    rows = _rows(result.out)
    assert len(rows) == 9
    for row in rows:
        shown = row[0][0]
        assert len(shown) >= 8
        assert all(line[0] == "" for line in row[1:]), row  # the id is on one line, whole
        assert run("show", shown, "--db", db).code == 0  # a unique prefix: it can be copied
        tag_lines = [line[-1] for line in row if line[-1]]
        assert "n=25" in " ".join(tag_lines).split()  # a tag is never split across lines
        long = [t for t in tag_lines if t.startswith("model=")]
        assert long and long[0].endswith("…")  # too long for the column: cut, on one line


def test_a_wide_terminal_shows_whole_ids(db: str) -> None:
    ids = {t.info.trace_id for t in TraceStore(db).search_traces(max_results=None)}
    result = run("search", "--db", db, env={"COLUMNS": "200"})
    assert {row[0][0] for row in _rows(result.out)} == ids


def test_the_prefix_grows_until_it_is_unique_in_the_store(db: str, tmp_path: Path) -> None:
    twins = ["abcdef0123" + "4" * 22, "abcdef0123" + "5" * 22]
    path = with_trace_ids(db, tmp_path, twins, where="name = 'ingest'")
    one = run("search", "name = 'ingest'", "--limit", "1", "--db", path, env={"COLUMNS": "80"})
    shown = _rows(one.out)[0][0][0]  # only one twin is listed, yet the other is in the store
    assert shown in ("abcdef01234", "abcdef01235")
    assert run("show", shown, "--db", path).code == 0
