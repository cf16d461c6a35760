"""The ClickHouse schema's migrations: a store made by an older traceduck opens in place, its
traces kept, and every later version's statements run once, in order (on chdb in one call into
the engine, on a server one request each)."""

from __future__ import annotations

from pathlib import Path

import pytest

import traceduck as td
from _engines import HAVE_CHDB, new_store_name
from traceduck.errors import StorageError

pytestmark = pytest.mark.skipif(not HAVE_CHDB, reason="needs the clickhouse extra")


def _old_store(name: str, version: int) -> None:
    """The schema as traceduck left it at ``version``, holding one trace."""
    from traceduck.store.clickhouse._client import connect
    from traceduck.store.clickhouse._schema import META, MIGRATIONS

    conn = connect(td.TraceStore(name).name)  # the database, nothing in it
    conn.command(META)
    for v in range(1, version + 1):
        for statement in MIGRATIONS[v]:
            conn.command(statement)
        conn.command(f"INSERT INTO traceduck_meta VALUES ('schema_version', '{v}', {v})")
    conn.command(
        "INSERT INTO td_traces (trace_id, name, status, timestamp_ms, execution_time_ms,"
        " start_time_ns, end_time_ns, span_count, has_root, version)"
        " VALUES ('00000000000000000000000000000abc', 'old', 'OK', 1000, 1.5, 1, 2, 0, true, 1)"
    )


@pytest.mark.parametrize("chdb_api", [True, False], ids=["chdb-one-call", "server-path"])
@pytest.mark.parametrize("version", [1, 3])
def test_an_older_store_is_migrated_in_place_keeping_its_traces(
    tmp_path: Path, version: int, chdb_api: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from traceduck.store.clickhouse import _client
    from traceduck.store.clickhouse._schema import SCHEMA_VERSION, schema_version

    name = new_store_name("chdb", tmp_path)
    _old_store(name, version)
    if not chdb_api:  # the statements one request each, as on a server
        opened = _client.connect

        def server_path(store_name):  # type: ignore[no-untyped-def]
            conn = opened(store_name)
            conn.chdb_api = False
            return conn

        monkeypatch.setattr("traceduck.store.clickhouse._store.connect", server_path)
    store = td.TraceStore(name)
    assert store.conn.chdb_api is chdb_api
    assert schema_version(store.conn) == SCHEMA_VERSION
    assert [t.info.name for t in store.search_traces()] == ["old"]
    # version 3's columns, with the Default experiment for what was stored before
    assert store.sql("SELECT experiment FROM traces").column(0).to_pylist() == ["Default"]
    # version 4's setting: a lightweight delete works
    assert store.delete_traces(trace_ids=["00000000000000000000000000000abc"]) == 1
    assert store.count_traces() == 0
    # and again, nothing to do: the recorded version is the latest, once per version
    rows = store.sql(
        "SELECT value FROM traceduck_meta WHERE key = 'schema_version' ORDER BY version"
    ).column(0)
    assert rows.to_pylist() == [str(v) for v in range(1, SCHEMA_VERSION + 1)]


def test_a_migration_that_fails_part_way_records_only_the_versions_done(tmp_path: Path) -> None:
    """The statements run in order and stop at the first that fails: the versions before it are
    recorded, the failing one is not, so opening the store again runs it again."""
    from traceduck.store.clickhouse import _schema
    from traceduck.store.clickhouse._client import connect

    name = new_store_name("chdb", tmp_path)
    conn = connect(td.TraceStore(name).name)
    broken = [*_schema.MIGRATIONS[_schema.SCHEMA_VERSION], "ALTER TABLE no_such_table ADD x"]
    migrations = {**_schema.MIGRATIONS, _schema.SCHEMA_VERSION: broken}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_schema, "MIGRATIONS", migrations)
        with pytest.raises(StorageError):
            _schema.migrate(conn)
    assert _schema.schema_version(conn) == _schema.SCHEMA_VERSION - 1
    assert _schema.migrate(conn) == _schema.SCHEMA_VERSION  # the real one, run again
    assert _schema.schema_version(conn) == _schema.SCHEMA_VERSION
