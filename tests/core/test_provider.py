"""Configuration in a fresh process: the app's own TracerProvider, no configure() at all,
TRACEDUCK_DB and OTEL_SERVICE_NAME, flush at exit; sampling and service name in-process."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import traceduck as td

from ._helpers import PYTHON, count, flush, subprocess_env


def _run(code: str, cwd: Path, **env: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON."""
    proc = subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr
    return json.loads(lines[-1])


def _read(path: Path) -> dict[str, Any]:
    store = td.TraceStore(path, read_only=True)
    traces = store.sql("SELECT trace_id, name, span_count, service_name FROM traces").to_pylist()
    return {"traces": traces, "store": store}


APP_PROVIDER = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

memory = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(memory))
trace.set_tracer_provider(provider)

import traceduck as td
{configure}

@td.trace
def child(x):
    return x + 1

@td.trace
def root(x):
    with trace.get_tracer("app").start_as_current_span("app.span"):
        return child(x)

result = root(1)
trace_id = td.get_last_trace_id()
ok = td.flush(timeout_s=20)
spans = memory.get_finished_spans()
print(json.dumps({{
    "result": result,
    "ok": ok,
    "trace_id": trace_id,
    "provider_kept": trace.get_tracer_provider() is provider,
    "memory": sorted(s.name for s in spans),
    "memory_trace_ids": sorted({{format(s.context.trace_id, "032x") for s in spans}}),
    "stored": td.get_trace(trace_id).info.span_count,
    "names": [s.name for s in td.get_trace(trace_id).spans],
}}))
"""


def test_apps_own_tracer_provider_keeps_its_exporter_and_traceduck_stores(tmp_path: Path) -> None:
    db = tmp_path / "app.duckdb"
    out = _run(APP_PROVIDER.format(configure=f"td.configure(db={str(db)!r})"), cwd=tmp_path)
    assert out["result"] == 2
    assert out["ok"] is True
    assert out["provider_kept"] is True
    assert out["memory"] == ["app.span", "child", "root"]
    assert out["memory_trace_ids"] == [out["trace_id"]]
    assert out["stored"] == 3
    assert out["names"] == ["root", "app.span", "child"]
    assert [t["trace_id"] for t in _read(db)["traces"]] == [out["trace_id"]]


def test_apps_own_tracer_provider_without_configure(tmp_path: Path) -> None:
    out = _run(APP_PROVIDER.format(configure=""), cwd=tmp_path)
    assert out["ok"] is True
    assert out["provider_kept"] is True
    assert out["memory"] == ["app.span", "child", "root"]
    assert out["stored"] == 3
    assert (tmp_path / "traceduck.duckdb").exists()


NO_CONFIGURE = """
import json, os
import traceduck as td

@td.trace
def hello(name):
    return f"hi {name}"

result = hello("duck")
ok = td.flush()
print(json.dumps({"result": result, "ok": ok, "trace_id": td.get_last_trace_id(),
                  "files": sorted(os.listdir("."))}))
"""


def test_works_with_no_configure_call_into_the_default_file(tmp_path: Path) -> None:
    out = _run(NO_CONFIGURE, cwd=tmp_path)
    assert out["result"] == "hi duck"
    assert out["ok"] is True
    assert "traceduck.duckdb" in out["files"]
    traces = _read(tmp_path / "traceduck.duckdb")["traces"]
    assert [(t["trace_id"], t["name"], t["span_count"]) for t in traces] == [
        (out["trace_id"], "hello", 1)
    ]


def test_traceduck_db_and_otel_service_name_env_vars_are_honoured(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "env.duckdb"
    db.parent.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    out = _run(NO_CONFIGURE, cwd=cwd, TRACEDUCK_DB=str(db), OTEL_SERVICE_NAME="billing-api")
    assert out["ok"] is True
    assert out["files"] == []  # nothing in the working directory
    traces = _read(db)["traces"]
    assert [(t["name"], t["service_name"]) for t in traces] == [("hello", "billing-api")]


def test_traces_are_flushed_at_exit_without_an_explicit_flush(tmp_path: Path) -> None:
    code = """
    import json
    import traceduck as td
    td.configure(db="exit.duckdb")

    @td.trace
    def job(i):
        td.update_current_trace(tags={"i": i})
        return i

    print(json.dumps({"results": [job(i) for i in range(3)]}))
    """
    out = _run(code, cwd=tmp_path)
    assert out["results"] == [0, 1, 2]
    store = td.TraceStore(tmp_path / "exit.duckdb", read_only=True)
    assert store.sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 3}]
    assert store.sql("SELECT count(*) AS n FROM trace_tags").to_pylist() == [{"n": 3}]


@td.trace
def _sampled(x):
    return x


def test_reconfigured_sample_ratio_applies_in_process(db_path: str) -> None:
    td.configure(db=db_path, sample_ratio=0.0)
    assert [_sampled(i) for i in range(20)] == list(range(20))
    flush()
    assert count("traces") == 0

    td.configure(db=db_path, sample_ratio=1.0)
    assert _sampled(1) == 1
    flush()
    assert count("traces") == 1


def test_reconfigured_service_name_applies_in_process(db_path: str) -> None:
    td.configure(db=db_path, service_name="svc-under-test")
    assert _sampled(1) == 1
    flush()
    assert td.sql("SELECT name, service_name FROM traces").to_pylist() == [
        {"name": "_sampled", "service_name": "svc-under-test"}
    ]


def test_configure_rejects_bad_arguments_clearly(db_path: str) -> None:
    import pytest

    for kwargs in (
        {"sample_ratio": 2},
        {"max_queue_traces": 0},
        {"otlp_protocol": "smoke"},
        # a string is truthy: "no" would have captured inputs
        {"capture_inputs": "no"},
        {"capture_outputs": "false"},
        {"auto_context": 0},
        {"flush_interval_s": "1"},
    ):
        with pytest.raises(td.ConfigError, match=next(iter(kwargs))):
            td.configure(db=db_path, **kwargs)
    with pytest.raises(ValueError):
        td.configure(db=db_path, sample_ratio=-0.1)


def test_sampled_out_calls_log_no_internal_errors(db_path: str, monkeypatch, caplog) -> None:
    import asyncio
    import logging

    from traceduck import _runtime

    monkeypatch.setattr(_runtime, "_reported", set())  # every internal failure is logged anew
    td.configure(db=db_path, sample_ratio=0.0)

    @td.trace
    async def coro(x):
        return x

    @td.trace
    def gen(x):
        yield x

    with caplog.at_level(logging.DEBUG, logger="traceduck"):
        assert _sampled(1) == 1
        assert asyncio.run(coro(2)) == 2
        assert list(gen(3)) == [3]
        with td.start_span("block"):
            pass
    assert [r.getMessage() for r in caplog.records if r.name == "traceduck"] == []


def test_sampled_out_traces_are_not_the_last_trace(db_path: str) -> None:
    assert _sampled(1) == 1
    kept = td.get_last_trace_id()
    assert kept is not None
    td.configure(db=db_path, sample_ratio=0.0)
    with td.start_span("dropped"):
        pass
    assert _sampled(2) == 2
    assert td.get_last_trace_id() == kept  # nothing was recorded since: the id still resolves
    assert td.flush(10)
    assert td.get_trace(kept).info.name == "_sampled"
