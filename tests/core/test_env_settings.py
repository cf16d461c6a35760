"""Durations from the environment (TRACEDUCK_*_S): a value that is not a number of seconds is
said once and replaced by the default; it never keeps `import traceduck` or the program from
running, and the traces are stored."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

import traceduck as td
from _support import child_env
from traceduck import _runtime

APP = """
import traceduck as td
@td.trace
def job(i):
    return i * 2
print([job(i) for i in range(3)], td.flush())
"""


def test_bad_durations_in_the_environment_fall_back_to_the_defaults(tmp_path: Path) -> None:
    db = tmp_path / "env.duckdb"
    bad = {
        "TRACEDUCK_OTLP_EXIT_TIMEOUT_S": "abc",
        "TRACEDUCK_EXIT_TIMEOUT_S": "nan",
        "TRACEDUCK_LOCK_TIMEOUT_S": "inf",
        "TRACEDUCK_IDLE_RELEASE_S": "-1",
        "TRACEDUCK_MAX_HOLD_S": "1,5",
    }
    done = subprocess.run(
        [sys.executable, "-c", APP], capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env=child_env(TRACEDUCK_DB=str(db), **bad),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[0, 2, 4] True\n"
    for name, value in bad.items():
        assert f"{name}={value!r} is not a number of seconds" in done.stderr, done.stderr
    assert td.TraceStore(str(db)).count_traces() == 3


@pytest.mark.parametrize(("text", "expected"), [("", 7.0), (" 2.5 ", 2.5), ("0", 0.0)])
def test_a_good_or_missing_duration_is_taken_quietly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, text: str, expected: float
) -> None:
    monkeypatch.setenv("TRACEDUCK_SOME_S", text)
    with caplog.at_level(logging.WARNING, logger="traceduck"):
        assert _runtime.env_seconds("TRACEDUCK_SOME_S", 7.0) == expected
    assert caplog.text == ""
