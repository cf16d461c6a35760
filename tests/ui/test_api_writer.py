"""A writer process beside the UI: new traces show without a restart (a DuckDB file, which the
UI opens per request and lets go of when idle)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _ids(client: httpx.Client, flt: str | None = None) -> list[str]:
    params = {"filter": flt, "max_results": 1000} if flt else {"max_results": 1000}
    r = client.get("/api/search", params=params)
    assert r.status_code == 200, r.text
    return [t["trace_id"] for t in r.json()["traces"]]


def test_new_traces_from_another_process_show_without_restart(
    client: httpx.Client, store_path: str
) -> None:
    before = client.get("/api/count").json()["count"]
    script = textwrap.dedent(
        f"""
        import traceduck as td
        td.configure(db={store_path!r}, auto_context=False)
        @td.trace
        def late_arrival():
            td.update_current_trace(tags={{"writer": "other-process"}})
        late_arrival()
        assert td.flush(20)
        td.shutdown()
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _ids(client, "tags.writer = 'other-process'"):
            break
        time.sleep(0.1)
    assert len(_ids(client, "tags.writer = 'other-process'")) == 1
    assert client.get("/api/count").json()["count"] == before + 1
