-- traceduck's ClickHouse schema for a cluster (schema version 4): replicated local
-- tables NAME_local on every node and Distributed tables NAME over them.
-- Generated from the engine's own DDL by:
--   python -m traceduck.store.clickhouse._cluster --cluster traceduck --database traceduck
-- Run once, on any node, before traceduck writes (see collector/README.md):
--   clickhouse-client --multiquery < clickhouse-cluster.sql
-- The nodes need the macros {shard} and {replica} and the cluster in remote_servers.

CREATE DATABASE IF NOT EXISTS traceduck ON CLUSTER traceduck;

USE traceduck;

CREATE TABLE IF NOT EXISTS traceduck.traceduck_meta_local ON CLUSTER traceduck (key String, value String, version UInt64) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version) ORDER BY key;

CREATE TABLE IF NOT EXISTS traceduck.traceduck_meta ON CLUSTER traceduck AS traceduck.traceduck_meta_local ENGINE = Distributed(traceduck, traceduck, traceduck_meta_local, cityHash64(key));

CREATE TABLE IF NOT EXISTS traceduck.td_traces_local ON CLUSTER traceduck (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', version) ORDER BY trace_id
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS traceduck.td_traces ON CLUSTER traceduck AS traceduck.td_traces_local ENGINE = Distributed(traceduck, traceduck, td_traces_local, cityHash64(trace_id));

CREATE TABLE IF NOT EXISTS traceduck.spans_local ON CLUSTER traceduck (
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
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}') ORDER BY (trace_id, start_time_ns, span_id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS traceduck.spans ON CLUSTER traceduck AS traceduck.spans_local ENGINE = Distributed(traceduck, traceduck, spans_local, cityHash64(trace_id));

CREATE TABLE IF NOT EXISTS traceduck.td_tag_events_local ON CLUSTER traceduck (
    trace_id    String,
    key         String,
    version     UInt64,
    edit_id     UInt64,
    seq         UInt32,
    kind        LowCardinality(String),  -- event | claim | release
    ts          DateTime64(6, 'UTC'),
    operation   LowCardinality(String),  -- set | update | delete | moved ('' for claims)
    source      LowCardinality(String),
    old_value   Nullable(String),
    new_value   Nullable(String),
    value_type  LowCardinality(String),
    value_str   String,
    value_num   Float64,
    value_bool  Bool,
    claim_scope String,                  -- claims: '' (global) or 'name:<root name>'
    ord         UInt128 MATERIALIZED bitOr(bitShiftLeft(toUInt128(version), 64), bitOr(bitShiftLeft(toUInt128(bitAnd(edit_id, 4294967295)), 32), toUInt128(seq))),  -- (version, edit_id, seq) in one number
    INDEX idx_trace trace_id TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}') ORDER BY (key, trace_id, version, edit_id, seq);

CREATE TABLE IF NOT EXISTS traceduck.td_tag_events ON CLUSTER traceduck AS traceduck.td_tag_events_local ENGINE = Distributed(traceduck, traceduck, td_tag_events_local, cityHash64(version, edit_id));

CREATE TABLE IF NOT EXISTS traceduck.td_metadata_local ON CLUSTER traceduck (
    trace_id  String,
    key       String,
    version   UInt64,
    edit_id   UInt64,
    seq       UInt32,
    ts        DateTime64(6, 'UTC'),
    value     String,
    source    LowCardinality(String),
    ord       UInt128 MATERIALIZED bitOr(bitShiftLeft(toUInt128(version), 64), bitOr(bitShiftLeft(toUInt128(bitAnd(edit_id, 4294967295)), 32), toUInt128(seq))),
    INDEX idx_trace trace_id TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}') ORDER BY (key, trace_id, version, edit_id, seq);

CREATE TABLE IF NOT EXISTS traceduck.td_metadata ON CLUSTER traceduck AS traceduck.td_metadata_local ENGINE = Distributed(traceduck, traceduck, td_metadata_local, cityHash64(version, edit_id));

CREATE TABLE IF NOT EXISTS traceduck.td_tag_keys_local ON CLUSTER traceduck (
    key       String,
    exclusive Bool,
    scope     String,
    version   UInt64,
    edit_id   UInt64
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}') ORDER BY (key, version, edit_id);

CREATE TABLE IF NOT EXISTS traceduck.td_tag_keys ON CLUSTER traceduck AS traceduck.td_tag_keys_local ENGINE = Distributed(traceduck, traceduck, td_tag_keys_local, cityHash64(key));

CREATE OR REPLACE VIEW traceduck.trace_tags ON CLUSTER traceduck AS SELECT trace_id, key, value, value_type, if(value_type = 'string', value_str, value) AS value_str, if(value_type = 'number', value_num, NULL) AS value_num FROM (SELECT trace_id, key, ifNull(tupleElement(cur, 1), '') AS value, tupleElement(cur, 2) AS value_type, tupleElement(cur, 3) AS value_str, tupleElement(cur, 4) AS value_num, tupleElement(cur, 5) AS value_bool FROM (SELECT trace_id, key, argMax(tuple(new_value, value_type, value_str, value_num, value_bool), ord) AS cur FROM td_tag_events WHERE kind = 'event' GROUP BY trace_id, key) WHERE tupleElement(cur, 2) != '' AND (key, trace_id) NOT IN (SELECT key, trace_id FROM td_tag_events WHERE kind = 'claim' AND (key, claim_scope, trace_id) NOT IN (SELECT key, claim_scope, tupleElement(h, 1) FROM (SELECT key, claim_scope, argMax(tuple(trace_id, kind), ord) AS h FROM td_tag_events WHERE kind != 'event' GROUP BY key, claim_scope) WHERE tupleElement(h, 2) = 'claim')));

CREATE OR REPLACE VIEW traceduck.trace_metadata ON CLUSTER traceduck AS
SELECT cityHash64(edit_id, seq) AS entry_id, ts, trace_id, key, value, source
FROM td_metadata;

CREATE OR REPLACE VIEW traceduck.tag_events ON CLUSTER traceduck AS
SELECT cityHash64(edit_id, seq) AS event_id, ts, trace_id, key, old_value, new_value,
       operation, source
FROM td_tag_events WHERE kind = 'event';

CREATE OR REPLACE VIEW traceduck.tag_keys ON CLUSTER traceduck AS
SELECT key, tupleElement(r, 1) AS exclusive, tupleElement(r, 2) AS scope FROM (
    SELECT key, argMax(tuple(exclusive, scope), tuple(version, edit_id)) AS r
    FROM td_tag_keys GROUP BY key);

CREATE OR REPLACE VIEW traceduck.traces ON CLUSTER traceduck AS
SELECT `t-row`.trace_id AS trace_id, `t-row`.name AS name, `t-row`.status AS status,
       `t-row`.status_message AS status_message, `t-row`.timestamp_ms AS timestamp_ms,
       `t-row`.execution_time_ms AS execution_time_ms,
       `t-row`.start_time_ns AS start_time_ns, `t-row`.end_time_ns AS end_time_ns,
       `t-row`.span_count AS span_count, `t-row`.service_name AS service_name,
       `t-row`.root_span_id AS root_span_id, `t-row`.has_root AS has_root,
       `t-row`.request_preview AS request_preview,
       `t-row`.response_preview AS response_preview,
       ifNull(`t-tags`.tags, '{}') AS tags, ifNull(`t-meta`.metadata, '{}') AS metadata
FROM td_traces AS `t-row` FINAL
LEFT JOIN (
    SELECT trace_id, concat('{', arrayStringConcat(groupArray(
               concat(toJSONString(key), ':', value)), ','), '}') AS tags
    FROM trace_tags GROUP BY trace_id) AS `t-tags` ON `t-tags`.trace_id = `t-row`.trace_id
LEFT JOIN (
    SELECT trace_id, concat('{', arrayStringConcat(groupArray(
               concat(toJSONString(key), ':', v)), ','), '}') AS metadata
    FROM (SELECT trace_id, key, value AS v FROM (SELECT trace_id, key, argMax(value, ord) AS value FROM td_metadata GROUP BY trace_id, key))
    GROUP BY trace_id) AS `t-meta` ON `t-meta`.trace_id = `t-row`.trace_id
SETTINGS join_use_nulls = 1;

CREATE TABLE IF NOT EXISTS traceduck.deletions_local ON CLUSTER traceduck (
    deletion_id      Int64,
    ts               DateTime64(6, 'UTC'),
    trace_count      Int64,
    filter           Nullable(String),
    trace_ids        Nullable(String),
    max_timestamp_ms Nullable(Int64),
    max_traces       Nullable(Int64),
    source           LowCardinality(String)
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}') ORDER BY (ts, deletion_id);

CREATE TABLE IF NOT EXISTS traceduck.deletions ON CLUSTER traceduck AS traceduck.deletions_local ENGINE = Distributed(traceduck, traceduck, deletions_local, cityHash64(deletion_id));

ALTER TABLE traceduck.td_traces_local ON CLUSTER traceduck ADD COLUMN IF NOT EXISTS experiment_id String DEFAULT '0';

ALTER TABLE traceduck.td_traces ON CLUSTER traceduck ADD COLUMN IF NOT EXISTS experiment_id String DEFAULT '0';

ALTER TABLE traceduck.td_traces_local ON CLUSTER traceduck ADD COLUMN IF NOT EXISTS experiment String DEFAULT 'Default';

ALTER TABLE traceduck.td_traces ON CLUSTER traceduck ADD COLUMN IF NOT EXISTS experiment String DEFAULT 'Default';

CREATE TABLE IF NOT EXISTS traceduck.td_experiments_local ON CLUSTER traceduck (
    experiment_id String,
    name          String,
    created       DateTime64(6, 'UTC')
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}') ORDER BY (name, created);

CREATE TABLE IF NOT EXISTS traceduck.td_experiments ON CLUSTER traceduck AS traceduck.td_experiments_local ENGINE = Distributed(traceduck, traceduck, td_experiments_local, cityHash64(name));

INSERT INTO traceduck.td_experiments SELECT '0', 'Default', now64(6) FROM system.one WHERE (SELECT count() FROM traceduck.td_experiments WHERE name = 'Default') = 0 SETTINGS insert_distributed_sync = 1;

CREATE OR REPLACE VIEW traceduck.experiments ON CLUSTER traceduck AS
SELECT experiment_id, name, created FROM (
    SELECT name, argMin(eid, c) AS experiment_id, min(c) AS created
    FROM (SELECT name, experiment_id AS eid, created AS c FROM td_experiments)
    GROUP BY name)
ORDER BY toInt64OrZero(experiment_id);

CREATE OR REPLACE VIEW traceduck.traces ON CLUSTER traceduck AS
SELECT `t-row`.trace_id AS trace_id, `t-row`.name AS name, `t-row`.status AS status,
       `t-row`.status_message AS status_message, `t-row`.timestamp_ms AS timestamp_ms,
       `t-row`.execution_time_ms AS execution_time_ms,
       `t-row`.start_time_ns AS start_time_ns, `t-row`.end_time_ns AS end_time_ns,
       `t-row`.span_count AS span_count, `t-row`.service_name AS service_name,
       `t-row`.root_span_id AS root_span_id, `t-row`.has_root AS has_root,
       `t-row`.request_preview AS request_preview,
       `t-row`.response_preview AS response_preview,
       ifNull(`t-tags`.tags, '{}') AS tags, ifNull(`t-meta`.metadata, '{}') AS metadata, `t-row`.experiment_id AS experiment_id, `t-row`.experiment AS experiment
FROM td_traces AS `t-row` FINAL
LEFT JOIN (
    SELECT trace_id, concat('{', arrayStringConcat(groupArray(
               concat(toJSONString(key), ':', value)), ','), '}') AS tags
    FROM trace_tags GROUP BY trace_id) AS `t-tags` ON `t-tags`.trace_id = `t-row`.trace_id
LEFT JOIN (
    SELECT trace_id, concat('{', arrayStringConcat(groupArray(
               concat(toJSONString(key), ':', v)), ','), '}') AS metadata
    FROM (SELECT trace_id, key, value AS v FROM (SELECT trace_id, key, argMax(value, ord) AS value FROM td_metadata GROUP BY trace_id, key))
    GROUP BY trace_id) AS `t-meta` ON `t-meta`.trace_id = `t-row`.trace_id
SETTINGS join_use_nulls = 1;

ALTER TABLE traceduck.td_traces_local ON CLUSTER traceduck MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;

ALTER TABLE traceduck.spans_local ON CLUSTER traceduck MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;

ALTER TABLE traceduck.td_tag_events_local ON CLUSTER traceduck MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;

ALTER TABLE traceduck.td_metadata_local ON CLUSTER traceduck MODIFY SETTING enable_block_number_column = 1, enable_block_offset_column = 1;

INSERT INTO traceduck.traceduck_meta (key, value, version) SETTINGS insert_distributed_sync = 1 VALUES ('schema_version', '4', 4);
