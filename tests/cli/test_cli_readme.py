"""The README's command-line examples run, in order, against a seeded store and stay true."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from traceduck import TraceStore

from ._helpers import REQUESTS, run, with_trace_ids

README = Path(__file__).resolve().parents[2] / "README.md"
PREFIX = "3fa2c1"  # the id prefix the README's examples use


def readme_commands() -> list[list[str]]:
    text = README.read_text()
    start = text.index("\n## Command line\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else None]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def test_the_section_has_examples_of_every_command() -> None:
    used = {" ".join(words[1:3]) if words[1] in ("tag", "metadata") else words[1]
            for words in readme_commands()}  # fmt: skip
    expected = ["search", "show", "stats", "sql", "export", "import", "tag add", "tag update",
                "tag rm", "tag history", "metadata log", "metadata history", "delete",
                "prune"]  # fmt: skip
    assert not set(expected) - used


def test_readme_examples_run(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_path = with_trace_ids(db, tmp_path, [PREFIX + "0" * 26], "tags.env = 'prod'")
    before = TraceStore(store_path).get_trace(PREFIX).info.tags  # its live env and cost tags
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACEDUCK_DB", store_path)
    for words in readme_commands():
        assert words[0] == "traceduck", f"README example is not a traceduck command: {words}"
        result = run(*words[1:])
        assert result.code == 0, f"{shlex.join(words)} failed: {result.err}"
        assert "Traceback" not in result.out + result.err
    # what the examples claim happened
    store = TraceStore(store_path)
    info = store.get_trace(PREFIX).info
    assert set(before) == {"env", "cost"}
    assert info.tags == before | {
        "reviewed": True, "score": 4.5, "flags": ["a", "b"], "source": ["web", "batch"],
        "latest": True,
    }  # fmt: skip
    assert info.metadata["eval"] == {"accuracy": 0.93} and info.metadata["judge"] == "ana"
    assert [e.source for e in store.tag_history(PREFIX)][-1] == "cli"
    errors = sum(1 for *_, fails in REQUESTS if fails)
    copy = TraceStore(tmp_path / "copy.duckdb")
    assert copy.sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": errors}]
    assert store.search_traces("tags.triage IS NOT NULL") == []
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert len(lines) == 1 + len(REQUESTS) + 2 and json.loads(lines[0])["traceduck_export"] == 1
    assert store.count_traces("name = 'ingest'") == 0  # deleted, and the deletion recorded
    assert store.sql("SELECT source, trace_count FROM deletions").to_pylist() == [
        {"source": "cli", "trace_count": 2}
    ]
