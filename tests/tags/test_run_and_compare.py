"""`traceduck run` (redun's run --tag) and compare (ZenML's comparison view), in code and CLI."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import traceduck as td

from .conftest import PYTHON, child_env, last_trace

SCRIPT = """
import sys
import traceduck as td

@td.trace
def step(i):
    return i * 2

@td.trace
def main(n):
    td.update_current_trace(tags={"own": "yes"})
    return sum(step(i) for i in range(n))

for n in (1, 2, 3):
    main(n)
print("result:", main(4), "args:", sys.argv[1:])
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "traceduck", *args],
        cwd=cwd,
        env=child_env(COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_traceduck_run_tags_every_trace_and_passes_the_program_through(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    db = tmp_path / "run.duckdb"
    done = _cli(
        "run", "--tag", "experiment=lr-sweep", "--tag", "reviewed", "--tag", "lr=0.01",
        "--metadata", "dataset=v2", "--db", str(db), "--", str(script), "7", "--flag",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 7, done.stderr
    assert done.stdout == "result: 12 args: ['7', '--flag']\n"
    assert done.stderr.startswith("to stderr\n")
    summary = done.stderr.splitlines()[1:]
    assert len(summary) == 2  # no line about dropped traces: nothing was dropped
    assert "4 traces recorded" in summary[0]
    run_id = summary[0].split()[2].rstrip(":")
    assert f"metadata.context.run_id = '{run_id}'" in summary[1]

    traces = td.TraceStore(db).search_traces(f"metadata.context.run_id = '{run_id}'")
    assert len(traces) == 4
    for trace in traces:
        assert trace.info.tags == {
            "experiment": "lr-sweep",
            "reviewed": True,
            "lr": 0.01,
            "own": "yes",
        }
        assert trace.info.metadata["dataset"] == "v2"
        assert trace.info.metadata["context"]["run_id"] == run_id
    # the search printed in the summary lists them
    listed = _cli("search", f"metadata.context.run_id = '{run_id}'", "--db", str(db), "--json")
    assert len(json.loads(listed.stdout)) == 4


def test_traceduck_run_says_how_many_traces_were_dropped(tmp_path: Path) -> None:
    """A run whose store cannot take traces: the summary counts what its processes dropped
    (a run that lost nothing, above, says nothing of drops)."""
    script = tmp_path / "app.py"
    script.write_text(
        "import traceduck as td\n"
        "td.configure(max_queue_traces=5)\n"
        "@td.trace\ndef f(i):\n    return i\n"
        "for i in range(300):\n    f(i)\n"
    )
    db = tmp_path / "no-such-dir" / "run.duckdb"
    done = _cli("run", "--db", str(db), "--", str(script), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    dropped = [line for line in done.stderr.splitlines() if " dropped, the store" in line]
    assert len(dropped) == 1, done.stderr
    count = int(dropped[0].split(": ", 1)[1].split()[0])
    assert 250 <= count <= 300, dropped
    assert "does not exist" in dropped[0]


def test_traceduck_run_keeps_exit_code_zero_and_a_missing_program_fails_clearly(
    tmp_path: Path,
) -> None:
    script = tmp_path / "ok.py"
    script.write_text(SCRIPT)
    db = tmp_path / "run.duckdb"
    ok = _cli("run", "--db", str(db), "--", PYTHON, str(script), "0")
    assert ok.returncode == 0, ok.stderr
    assert "4 traces recorded" in ok.stderr
    missing = _cli("run", "--db", str(db), "--", str(tmp_path / "no-such-program"))
    assert missing.returncode == 127
    assert "cannot start" in missing.stderr
    bad = _cli("run", "--tag", "=x", "--db", str(db), "--", PYTHON, str(script), "0")
    assert bad.returncode == 2
    assert "expected key=value" in bad.stderr


@pytest.fixture
def three_traces() -> list[str]:
    @td.trace
    def train(variant: str) -> None:
        td.update_current_trace(
            tags={"env": "dev", "variant": variant},
            metadata={"eval": {"accuracy": 0.9, "n": 10}},
        )

    ids = []
    for variant in ("a", "a", "b"):
        train(variant)
        ids.append(last_trace().info.trace_id)
    return ids


def test_compare_traces_one_column_per_trace_and_the_differing_tag(
    three_traces: list[str],
) -> None:
    frame = td.compare_traces([i[:12] for i in three_traces])
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == [i[:8] for i in three_traces]
    assert frame.attrs["trace_ids"] == three_traces
    assert frame.loc["tags.variant"].tolist() == ["a", "a", "b"]
    assert frame.loc["tags.env"].tolist() == ["dev"] * 3
    assert frame.loc["metadata.eval.accuracy"].tolist() == [0.9] * 3
    assert frame.loc["name"].tolist() == ["train"] * 3
    assert frame.loc["status"].tolist() == ["OK"] * 3
    assert all(v > 0 for v in frame.loc["execution_time_ms"])
    from traceduck._compare import differing_rows

    differ = set(differing_rows(frame))
    assert "tags.variant" in differ
    assert not differ & {"tags.env", "metadata.eval.accuracy", "metadata.eval.n", "name"}


def test_compare_traces_by_filter_and_selected_keys(three_traces: list[str]) -> None:
    frame = td.compare_traces("tags.env = 'dev'", keys=["tags.variant", "eval", "status"])
    assert list(frame.index) == [
        "status",
        "tags.variant",
        "metadata.eval.accuracy",
        "metadata.eval.n",
    ]
    assert sorted(frame.attrs["trace_ids"]) == sorted(three_traces)
    assert td.compare_traces("tags.env = 'prod'").empty


@pytest.mark.parametrize("bad", [None, 3, 2.5], ids=repr)
def test_compare_traces_of_neither_ids_nor_a_filter_says_what_it_takes(
    three_traces: list[str], bad: Any
) -> None:
    with pytest.raises(td.TraceduckError, match="ids or a filter"):
        td.compare_traces(bad)


def test_compare_cli_highlights_the_differing_rows(three_traces: list[str], db_path: str) -> None:
    assert td.flush(timeout_s=10)
    td.shutdown()  # the CLI opens the file in another process
    done = _cli("compare", *three_traces, "--db", db_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("≠ tags.variant" in line for line in lines)
    assert not any("≠ tags.env" in line for line in lines)
    assert any("  tags.env" in line for line in lines)
    by_filter = _cli("compare", "--where", "tags.env = 'dev'", "--limit", "2", "--db", db_path)
    assert by_filter.returncode == 0, by_filter.stderr
    assert "2 traces" in by_filter.stdout
    as_json = _cli("compare", *three_traces, "--db", db_path, "--json", "--diff")
    rows = json.loads(as_json.stdout)
    assert rows["tags.variant"] == dict(zip(three_traces, ["a", "a", "b"]))
    assert "tags.env" not in rows
    none = _cli("compare", "--db", db_path)
    assert none.returncode == 2


def test_traceduck_run_passes_sigterm_on_to_the_program(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen(
        [PYTHON, "-m", "traceduck", "run", "--db", str(tmp_path / "r.duckdb"), "--", str(script)],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM  # as a shell reports it
        assert "0 traces recorded" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


# `traceduck run` with a SIGINT sent to itself exactly when Popen has reaped the program but
# not yet recorded its status, as a second Ctrl-C arriving at that moment would.
_SIGINT_AS_THE_PROGRAM_IS_REAPED = """
import os, signal, subprocess, sys
CODE, sent = subprocess.Popen._handle_exitstatus.__code__, []
def hook(frame, event, arg):
    if event == "call" and frame.f_code is CODE and not sent:
        sent.append(1)
        os.kill(os.getpid(), signal.SIGINT)
sys.settrace(hook)
from traceduck.cli import main
main()
"""


EXIT_3 = [PYTHON, "-c", "import sys; sys.exit(3)"]


def test_traceduck_run_keeps_the_exit_code_when_ctrl_c_lands_as_the_program_ends(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "r.duckdb")
    done = subprocess.run(
        [PYTHON, "-c", _SIGINT_AS_THE_PROGRAM_IS_REAPED, "run", "--db", db, "--", *EXIT_3],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr


def test_traceduck_run_into_clickhouse(tmp_path: Path) -> None:
    """`--db chdb:///dir` reaches the program as that URL (not a path made absolute), and the
    run's summary counts the traces there."""
    script = tmp_path / "app.py"
    script.write_text(
        "import traceduck as td\n@td.trace\ndef f(i):\n    return i\n[f(i) for i in range(4)]\n"
    )
    url = f"chdb://{tmp_path / 'ch'}"
    done = _cli("run", "--db", url, "--", str(script), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"4 traces recorded in {url}" in done.stderr
