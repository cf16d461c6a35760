"""Every reading and editing command takes a store URL (``--db chdb:///dir``,
``--db clickhouse://...``, ``$TRACEDUCK_DB``); a bad or unreachable one is one line, exit 1."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from traceduck import TraceStore

from ._helpers import PYTHON, REQUESTS, child_env, run

# Each command with the arguments it needs (FILE: an export file to import, OUT: a file to
# export to, ID: a trace id prefix).
COMMANDS = [
    ["search"],
    ["show", "ID"],
    ["tag", "add", "ID", "k=1"],
    ["tag", "history", "ID"],
    ["metadata", "log", "ID", "k=1"],
    ["metadata", "history", "ID"],
    ["stats"],
    ["compare", "ID"],
    ["sql", "SELECT 1 AS one"],
    ["export", "--to", "OUT"],
    ["import", "FILE"],
    ["ui", "--port", "0"],
]


def _args(command: list[str], tmp_path: Path, file: str, trace_id: str = "abc") -> list[str]:
    places = {"FILE": file, "OUT": str(tmp_path / "out.jsonl"), "ID": trace_id}
    return [places.get(a, a) for a in command]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening) while the test runs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_misspelt_url_is_one_line_and_exit_1(
    command: list[str], tmp_path: Path, template_export: str
) -> None:
    args = _args(command, tmp_path, template_export)
    r = run(*args, "--db", "clickhous://localhost/traces")
    assert r.code == 1, (r.out, r.err)
    assert r.err.splitlines() == [r.err.strip()] and r.err.startswith("error: ")
    assert "unknown store URL scheme 'clickhous://'" in r.err and "clickhouse://" in r.err
    # the same through the environment
    r = run(*args, env={"TRACEDUCK_DB": "chdb://"})
    assert r.code == 1 and len(r.err.splitlines()) == 1 and "names no directory" in r.err


@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if c[0] != "ui"], ids=lambda c: " ".join(c[:2])
)
def test_an_unreachable_server_is_one_line_that_hides_the_password(
    command: list[str], tmp_path: Path, template_export: str, closed_port: int
) -> None:
    url = f"clickhouse://ana:s3cret@127.0.0.1:{closed_port}/traces"
    r = run(*_args(command, tmp_path, template_export), "--db", url)
    assert r.code == 1, (r.out, r.err)
    assert r.err.splitlines() == [r.err.strip()], r.err  # no driver warning beside it
    assert f"cannot reach ClickHouse at clickhouse://ana:***@127.0.0.1:{closed_port}/traces" in (
        r.err
    )
    assert "Connection refused" in r.err and "s3cret" not in r.err


def test_every_command_works_on_a_chdb_url(
    engine_db: str, tmp_path: Path, template_export: str
) -> None:
    """The same commands, given a chdb store by --db or $TRACEDUCK_DB, do their work there."""
    db = engine_db
    tid = TraceStore(db).search_traces("tags.env = 'dev'")[0].info.trace_id
    for command in COMMANDS:
        if command[0] == "ui":
            continue  # serves until stopped: tests/ui/test_cli_ui.py
        r = run(*_args(command, tmp_path, template_export, tid[:10]), "--db", db)
        assert r.code == 0, (command, r.err)
    store = TraceStore(db)
    assert store.get_trace(tid).info.tags["k"] == 1
    assert store.get_trace(tid).info.metadata["k"] == 1
    exported = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(exported) == 1 + len(REQUESTS) + 2
    r = run("search", "--tag", "k=1", "--json", env={"TRACEDUCK_DB": db})
    assert [row["trace_id"] for row in json.loads(r.out)] == [tid]
    r = run("compare", tid[:10], "--json", "--db", db)
    assert json.loads(r.out)["tags.k"] == {tid: 1}


def test_the_driver_logs_nothing_beside_the_error_line(closed_port: int) -> None:
    """In a real process (no test logging around it) stderr holds the one line only."""
    r = subprocess.run(
        [PYTHON, "-m", "traceduck", "search", "--db", f"clickhouse://127.0.0.1:{closed_port}/x"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert r.stderr.splitlines() == [r.stderr.strip()], r.stderr
    assert r.stderr.startswith("error: cannot reach ClickHouse") and r.stdout == ""
