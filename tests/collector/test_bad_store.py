"""`traceduck collector` on a store it cannot write: it refuses to start with one line, rather
than accepting OTLP and dropping every trace; a store that is only locked is waited for."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from traceduck import TraceStore

from ._client import one_span_traces, start_collector
from .conftest import child_env

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _collector_cli(db: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "traceduck", "collector", "--db", db, "--http-port", "0",
         "--grpc-port", "0"],
        env=child_env(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bytes(range(256)) * 64, "not a readable DuckDB database"),
        (b"name,value\nx,1\n", "not a readable DuckDB database"),
    ],
    ids=["random-bytes", "csv-text"],
)
def test_a_corrupt_or_foreign_file_is_one_line_and_exit_1_and_left_untouched(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    store = tmp_path / "store.duckdb"
    store.write_bytes(content)
    before = _digest(store)
    done = _collector_cli(str(store))
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""  # never announced that it listens
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(store.name) in lines[0] and expected in lines[0]
    assert _digest(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.duckdb"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a-directory", "is a directory, not a DuckDB file"),
        ("missing/store.duckdb", "does not exist"),
        ("chdb://{tmp}/a-file", "is a file, not a chdb directory"),
    ],
)
def test_a_store_name_that_cannot_be_a_store_is_refused(
    tmp_path: Path, name: str, expected: str
) -> None:
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("not chdb")
    done = _collector_cli(name.format(tmp=tmp_path) if "{" in name else str(tmp_path / name))
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert expected in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""


def test_a_chdb_directory_in_use_by_another_process_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "chdb"
    directory.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, traceduck as td; td.TraceStore(sys.argv[1]).search_traces(); "
         "print('held', flush=True); sys.stdin.read()", f"chdb://{directory}"],
        env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        done = _collector_cli(f"chdb://{directory}")
    finally:
        holder.communicate("", timeout=60)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert "in use by another process" in done.stderr and "Traceback" not in done.stderr


def test_a_locked_duckdb_file_is_waited_for_not_refused(tmp_path: Path) -> None:
    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, duckdb; con = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "sys.stdin.read(); con.close()", str(db)],
        env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    try:
        server = start_collector(str(db))  # starts although the file is held
        body, ids = one_span_traces(3)
        answer = requests.post(server.http_endpoint, data=body, headers=PROTOBUF, timeout=30)
        assert answer.status_code == 200
    finally:
        holder.communicate("", timeout=60)  # lets go of the file
    code, err = server.terminate()
    assert code == 0, err
    stored = {r.as_py() for r in TraceStore(str(db)).sql("SELECT trace_id FROM traces").column(0)}
    assert stored == set(ids)
