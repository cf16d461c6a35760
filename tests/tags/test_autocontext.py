"""Automatic context: metadata.context on every trace, git only inside a work tree, computed
once per process, and never failing the app when git is missing. Each case runs a fresh child
process, since the context is computed once per process in its working directory."""

from __future__ import annotations

import json
import platform
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

import traceduck as td

from .conftest import PYTHON, child_env, last_trace

APP = """
import os, sys
import traceduck as td
td.configure(db=sys.argv[1], service_name="ctx-app", auto_context=sys.argv[2] == "on")

@td.trace
def step(i):
    return i

for i in range(3):
    step(i)
print(os.getpid())
"""

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")


def _run_app(cwd: Path, db: Path, auto: str = "on", **env: str) -> int:
    script = cwd / "app.py"
    script.write_text(APP)
    done = subprocess.run(
        [PYTHON, str(script), str(db), auto],
        cwd=cwd,
        env=child_env(GIT_CEILING_DIRECTORIES=str(cwd.parent), **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout.strip())


def _git(cwd: Path, *args: str) -> str:
    env = child_env(
        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com",
        GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
    )  # fmt: skip
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@needs_git
def test_inside_a_git_work_tree_every_trace_has_the_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("hi\n")
    _git(repo, "add", "README")
    _git(repo, "commit", "-q", "-m", "first")
    _git(repo, "remote", "add", "origin", "https://example.com/team/app.git")
    commit = _git(repo, "rev-parse", "HEAD")
    (repo / "README").write_text("changed\n")  # a tracked file changed: dirty

    db = tmp_path / "ctx.duckdb"
    pid = _run_app(repo, db)
    store = td.TraceStore(db)
    traces = store.search_traces(f"metadata.context.git.commit STARTSWITH '{commit[:7]}'")
    assert len(traces) == 3
    context = traces[0].info.metadata["context"]
    assert context["git"] == {
        "commit": commit,
        "branch": "main",
        "dirty": True,
        "origin_url": "https://example.com/team/app.git",
    }
    assert context["pid"] == pid
    assert context["host"] == socket.gethostname()
    assert context["python"] == platform.python_version()
    assert context["service"] == {"name": "ctx-app", "version": None}
    assert context["traceduck_version"]
    assert "user" in context
    assert all(t.info.metadata["context"] == context for t in traces)
    assert len(store.search_traces("metadata.context.git.dirty = true")) == 3


def test_outside_a_work_tree_there_is_no_git_entry(tmp_path: Path) -> None:
    work = tmp_path / "plain"
    work.mkdir()
    db = tmp_path / "ctx.duckdb"
    pid = _run_app(work, db)
    traces = td.TraceStore(db).search_traces(f"metadata.context.pid = {pid}")
    assert len(traces) == 3
    assert "git" not in traces[0].info.metadata["context"]


def test_without_a_git_executable_the_app_runs_and_traces_get_the_rest(tmp_path: Path) -> None:
    work = tmp_path / "nogit"
    work.mkdir()
    db = tmp_path / "ctx.duckdb"
    pid = _run_app(work, db, PATH=str(tmp_path / "empty-bin"))
    traces = td.TraceStore(db).search_traces("metadata.context.pid IS NOT NULL")
    assert len(traces) == 3
    assert traces[0].info.metadata["context"]["pid"] == pid
    assert "git" not in traces[0].info.metadata["context"]


def test_auto_context_off_adds_nothing(tmp_path: Path) -> None:
    work = tmp_path / "off"
    work.mkdir()
    db = tmp_path / "ctx.duckdb"
    _run_app(work, db, auto="off")
    traces = td.TraceStore(db).search_traces()
    assert len(traces) == 3
    assert all(t.info.metadata == {} for t in traces)


def test_live_metadata_and_the_context_sit_side_by_side() -> None:
    @td.trace
    def job() -> None:
        td.update_current_trace(metadata={"user": "u1"})

    job()
    metadata = last_trace().info.metadata
    assert metadata["user"] == "u1"
    assert json.dumps(metadata["context"])  # JSON, with the per-process facts
    assert metadata["context"]["pid"] > 0
