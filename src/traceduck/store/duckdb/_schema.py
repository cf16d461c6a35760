"""The store's schema, versioned and migrated in place.

The tables are also the documented SQL surface (``traceduck.sql``): ``traces``, ``spans``,
``trace_tags``, ``trace_metadata``, ``tag_events``, ``tag_keys``, ``deletions`` and
``experiments``. Columns may be added by later versions; none is renamed or dropped without a
migration.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

SCHEMA_VERSION = 3

_V1 = [
    """
    CREATE TABLE IF NOT EXISTS traceduck_meta (
        key   VARCHAR PRIMARY KEY,
        value VARCHAR
    )""",
    # One row per finished trace. ``tags`` holds the current tags and ``metadata`` the latest value
    # per top-level metadata key, both as JSON objects; filters read them directly.
    """
    CREATE TABLE IF NOT EXISTS traces (
        trace_id          VARCHAR PRIMARY KEY,  -- 32 lowercase hex chars
        name              VARCHAR,              -- root span name
        status            VARCHAR,              -- 'OK' | 'ERROR'
        status_message    VARCHAR,
        timestamp_ms      BIGINT,               -- root start, ms since epoch
        execution_time_ms DOUBLE,               -- root duration
        start_time_ns     BIGINT,
        end_time_ns       BIGINT,
        span_count        INTEGER,
        service_name      VARCHAR,
        root_span_id      VARCHAR,
        has_root          BOOLEAN,              -- the true root (no parent) has been stored
        request_preview   VARCHAR,
        response_preview  VARCHAR,
        tags              JSON,                 -- {"key": value, ...}
        metadata          JSON                  -- {"key": latest value, ...}
    )""",
    """
    CREATE TABLE IF NOT EXISTS spans (
        trace_id       VARCHAR,
        span_id        VARCHAR,                 -- 16 lowercase hex chars
        parent_id      VARCHAR,                 -- NULL for a root
        name           VARCHAR,
        span_type      VARCHAR,                 -- 'UNKNOWN' when none was given
        status         VARCHAR,                 -- 'OK' | 'ERROR'
        status_message VARCHAR,
        start_time_ns  BIGINT,
        end_time_ns    BIGINT,
        duration_ms    DOUBLE,
        kind           VARCHAR,                 -- OpenTelemetry span kind: INTERNAL, SERVER, ...
        service_name   VARCHAR,
        attributes     JSON,                    -- object; traceduck's own keys excluded
        inputs         JSON,
        outputs        JSON,
        events         JSON                     -- [{"name", "time_ns", "attributes"}]
    )""",
    # NOTE: traces.tags (a JSON object) is the single source of truth for current tags; filters
    # on tags should read it directly (json extraction on traces is ~10x faster than a semi-join
    # here). ``trace_tags`` is a view over it: one row per (trace, key), with value_type the JSON
    # type ('string', 'number', 'boolean', 'null', 'array', 'object'), value_str the string for
    # strings (else the JSON text) and value_num the number for numbers.
    """
    CREATE OR REPLACE VIEW trace_tags AS
    SELECT t.trace_id,
           e.key,
           e.value::JSON AS value,
           CASE e.type WHEN 'VARCHAR' THEN 'string'
                       WHEN 'BOOLEAN' THEN 'boolean'
                       WHEN 'NULL' THEN 'null'
                       WHEN 'ARRAY' THEN 'array'
                       WHEN 'OBJECT' THEN 'object'
                       ELSE 'number' END AS value_type,
           CASE WHEN e.type = 'VARCHAR' THEN e.value ->> '$' ELSE e.value::VARCHAR END AS value_str,
           CASE WHEN e.type IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN e.value::DOUBLE END
               AS value_num
    FROM traces t, json_each(t.tags) e""",
    # Which trace holds each exclusive tag, per scope ('' for global scope, else the root name),
    # so moving an exclusive tag is a point lookup instead of a scan.
    """
    CREATE TABLE IF NOT EXISTS exclusive_holders (
        key      VARCHAR,
        scope    VARCHAR,
        trace_id VARCHAR,
        PRIMARY KEY (key, scope)
    )""",
    "CREATE SEQUENCE IF NOT EXISTS tag_event_seq START 1",
    """
    CREATE TABLE IF NOT EXISTS tag_events (
        event_id  BIGINT DEFAULT nextval('tag_event_seq'),
        ts        TIMESTAMP,                    -- UTC
        trace_id  VARCHAR,
        key       VARCHAR,
        old_value JSON,                         -- NULL when the key was absent
        new_value JSON,                         -- NULL for delete
        operation VARCHAR,                      -- set | update | delete | moved
        source    VARCHAR                       -- live | api | cli | ui | collector
    )""",
    """
    CREATE TABLE IF NOT EXISTS tag_keys (
        key       VARCHAR PRIMARY KEY,
        exclusive BOOLEAN,
        scope     VARCHAR                       -- 'name' | 'global'
    )""",
    "CREATE SEQUENCE IF NOT EXISTS metadata_seq START 1",
    """
    CREATE TABLE IF NOT EXISTS trace_metadata (
        entry_id BIGINT DEFAULT nextval('metadata_seq'),
        ts       TIMESTAMP,                     -- UTC
        trace_id VARCHAR,
        key      VARCHAR,                       -- top-level key
        value    JSON,
        source   VARCHAR                        -- live | api | cli | ui | collector
    )""",
]

# Version 2: deletion is the only way data leaves a store, and each one is recorded here.
_V2 = [
    "CREATE SEQUENCE IF NOT EXISTS deletion_seq START 1",
    """
    CREATE TABLE IF NOT EXISTS deletions (
        deletion_id      BIGINT DEFAULT nextval('deletion_seq'),
        ts               TIMESTAMP,             -- UTC
        trace_count      BIGINT,                -- traces deleted
        filter           VARCHAR,               -- the filter string, if one was given
        trace_ids        JSON,                  -- the ids deleted, when ids were given
        max_timestamp_ms BIGINT,                -- cutoff: roots that started before it
        max_traces       BIGINT,                -- cap (the oldest first), if one was given
        source           VARCHAR                -- api | cli | ui | retention
    )""",
]

# Version 3: experiments (MLflow's grouping). Every trace belongs to one; traces stored before
# are in Default ("0"). The name is kept on the trace row too, so the ``experiment`` filter and
# order are plain column reads.
_V3 = [
    """
    CREATE TABLE IF NOT EXISTS experiments (
        experiment_id VARCHAR PRIMARY KEY,      -- '0' (Default), then '1', '2', ... by creation
        name          VARCHAR NOT NULL UNIQUE,
        created       TIMESTAMP                 -- UTC
    )""",
    "INSERT INTO experiments VALUES ('0', 'Default', make_timestamp(epoch_us(now()))) "
    "ON CONFLICT DO NOTHING",
    "ALTER TABLE traces ADD COLUMN IF NOT EXISTS experiment_id VARCHAR DEFAULT '0'",
    "ALTER TABLE traces ADD COLUMN IF NOT EXISTS experiment VARCHAR DEFAULT 'Default'",
]

# MIGRATIONS[v] brings a store at version v-1 to version v.
MIGRATIONS: dict[int, list[str]] = {1: _V1, 2: _V2, 3: _V3}
Migration = Callable[[duckdb.DuckDBPyConnection], None]

# The documented SQL surface: table -> columns. The README lists these and a test keeps it true.
SQL_SURFACE: dict[str, tuple[str, ...]] = {
    "traces": (
        "trace_id", "name", "status", "status_message", "timestamp_ms", "execution_time_ms",
        "start_time_ns", "end_time_ns", "span_count", "service_name", "root_span_id", "has_root",
        "request_preview", "response_preview", "tags", "metadata", "experiment_id", "experiment",
    ),
    "spans": (
        "trace_id", "span_id", "parent_id", "name", "span_type", "status", "status_message",
        "start_time_ns", "end_time_ns", "duration_ms", "kind", "service_name", "attributes",
        "inputs", "outputs", "events",
    ),
    "trace_tags": ("trace_id", "key", "value", "value_type", "value_str", "value_num"),
    "tag_events": (
        "event_id", "ts", "trace_id", "key", "old_value", "new_value", "operation", "source",
    ),
    "tag_keys": ("key", "exclusive", "scope"),
    "trace_metadata": ("entry_id", "ts", "trace_id", "key", "value", "source"),
    "deletions": (
        "deletion_id", "ts", "trace_count", "filter", "trace_ids", "max_timestamp_ms",
        "max_traces", "source",
    ),
    "experiments": ("experiment_id", "name", "created"),
}  # fmt: skip


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The store's schema version; 0 for an empty database.

    Asks the table directly (about 0.1 ms); information_schema would take 10 ms on every open.
    """
    try:
        # fetchall, not fetchone: a result left unfinished keeps its transaction open on the
        # connection, and a CHECKPOINT (compaction after a deletion) then refuses to run.
        rows = con.execute(
            "SELECT value FROM traceduck_meta WHERE key = 'schema_version'"
        ).fetchall()
    except duckdb.CatalogException:
        return 0
    return int(rows[0][0]) if rows else 0


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Create or upgrade the schema in one transaction; returns the version now in force."""
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        from ...errors import StorageError

        raise StorageError(
            f"this store has schema version {current}, newer than this traceduck "
            f"({SCHEMA_VERSION}); upgrade traceduck to use it"
        )
    if current == SCHEMA_VERSION:
        return current
    con.execute("BEGIN TRANSACTION")
    try:
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                con.execute(statement)
        con.execute(
            "INSERT INTO traceduck_meta VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [str(SCHEMA_VERSION)],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
