"""A reader that stops early (``| head``) ends the command quietly with exit code 0."""

from __future__ import annotations

import os
import subprocess

from traceduck import TraceStore

from ._helpers import PYTHON, child_env


def test_search_csv_into_head_closes_quietly(db: str) -> None:
    # More output than a pipe buffers (64 KiB), so the command is still writing when head exits.
    TraceStore(db).set_trace_tags("trace_id LIKE '%'", {"blob": "x" * 60_000})
    result = subprocess.run(
        f'"{PYTHON}" -m traceduck search --csv --db "{db}" | head -2',
        shell=True,
        capture_output=True,
        text=True,
        env=child_env(),
        executable="/bin/bash",
        timeout=120,
    )
    assert len(result.stdout.splitlines()) == 2
    assert result.stdout.startswith("trace_id,name,status")
    assert result.stderr == ""  # no "error: [Errno 32] Broken pipe", no "Exception ignored"
    # The command's own exit code: bash's PIPESTATUS is not visible here, so run it again
    # with the pipe's reader gone before the first write (as `head -1` leaves it).
    read, write = os.pipe()
    os.close(read)
    try:
        child = subprocess.run(
            [PYTHON, "-m", "traceduck", "search", "--csv", "--db", db],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
            timeout=120,
        )
    finally:
        os.close(write)
    assert (child.returncode, child.stderr) == (0, "")


def test_demo_into_a_closed_pipe_exits_0_without_an_error(tmp_path) -> None:
    read, write = os.pipe()
    os.close(read)  # `traceduck demo | head -1`, once head has its line and has gone
    try:
        child = subprocess.run(
            [PYTHON, "-m", "traceduck", "demo", "--traces", "3", "--db", str(tmp_path / "d.db")],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
            timeout=120,
        )
    finally:
        os.close(write)
    assert child.stderr == ""
    assert child.returncode == 0
