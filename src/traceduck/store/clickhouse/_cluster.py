"""The ClickHouse schema for a cluster, generated from the engine's own DDL (``_schema``).

Every table of the single-node schema becomes a replicated local table ``NAME_local`` on each
node (``Replicated...MergeTree``, created ``ON CLUSTER``) and a ``Distributed`` table ``NAME``
over them, so traceduck's queries, views and inserts keep their names. The views are created
``ON CLUSTER`` as they are. Sharding:

* ``td_traces`` and ``spans`` by trace id: a trace's versions meet on one shard, where FINAL
  merges them, and its spans live beside it;
* ``td_tag_events`` and ``td_metadata`` by edit (``version, edit_id``): an edit (one tag, a
  bulk edit of thousands of traces, an exclusive move) is one block on one shard, so it stays
  atomic on a cluster; the current state is an ``argMax`` over all shards;
* the small ``td_tag_keys`` and ``traceduck_meta`` by key.

Reads and writes need two settings on a cluster, which the client sends with every query
(``_client.CLUSTER_SETTINGS``): ``distributed_product_mode = 'global'`` (the views and filters
use ``IN`` subqueries over distributed tables) and ``insert_distributed_sync = 1`` (an insert
returns when every shard has its rows, so a trace becomes visible after its spans and tags).

    python -m traceduck.store.clickhouse._cluster --cluster traceduck --database traceduck

prints the DDL (``collector/clickhouse-cluster.sql`` is its output, kept equal by a test).
"""

from __future__ import annotations

import argparse
import re
import sys

from ._schema import META, MIGRATIONS, SCHEMA_VERSION

__all__ = ["SHARDING", "cluster_ddl"]

SHARDING = {
    "traceduck_meta": "cityHash64(key)",
    "td_traces": "cityHash64(trace_id)",
    "spans": "cityHash64(trace_id)",
    "td_tag_events": "cityHash64(version, edit_id)",
    "td_metadata": "cityHash64(version, edit_id)",
    "td_tag_keys": "cityHash64(key)",
    "deletions": "cityHash64(deletion_id)",
    "td_experiments": "cityHash64(name)",
}
_TABLE = re.compile(r"^\s*CREATE TABLE IF NOT EXISTS (\w+) \(", re.S)
_ENGINE = re.compile(r"ENGINE = (\w*)MergeTree(?:\(([^)]*)\))?")
_VIEW = re.compile(r"^\s*CREATE OR REPLACE VIEW (\w+) AS", re.S)
_ALTER = re.compile(r"^\s*ALTER TABLE (\w+) (.*)$", re.S)
_INSERT = re.compile(r"^\s*INSERT INTO (\w+) ", re.S)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"


def cluster_ddl(
    cluster: str = "traceduck",
    database: str = "traceduck",
    *,
    replicated: bool = True,
    on_cluster: bool = True,
) -> list[str]:
    """The statements that create the schema on ``cluster`` in ``database``, in order.

    ``replicated=False, on_cluster=False`` gives the same layout on one node without a Keeper
    (plain MergeTree local tables, no distributed DDL): the test suite runs traceduck on it."""
    for what, name in (("cluster", cluster), ("database", database)):
        if not _NAME.match(name):
            raise ValueError(f"{what} name {name!r} must be letters, digits and underscores")
    on = f" ON CLUSTER {cluster}" if on_cluster else ""
    out = [f"CREATE DATABASE IF NOT EXISTS {database}{on}"]
    for statement in [META, *(s for v in sorted(MIGRATIONS) for s in MIGRATIONS[v])]:
        text = _dedent(statement)
        table = _TABLE.match(text)
        view = _VIEW.match(text)
        if table:
            out += _table(text, table.group(1), cluster, database, on, replicated)
        elif view:
            name = view.group(1)
            out.append(
                text.replace(
                    f"CREATE OR REPLACE VIEW {name} AS",
                    f"CREATE OR REPLACE VIEW {database}.{name}{on} AS",
                    1,
                )
            )
        elif alter := _ALTER.match(text):
            name, change = alter.groups()
            # A setting concerns the local tables that hold the rows; a new column, both.
            out.append(f"ALTER TABLE {database}.{name}_local{on} {change}")
            if change.startswith("ADD COLUMN"):
                out.append(f"ALTER TABLE {database}.{name}{on} {change}")
        elif insert := _INSERT.match(text):
            name = insert.group(1)
            qualified = text.replace(f"INSERT INTO {name} ", f"INSERT INTO {database}.{name} ", 1)
            qualified = qualified.replace(f"FROM {name} ", f"FROM {database}.{name} ")
            out.append(qualified + " SETTINGS insert_distributed_sync = 1")
        else:
            raise ValueError(f"no cluster form for the statement: {text[:60]!r}")
    out.append(
        f"INSERT INTO {database}.traceduck_meta (key, value, version) "
        "SETTINGS insert_distributed_sync = 1 "
        f"VALUES ('schema_version', '{SCHEMA_VERSION}', {SCHEMA_VERSION})"
    )
    return out


def _table(text: str, name: str, cluster: str, database: str, on: str,
           replicated: bool) -> list[str]:  # fmt: skip
    engine = _ENGINE.search(text)
    if engine is None or name not in SHARDING:
        raise ValueError(f"table {name} has no cluster form (engine or sharding key)")
    kind, args = engine.group(1), engine.group(2)
    if replicated:
        inner = REPLICA_PATH + (f", {args}" if args else "")
        new_engine = f"ENGINE = Replicated{kind}MergeTree({inner})"
    else:
        new_engine = f"ENGINE = {kind}MergeTree" + (f"({args})" if args else "")
    local = text[: engine.start()] + new_engine + text[engine.end() :]
    local = local.replace(
        f"CREATE TABLE IF NOT EXISTS {name} (",
        f"CREATE TABLE IF NOT EXISTS {database}.{name}_local{on} (",
        1,
    )
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {database}.{name}{on} AS {database}.{name}_local "
        f"ENGINE = Distributed({cluster}, {database}, {name}_local, {SHARDING[name]})"
    )
    return [local, distributed]


def _dedent(statement: str) -> str:
    lines = statement.strip("\n").splitlines()
    indent = min(len(x) - len(x.lstrip()) for x in lines if x.strip())
    return "\n".join(x[indent:] if x.strip() else "" for x in lines).strip()


def render(cluster: str = "traceduck", database: str = "traceduck") -> str:
    """The DDL as one file for ``clickhouse-client --multiquery``."""
    head = (
        "-- traceduck's ClickHouse schema for a cluster (schema version "
        f"{SCHEMA_VERSION}): replicated local\n"
        "-- tables NAME_local on every node and Distributed tables NAME over them.\n"
        f"-- Generated from the engine's own DDL by:\n"
        f"--   python -m traceduck.store.clickhouse._cluster --cluster {cluster} "
        f"--database {database}\n"
        "-- Run once, on any node, before traceduck writes (see collector/README.md):\n"
        f"--   clickhouse-client --multiquery < clickhouse-cluster.sql\n"
        "-- The nodes need the macros {shard} and {replica} and the cluster in remote_servers.\n"
    )
    statements = cluster_ddl(cluster, database)
    # the views name their tables without a database: USE makes it theirs
    statements.insert(1, f"USE {database}")
    return head + "\n" + "".join(f"{x};\n\n" for x in statements).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m traceduck.store.clickhouse._cluster",
        description="Print traceduck's ClickHouse DDL for a cluster (ON CLUSTER, Replicated and "
        "Distributed tables).",
    )
    parser.add_argument("--cluster", default="traceduck", help="the cluster in remote_servers")
    parser.add_argument("--database", default="traceduck", help="the database of the store")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(render(args.cluster, args.database))
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
