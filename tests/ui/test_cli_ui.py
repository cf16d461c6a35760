"""``traceduck ui`` as a user starts it: a real process, the startup line, then the API."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from uitest_data import N_TOTAL

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "traceduck", "ui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=30)
    return proc, first[0] if first else ""


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_ui_command_prints_the_token_url_and_serves_the_api(store_path: str) -> None:
    proc, line = _start("--db", store_path, "--port", "0", "--token", "s3cret")
    try:
        match = re.search(r"(http://127\.0\.0\.1:(\d+)/)\?token=s3cret", line)
        assert match, f"startup line: {line!r}; stderr: {proc.stderr if proc.poll() else ''}"
        base = match.group(1)
        assert store_path in line
        assert httpx.get(base + "api/search").status_code == 401
        r = httpx.get(base + "api/search", headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200 and len(r.json()["traces"]) == N_TOTAL
        assert httpx.get(base).status_code == 200  # the shell loads without the token
    finally:
        _stop(proc)


def test_ui_command_refuses_a_port_in_use_with_one_line(store_path: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        proc, _ = _start("--db", store_path, "--port", port)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "cannot listen on 127.0.0.1:" + port in err and "Traceback" not in err


def test_sigterm_stops_the_ui_while_a_client_stalls_mid_request(store_path: str) -> None:
    proc, line = _start("--db", store_path, "--port", "0")
    try:
        match = re.search(r"http://(127\.0\.0\.1):(\d+)/", line)
        assert match, line
        host, port = match.group(1), int(match.group(2))
        # A client that sent a POST's headers and part of its body, then nothing (a slow or
        # dead peer): the server waits for the rest of the body.
        with socket.create_connection((host, port)) as client:
            client.sendall(
                f"POST /api/tags HTTP/1.1\r\nHost: {host}:{port}\r\n"
                'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"trace'.encode()
            )
            client.settimeout(0.5)
            with pytest.raises(TimeoutError):
                client.recv(100)  # the server waits for the rest of the body
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)  # it used to wait for that client for ever
        assert proc.returncode == -signal.SIGTERM  # uvicorn re-raises the signal once stopped
    finally:
        _stop(proc)


def test_ui_command_serves_a_chdb_store(store_path: str, tmp_path: Path) -> None:
    """`traceduck ui --db chdb:///dir` in its own process (chdb admits one process per
    directory: the store is filled by `traceduck import` first, in another process)."""
    from traceduck import TraceStore

    TraceStore(store_path).export_traces(tmp_path / "ui.parquet")
    url = f"chdb://{tmp_path / 'chdb'}"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-m", "traceduck", "import", str(tmp_path / "ui.parquet"), "--db", url],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and f"imported {N_TOTAL} traces" in done.stdout, done.stderr
    proc, line = _start("--db", url, "--port", "0")
    try:
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert match and f"serving {url} at" in line, line
        base = match.group(1)
        assert len(httpx.get(base + "api/search").json()["traces"]) == N_TOTAL
        assert httpx.get(base + "api/count", params={"filter": "tags.env = 'dev'"}).json() == {
            "count": 4
        }
        assert "env" in httpx.get(base + "api/keys").json()["tags"]
    finally:
        _stop(proc)
