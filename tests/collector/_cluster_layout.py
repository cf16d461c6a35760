"""Run traceduck on the cluster layout (collector/clickhouse-cluster.sql's Distributed tables) in
a process of its own: ``python _cluster_layout.py DIR OUT.json``.

chdb runs one engine per process and takes its server configuration when it starts, so this
process starts it on DIR with a one-shard cluster ``traceduck`` on this node (no Keeper: the
local tables are plain MergeTrees, created without ON CLUSTER), creates the layout the cluster
DDL generator gives, and uses it through ``TraceStore("chdb://DIR")``: the golden filters, tag
edits, exclusive tags, metadata, histories and an export/import round trip. The answers go to
OUT.json for the test to check.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS / "query")]

CONFIG = """<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers><traceduck><shard><replica>
    <host>localhost</host><port>9000</port>
  </replica></shard></traceduck></remote_servers>
</clickhouse>
"""


def golden_filters() -> list[str]:
    """Every fourth golden filter: a query on Distributed tables costs ~75 ms on chdb here
    (10 ms on plain tables), and the sample still covers every field family and operator."""
    lines = (TESTS / "query" / "fixtures" / "valid_filters.txt").read_text().splitlines()
    return [x.rsplit(" => ", 1)[0] for x in lines if x.strip() and not x.startswith("#")][::4]


def main(directory: str, out: str) -> None:
    import chdb

    base = Path(directory)
    (base / "config.xml").write_text(CONFIG)
    # the engine, with the cluster (kept open: the clients below share it)
    engine = chdb.connect(f"file:{base / 'data'}?config-file={base / 'config.xml'}")

    import clickhouse_connect
    from querytest_data import TRACES

    import traceduck as td
    from _engines import write_rows, write_traces
    from traceduck.query import search
    from traceduck.store.clickhouse._cluster import cluster_ddl

    client = clickhouse_connect.get_client(dsn=f"chdb://{base / 'data'}")
    statements = cluster_ddl("traceduck", "traceduck", replicated=False, on_cluster=False)
    client.command(statements[0])
    client.database = "traceduck"  # the views name their tables without a database
    for statement in statements[1:]:
        client.command(statement)
    engines = dict(
        client.query(
            "SELECT name, engine FROM system.tables WHERE database = 'traceduck'"
        ).result_rows
    )

    store = td.TraceStore(f"chdb://{base / 'data'}")
    write_rows(store, TRACES)
    golden = {}
    for text in golden_filters():
        golden[text] = sorted(search(store.runner, text, max_results=None)[0])

    a, b, c = write_traces(store, [("job", {"cost": 3}, {}), ("job", {}, {}), ("job", {}, {})])
    store.set_trace_tag(a, "latest", True, exclusive=True)
    store.set_trace_tag(b, "latest", True)  # moves: one holder
    bulk = store.set_trace_tags("name = 'job'", {"batch": 7})
    store.delete_trace_tags("tags.cost > 2", ["batch"])
    store.log_metadata(c, {"eval": {"acc": 0.9}})
    store.export_traces(base / "all.parquet")
    copy = td.TraceStore(f"chdb://{base / 'data'}?database=copy")  # a single-node store
    imported = copy.import_traces(base / "all.parquet").imported
    try:  # the engine deletes with lightweight DELETEs, which a Distributed table refuses
        deleted: object = store.delete_traces(trace_ids=[c])
    except td.errors.StorageError as exc:
        deleted = f"StorageError: {exc}"
    result = {
        "deleted": deleted,
        "engines": engines,
        "rows_in_local_tables": client.query("SELECT count() FROM td_traces_local").result_rows[0][
            0
        ],
        "golden": golden,
        "latest": [t.info.trace_id for t in store.search_traces("tags.latest = true")] == [b],
        "a_history": [(e.key, e.operation) for e in store.tag_history(a)],
        "bulk": bulk,
        "batch": sorted(t.info.trace_id for t in store.search_traces("tags.batch = 7"))
        == sorted([b, c]),
        "metadata": store.get_trace(c).info.metadata,
        "imported": imported,
        "count": store.count_traces(),
        "c_still_there": store.get_trace(c).info.trace_id == c,
        "same_after_import": all(
            copy.get_trace(t) == store.get_trace(t) and copy.tag_history(t) == store.tag_history(t)
            for t in (a, b, c)
        ),
    }
    Path(out).write_text(json.dumps(result))
    engine.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
