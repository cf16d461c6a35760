"""The cluster recipe in collector/: the ClickHouse DDL (generated from the engine's own, so it
cannot drift), the server configuration it needs, the OpenTelemetry Collector gateway config, and
traceduck running on the layout the DDL creates."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from _support import PYTHON, child_env
from traceduck.store.clickhouse._cluster import SHARDING, cluster_ddl, render
from traceduck.store.clickhouse._schema import MIGRATIONS, SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2] / "collector"
HERE = Path(__file__).resolve().parent


def _tables() -> list[str]:
    """The tables of the single-node schema (every version's migrations)."""
    statements = [s for v in sorted(MIGRATIONS) for s in MIGRATIONS[v]]
    return ["traceduck_meta"] + [
        m.group(1) for s in statements if (m := re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", s))
    ]


def test_the_sql_file_is_the_generators_output() -> None:
    """Regenerate it with
    python -m traceduck.store.clickhouse._cluster > collector/clickhouse-cluster.sql"""
    assert (ROOT / "clickhouse-cluster.sql").read_text() == render("traceduck", "traceduck")


def test_every_table_is_replicated_on_each_node_and_distributed_over_the_cluster() -> None:
    sql = (ROOT / "clickhouse-cluster.sql").read_text()
    statements = [s.strip() for s in sql.split(";\n") if s.strip() and not s.startswith("--")]
    for table in _tables():
        local = next(s for s in statements if f"EXISTS traceduck.{table}_local ON CLUSTER" in s)
        assert re.search(r"ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/\{shard\}/", local)
        assert "'{replica}'" in local
        distributed = next(s for s in statements if f"EXISTS traceduck.{table} ON CLUSTER" in s)
        assert distributed.endswith(
            f"ENGINE = Distributed(traceduck, traceduck, {table}_local, {SHARDING[table]})"
        )
    # a trace's versions meet on one shard (FINAL merges them there); an edit is one shard's
    assert SHARDING["td_traces"] == SHARDING["spans"] == "cityHash64(trace_id)"
    assert SHARDING["td_tag_events"] == "cityHash64(version, edit_id)"
    views = re.findall(r"CREATE OR REPLACE VIEW traceduck\.(\w+) ON CLUSTER traceduck AS", sql)
    single_node = " ".join(s for v in sorted(MIGRATIONS) for s in MIGRATIONS[v])
    assert set(views) == set(re.findall(r"CREATE OR REPLACE VIEW (\w+) AS", single_node))
    assert {"traces", "trace_tags", "tag_events", "trace_metadata", "tag_keys"} <= set(views)
    # later versions' changes: columns on both tables, table settings on the local one
    for table, change in re.findall(r"ALTER TABLE (\w+) (ADD COLUMN|MODIFY SETTING)", single_node):
        assert f"ALTER TABLE traceduck.{table}_local ON CLUSTER traceduck {change}" in sql
        distributed = f"ALTER TABLE traceduck.{table} ON CLUSTER traceduck {change}" in sql
        assert distributed == (change == "ADD COLUMN")
    assert f"VALUES ('schema_version', '{SCHEMA_VERSION}', {SCHEMA_VERSION})" in sql
    assert sql.index("USE traceduck;") < sql.index("CREATE OR REPLACE VIEW")


def test_the_server_config_defines_the_cluster_the_sql_uses() -> None:
    root = ET.parse(ROOT / "clickhouse-cluster.xml").getroot()
    cluster = root.find("remote_servers/traceduck")
    assert cluster is not None  # ON CLUSTER traceduck
    shards = cluster.findall("shard")
    assert len(shards) >= 2 and all(len(s.findall("replica")) >= 2 for s in shards)
    assert all(s.findtext("internal_replication") == "true" for s in shards)
    assert {m.tag for m in root.find("macros")} == {"shard", "replica"}
    assert root.find("zookeeper/node") is not None and root.find("distributed_ddl") is not None


def test_the_gateway_routes_each_trace_to_one_traceduck_collector() -> None:
    config = yaml.safe_load((ROOT / "otelcol-cluster.yaml").read_text())
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"] and "batch" in pipeline["processors"]
    assert pipeline["exporters"] == ["loadbalancing/traceduck"]
    exporter = config["exporters"]["loadbalancing/traceduck"]
    assert exporter["routing_key"] == "traceID"
    otlp = exporter["protocol"]["otlp"]
    assert otlp["retry_on_failure"]["enabled"] and otlp["sending_queue"]["enabled"]
    from traceduck.cli._collector import collector

    grpc_port = next(p.default for p in collector.params if p.name == "grpc_port")
    assert exporter["resolver"]["dns"]["port"] == grpc_port  # traceduck collector's OTLP/gRPC
    auth = otlp["auth"]["authenticator"]
    assert auth in config["service"]["extensions"]
    assert config["extensions"][auth]["scheme"] == "Bearer"


def test_the_readme_runs_the_recipe_with_these_files() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Scaling out") :]
    for name in ("clickhouse-cluster.sql", "clickhouse-cluster.xml", "otelcol-cluster.yaml"):
        assert name in section
    assert "clickhouse-client" in section and "--db clickhouse://" in section
    assert "python -m traceduck.store.clickhouse._cluster" in section


def test_cluster_ddl_refuses_names_it_would_paste_badly() -> None:
    import pytest

    for bad in ("my-cluster", "x; DROP TABLE t", ""):
        with pytest.raises(ValueError):
            cluster_ddl(bad)


def test_traceduck_works_on_the_cluster_layout(tmp_path: Path) -> None:
    """The generated layout (Distributed over local tables, one shard on this node) gives the
    golden answers and keeps tag edits, exclusive tags, metadata and histories."""
    out = tmp_path / "out.json"
    done = subprocess.run(
        [PYTHON, str(HERE / "_cluster_layout.py"), str(tmp_path), str(out)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["engines"]["td_traces"] == "Distributed"
    assert result["engines"]["td_tag_events_local"] == "MergeTree"
    assert result["rows_in_local_tables"] == result["count"] > 12
    golden = {}
    for line in (HERE.parent / "query/fixtures/valid_filters.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            text, expected = line.rsplit(" => ", 1)
            numbers = [] if expected.strip() == "-" else expected.split()
            golden[text] = sorted(f"{int(n):02d}" * 16 for n in numbers)
    wrong = {f: (got, golden[f]) for f, got in result["golden"].items() if got != golden[f]}
    assert not wrong and len(result["golden"]) >= len(golden) // 4
    families = ("tags.", "metadata.", "span.", "status", "execution_time_ms", "CONTAINS")
    assert all(any(f in text for text in result["golden"]) for f in families)
    assert result["latest"] and ("latest", "moved") in [tuple(e) for e in result["a_history"]]
    assert result["bulk"] == 3 and result["batch"]
    assert result["metadata"] == {"eval": {"acc": 0.9}}
    assert result["imported"] == result["count"] and result["same_after_import"]
    # not on this layout yet (collector/README.md says so): a clear error, nothing deleted
    assert result["deleted"].startswith("StorageError:") and "DELETE" in result["deleted"]
    assert result["c_still_there"]
