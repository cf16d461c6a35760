"""The deployment material in collector/: the otelcol config parses and feeds traceduck."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2] / "collector"


def test_otelcol_config_forwards_to_the_traceduck_collector() -> None:
    config = yaml.safe_load((ROOT / "otelcol-config.yaml").read_text())
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert {"grpc", "http"} <= set(config["receivers"]["otlp"]["protocols"])
    assert "batch" in pipeline["processors"]
    assert "otlphttp/traceduck" in pipeline["exporters"]
    exporter = config["exporters"]["otlphttp/traceduck"]
    assert exporter["encoding"] == "proto" and exporter["retry_on_failure"]["enabled"]
    default = re.search(r":-([^}]+)}", exporter["endpoint"]).group(1)
    unit = (ROOT / "traceduck-collector.service").read_text()
    http_port = re.search(r"--http-port (\d+)", unit).group(1)
    assert default == f"http://127.0.0.1:{http_port}"  # the unit's port, OTLP/HTTP base URL
    auth = exporter["auth"]["authenticator"]
    assert auth in config["service"]["extensions"]
    assert config["extensions"][auth]["scheme"] == "Bearer"


def test_systemd_unit_runs_the_collector_command() -> None:
    unit = (ROOT / "traceduck-collector.service").read_text()
    exec_start = re.search(r"ExecStart=((?:.*\\\n)*.*)", unit).group(1).replace("\\\n", " ")
    args = exec_start.split()
    assert args[0].endswith("/traceduck") and args[1] == "collector"
    assert "--db" in args and "KillSignal=SIGTERM" in unit
    from traceduck.cli._collector import collector

    context = collector.make_context("collector", args[2:])  # every flag is one the CLI knows
    assert context.params["db"] == "/var/lib/traceduck/traces.duckdb"
    assert context.params["host"] == "127.0.0.1"
