"""The ClickHouse schema: tables created on first use, versioned like the DuckDB schema.

ClickHouse has no multi-statement transactions and merges rows lazily, so the layout is built
from inserts that are atomic on their own (one INSERT block into one table):

* ``td_traces`` - one row per trace version (ReplacingMergeTree by ``version``, read with
  FINAL): a trace is inserted whole; a late part of it inserts a newer row. Its index marks
  every 1,024 rows, not 8,192: a write's lookup of a few thousand trace ids (``_writer``) then
  reads at most that many small granules, not most of the table (stores made before this
  setting keep the coarser index: it cannot change on a table).
* ``spans`` - MergeTree sorted by trace id, immutable; marks every 1,024 rows too (a trace's
  spans, and a lookup's, read from granules that size).
* ``td_tag_events`` - every tag change is a row, and each edit (one tag, a bulk edit of
  thousands of traces, an exclusive move with its ``moved`` event, the live tags of a write
  batch) is ONE insert whose rows share a version and an edit id. The history is these rows;
  the current value of (trace, key) is the row with the greatest (version, edit_id, seq), so a
  reader sees a whole edit or none of it. ``kind = 'claim'`` rows record who claimed an
  exclusive key in a scope; the latest claim is the holder, and an older claimant's value is
  hidden, so two concurrent claimers never both show the tag.
* ``td_metadata`` - every metadata entry; the latest per (trace, key) is shown.
* ``td_tag_keys`` - exclusive-key registrations, latest per key.

* ``td_experiments`` - experiment names and their ids (version 3).

The documented SQL surface (``traces``, ``spans``, ``trace_tags``, ``tag_events``,
``trace_metadata``, ``tag_keys``, ``experiments``) is views over these, with the DuckDB
store's columns, and ``deletions`` a table of its own.
"""

from __future__ import annotations

from ...errors import StorageError
from ._client import Connection
from ._sql import ORD, current_metadata, current_tags

SCHEMA_VERSION = 4

# Tag value columns: the JSON text, its JSON type ('' for a deleted key), and the value in the
# column of its type, so `tags.cost > 3` compares Float64s and never parses JSON per row.
_TAG_VALUE = """
        new_value   Nullable(String),
        value_type  LowCardinality(String),
        value_str   String,
        value_num   Float64,
        value_bool  Bool"""

_V1 = [
    """
    CREATE TABLE IF NOT EXISTS td_traces (
        trace_id          String,
        name              Nullable(String),
        status            LowCardinality(String),
        status_message    Nullable(String),
        timestamp_ms      Int64,
        execution_time_ms Float64,
        start_time_ns     Int64,
        end_time_ns       Int64,
        span_count        Int64,
        service_name      Nullable(String),
        root_span_id      Nullable(String),
        has_root          Bool,
        request_preview   Nullable(String) CODEC(ZSTD(3)),
        response_preview  Nullable(String) CODEC(ZSTD(3)),
        version           UInt64,
        INDEX idx_ts timestamp_ms TYPE minmax GRANULARITY 1
    ) ENGINE = ReplacingMergeTree(version) ORDER BY trace_id
    SETTINGS index_granularity = 1024""",
    """
    CREATE TABLE IF NOT EXISTS spans (
        trace_id       String,
        span_id        String,
        parent_id      Nullable(String),
        name           Nullable(String),
        span_type      Nullable(String),
        status         LowCardinality(Nullable(String)),
        status_message Nullable(String),
        start_time_ns  Int64,
        end_time_ns    Nullable(Int64),
        duration_ms    Nullable(Float64),
        kind           LowCardinality(Nullable(String)),
        service_name   Nullable(String),
        attributes     String,
        inputs         Nullable(String) CODEC(ZSTD(3)),
        outputs        Nullable(String) CODEC(ZSTD(3)),
        events         Nullable(String) CODEC(ZSTD(3))
    ) ENGINE = MergeTree ORDER BY (trace_id, start_time_ns, span_id)
    SETTINGS index_granularity = 1024""",
    f"""
    CREATE TABLE IF NOT EXISTS td_tag_events (
        trace_id    String,
        key         String,
        version     UInt64,
        edit_id     UInt64,
        seq         UInt32,
        kind        LowCardinality(String),  -- event | claim | release
        ts          DateTime64(6, 'UTC'),
        operation   LowCardinality(String),  -- set | update | delete | moved ('' for claims)
        source      LowCardinality(String),
        old_value   Nullable(String),{_TAG_VALUE},
        claim_scope String,                  -- claims: '' (global) or 'name:<root name>'
        ord         UInt128 MATERIALIZED {ORD},  -- (version, edit_id, seq) in one number
        INDEX idx_trace trace_id TYPE bloom_filter(0.001) GRANULARITY 1
    ) ENGINE = MergeTree ORDER BY (key, trace_id, version, edit_id, seq)""",
    f"""
    CREATE TABLE IF NOT EXISTS td_metadata (
        trace_id  String,
        key       String,
        version   UInt64,
        edit_id   UInt64,
        seq       UInt32,
        ts        DateTime64(6, 'UTC'),
        value     String,
        source    LowCardinality(String),
        ord       UInt128 MATERIALIZED {ORD},
        INDEX idx_trace trace_id TYPE bloom_filter(0.001) GRANULARITY 1
    ) ENGINE = MergeTree ORDER BY (key, trace_id, version, edit_id, seq)""",
    """
    CREATE TABLE IF NOT EXISTS td_tag_keys (
        key       String,
        exclusive Bool,
        scope     String,
        version   UInt64,
        edit_id   UInt64
    ) ENGINE = MergeTree ORDER BY (key, version, edit_id)""",
    # -- the documented SQL surface ----------------------------------------------------------
    "CREATE OR REPLACE VIEW trace_tags AS SELECT trace_id, key, value, value_type, "
    "if(value_type = 'string', value_str, value) AS value_str, "
    "if(value_type = 'number', value_num, NULL) AS value_num "
    f"FROM ({current_tags(registered_only=False)})",  # a migration's SQL never changes
    """
    CREATE OR REPLACE VIEW trace_metadata AS
    SELECT cityHash64(edit_id, seq) AS entry_id, ts, trace_id, key, value, source
    FROM td_metadata""",
    """
    CREATE OR REPLACE VIEW tag_events AS
    SELECT cityHash64(edit_id, seq) AS event_id, ts, trace_id, key, old_value, new_value,
           operation, source
    FROM td_tag_events WHERE kind = 'event'""",
    """
    CREATE OR REPLACE VIEW tag_keys AS
    SELECT key, tupleElement(r, 1) AS exclusive, tupleElement(r, 2) AS scope FROM (
        SELECT key, argMax(tuple(exclusive, scope), tuple(version, edit_id)) AS r
        FROM td_tag_keys GROUP BY key)""",
    # ClickHouse stores a view's query with its tables named by database (``db.td_traces``),
    # and resolves ``db`` as an alias first where one has that name: a store in a database
    # named ``g`` or ``m`` could not create this view with the aliases ``g`` and ``m``. These
    # aliases hold a '-', which no database name may (``store._names``).
    f"""
    CREATE OR REPLACE VIEW traces AS
    SELECT `t-row`.trace_id AS trace_id, `t-row`.name AS name, `t-row`.status AS status,
           `t-row`.status_message AS status_message, `t-row`.timestamp_ms AS timestamp_ms,
           `t-row`.execution_time_ms AS execution_time_ms,
           `t-row`.start_time_ns AS start_time_ns, `t-row`.end_time_ns AS end_time_ns,
           `t-row`.span_count AS span_count, `t-row`.service_name AS service_name,
           `t-row`.root_span_id AS root_span_id, `t-row`.has_root AS has_root,
           `t-row`.request_preview AS request_preview,
           `t-row`.response_preview AS response_preview,
           ifNull(`t-tags`.tags, '{{}}') AS tags, ifNull(`t-meta`.metadata, '{{}}') AS metadata
    FROM td_traces AS `t-row` FINAL
    LEFT JOIN (
        SELECT trace_id, concat('{{', arrayStringConcat(groupArray(
                   concat(toJSONString(key), ':', value)), ','), '}}') AS tags
        FROM trace_tags GROUP BY trace_id) AS `t-tags` ON `t-tags`.trace_id = `t-row`.trace_id
    LEFT JOIN (
        SELECT trace_id, concat('{{', arrayStringConcat(groupArray(
                   concat(toJSONString(key), ':', v)), ','), '}}') AS metadata
        FROM (SELECT trace_id, key, value AS v FROM ({current_metadata()}))
        GROUP BY trace_id) AS `t-meta` ON `t-meta`.trace_id = `t-row`.trace_id
    SETTINGS join_use_nulls = 1""",
]

# Version 2: the record of deletions, in the SQL surface as on DuckDB (written by ``_delete``;
# ``deletion_id`` is the deletion's time in nanoseconds, so the ids grow).
_V2 = [
    """
    CREATE TABLE IF NOT EXISTS deletions (
        deletion_id      Int64,
        ts               DateTime64(6, 'UTC'),
        trace_count      Int64,
        filter           Nullable(String),
        trace_ids        Nullable(String),
        max_timestamp_ms Nullable(Int64),
        max_traces       Nullable(Int64),
        source           LowCardinality(String)
    ) ENGINE = MergeTree ORDER BY (ts, deletion_id)""",
]

# Version 3: experiments. Traces stored before are in Default ("0"); ``experiments`` takes,
# per name, the id of its earliest row (see ``_experiments``).
_TRACES_VIEW_V1 = next(s for s in _V1 if "VIEW traces AS" in s)
_V3 = [
    "ALTER TABLE td_traces ADD COLUMN IF NOT EXISTS experiment_id String DEFAULT '0'",
    "ALTER TABLE td_traces ADD COLUMN IF NOT EXISTS experiment String DEFAULT 'Default'",
    """
    CREATE TABLE IF NOT EXISTS td_experiments (
        experiment_id String,
        name          String,
        created       DateTime64(6, 'UTC')
    ) ENGINE = MergeTree ORDER BY (name, created)""",
    "INSERT INTO td_experiments SELECT '0', 'Default', now64(6) FROM system.one "
    "WHERE (SELECT count() FROM td_experiments WHERE name = 'Default') = 0",
    """
    CREATE OR REPLACE VIEW experiments AS
    SELECT experiment_id, name, created FROM (
        SELECT name, argMin(eid, c) AS experiment_id, min(c) AS created
        FROM (SELECT name, experiment_id AS eid, created AS c FROM td_experiments)
        GROUP BY name)
    ORDER BY toInt64OrZero(experiment_id)""",
    _TRACES_VIEW_V1.replace(
        "ifNull(`t-meta`.metadata, '{}') AS metadata",
        "ifNull(`t-meta`.metadata, '{}') AS metadata, `t-row`.experiment_id AS experiment_id, "
        "`t-row`.experiment AS experiment",
    ),
]
assert _V3[-1] != _TRACES_VIEW_V1

# Version 4: deleting traces. The tables that hold rows per trace number their rows' blocks, so
# a lightweight DELETE writes a small patch part (a mask applied on read until merges drop the
# rows) instead of rewriting the row mask of every part it touches (see ``_delete``, and
# benchmarks/delete_clickhouse.py for the difference).
_V4 = [
    f"ALTER TABLE {table} MODIFY SETTING enable_block_number_column = 1, "
    "enable_block_offset_column = 1"
    for table in ("td_traces", "spans", "td_tag_events", "td_metadata")
]

MIGRATIONS: dict[int, list[str]] = {1: _V1, 2: _V2, 3: _V3, 4: _V4}

META = (
    "CREATE TABLE IF NOT EXISTS traceduck_meta (key String, value String, version UInt64) "
    "ENGINE = ReplacingMergeTree(version) ORDER BY key"
)


def schema_version(conn: Connection) -> int:
    rows = conn.query(
        "SELECT argMax(value, version) FROM traceduck_meta WHERE key = 'schema_version'"
    )
    value = rows[0][0] if rows else ""
    return int(value) if value else 0


def migrate(conn: Connection) -> int:
    """Create or upgrade the schema; returns the version now in force.

    Every statement is idempotent (IF NOT EXISTS, OR REPLACE), so two processes migrating at
    once, or a migration cut short, end in the same schema when run again. Once per connection
    and process: the UI opens a store per request."""
    if conn.schema_ready:
        return SCHEMA_VERSION
    conn.command(META)
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise StorageError(
            f"store {conn.name.display} has schema version {current}, newer than this traceduck "
            f"({SCHEMA_VERSION}); upgrade traceduck to use it"
        )
    if current == SCHEMA_VERSION:
        conn.schema_ready = True
        return current
    statements: list[str] = []
    for version in range(current + 1, SCHEMA_VERSION + 1):  # each recorded once it is done
        statements += MIGRATIONS[version]
        statements.append(
            f"INSERT INTO traceduck_meta VALUES ('schema_version', '{version}', {version})"
        )
    conn.run_script(statements)
    conn.schema_ready = True
    return SCHEMA_VERSION
