"""Store names (path, chdb://, clickhouse://), and what holds on every engine: reads by prefix,
stats, compare, read-only SQL, clear errors for bad URLs, unreachable servers and a chdb
directory held by another process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import traceduck as td
from _engines import ENGINES, SERVER_URL, chdb_dir, new_store_name, write_rows, write_trace
from _support import PYTHON, child_env
from traceduck.errors import ConfigError, StorageError, TraceduckError
from traceduck.store._names import parse_store_name

sys.path.insert(0, str(Path(__file__).parent / "query"))
from querytest_data import TRACES, tid


@pytest.fixture(scope="module", params=ENGINES)
def fixed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The query tests' fixed dataset, written through each engine's batch writer."""
    store = td.TraceStore(new_store_name(request.param, tmp_path_factory.mktemp("fixed")))
    write_rows(store, TRACES)
    return store


# -- names ------------------------------------------------------------------------------------
def test_a_path_is_duckdb_and_urls_name_clickhouse(tmp_path: Path) -> None:
    assert parse_store_name("traces.duckdb").engine == "duckdb"
    assert parse_store_name(tmp_path / "x.duckdb").path == str(tmp_path / "x.duckdb")
    assert parse_store_name(r"C:\data\t.duckdb").engine == "duckdb"
    local = parse_store_name("chdb:///var/lib/td?database=team_a")
    assert (local.engine, local.path, local.database) == ("chdb", "/var/lib/td", "team_a")
    relative = parse_store_name("chdb://data/ch")
    assert relative.path == os.path.abspath("data/ch")
    assert relative.database == "traceduck"
    server = parse_store_name("clickhouse://ann:p%40ss@ch.internal:9123/prod")
    assert (server.host, server.port, server.user, server.password, server.database) == (
        "ch.internal", 9123, "ann", "p@ss", "prod",
    )  # fmt: skip
    assert "p@ss" not in server.display
    tls = parse_store_name("clickhouses://ch.example.com")
    assert (tls.secure, tls.port, tls.database) == (True, 8443, "traceduck")
    assert parse_store_name("clickhouse://h/").port == 8123


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("clickhous://h/db", "unknown store URL scheme"),
        ("http://h:8123/db", "unknown store URL scheme"),
        ("clickhouse://", "names no host"),
        ("clickhouse://u:secret@/db", "names no host"),
        ("clickhouse://h:port/db", "port must be a number"),
        ("clickhouse://h:0/db", "port must be 1-65535"),
        ("clickhouse://h/a/b", "one database name"),
        ("clickhouse://h/bad-name", "letters, digits and underscores"),
        ("clickhouse://h/db?x=1", "unknown option"),
        ("chdb://", "names no directory"),
        ("chdb:///dir?table=t", "unknown option"),
        ("chdb:///dir?database=a&database=b", "'database' more than once"),
        ("", "empty"),
    ],
)
def test_a_bad_store_url_is_a_config_error_saying_what_to_write(name: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        td.TraceStore(name)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("name", ["system", "INFORMATION_SCHEMA", "_temporary_and_external_tables"])
def test_clickhouse_s_own_databases_are_refused_as_a_store(name: str) -> None:
    with pytest.raises(ConfigError, match="ClickHouse's own database"):
        td.TraceStore(f"clickhouse://h/{name}")
    with pytest.raises(ConfigError, match="ClickHouse's own database"):
        td.TraceStore(f"chdb:///dir?database={name}")


@pytest.mark.parametrize("database", ["g", "m", "t"])
def test_a_chdb_store_in_a_database_named_like_a_table_alias_works(database: str) -> None:
    # ClickHouse names a view's tables by database (``m.td_traces``) and resolved ``m`` as the
    # traces view's alias of the same name: stores in databases ``g`` and ``m`` could not be
    # created at all.
    store = td.TraceStore(f"chdb://{chdb_dir()}?database={database}")
    tid = write_trace(store, "answer", {"env": "prod"})
    store.log_metadata(tid, {"model": "small"})
    store.set_trace_tag(tid, "reviewed", True)
    found = store.search_traces("tags.env = 'prod' AND metadata.model = 'small'")
    assert [t.info.trace_id for t in found] == [tid]
    assert store.get_trace(tid[:8]).info.tags == {"env": "prod", "reviewed": True}
    assert store.sql("SELECT count(*) AS n FROM traces")["n"].to_pylist() == [1]


def test_trace_store_of_a_url_is_the_clickhouse_store_and_of_a_path_duckdb(tmp_path: Path) -> None:
    chdb = td.TraceStore(new_store_name("chdb", tmp_path))
    assert isinstance(chdb, td.TraceStore)
    assert type(chdb).__name__ == "ClickHouseStore"
    duck = td.TraceStore(tmp_path / "x.duckdb")
    assert isinstance(duck, td.TraceStore)
    assert type(duck).__name__ == "DuckDBStore"
    # one base, two engines: neither engine's store is built on the other's
    assert not issubclass(type(chdb), type(duck)) and not issubclass(type(duck), type(chdb))
    assert chdb.count_traces() == 0  # created on first use, empty


def test_an_unreachable_server_is_a_storage_error_that_says_so() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = td.TraceStore(f"clickhouse://user:secret@127.0.0.1:{port}/db")
    with pytest.raises(StorageError, match="cannot reach ClickHouse") as info:
        store.count_traces()
    assert "secret" not in str(info.value)


def test_a_second_process_on_a_chdb_directory_gets_a_storage_error(tmp_path: Path) -> None:
    td.TraceStore(new_store_name("chdb", tmp_path)).count_traces()  # this process holds it
    code = (
        "import traceduck as td\n"
        "from traceduck.errors import StorageError\n"
        f"store = td.TraceStore('chdb://{chdb_dir()}?database=other')\n"
        "try:\n"
        "    store.count_traces()\n"
        "except StorageError as exc:\n"
        "    print('StorageError:', exc)\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "StorageError:" in done.stdout
    assert "in use by another process" in done.stdout


def test_one_process_runs_one_chdb_directory(tmp_path: Path) -> None:
    td.TraceStore(new_store_name("chdb", tmp_path)).count_traces()
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(StorageError, match="one directory per process"):
        td.TraceStore(f"chdb://{tmp_path / 'elsewhere'}").count_traces()


READS = {
    "search": lambda s: s.search_traces(),
    "get": lambda s: s.get_trace("abc"),
    "stats": lambda s: s.stats(),
    "sql": lambda s: s.sql("SELECT count() FROM traces"),
    "count": lambda s: s.count_traces(),
    "tag history": lambda s: s.tag_history("abc"),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_reading_a_missing_chdb_directory_creates_nothing(tmp_path: Path, read: Any) -> None:
    """A store is created by a write only: reading a chdb directory that does not exist used
    to create it, with an empty store in it (as the CLI's mistyped --db did)."""
    missing = tmp_path / "new" / "dir"
    with pytest.raises(StorageError, match=f"no store at chdb://{missing} .no such directory"):
        read(td.TraceStore(f"chdb://{missing}"))
    assert not missing.exists() and not missing.parent.exists()


def test_writing_a_missing_chdb_directory_creates_the_store(tmp_path: Path) -> None:
    """The first write (the exporter's batch, an import, registering a tag) creates it; a
    process of its own, since this one already runs a chdb directory."""
    code = (
        "import sys\n"
        "sys.path.insert(0, 'tests')\n"
        "import traceduck as td\n"
        "from _engines import write_trace\n"
        f"store = td.TraceStore('chdb://{tmp_path / 'a'}')\n"
        "write_trace(store, 'job', {'k': 1})\n"
        f"other = td.TraceStore('chdb://{tmp_path / 'a'}')\n"
        "print(other.count_traces(), [t.info.tags for t in other.search_traces()])\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([PYTHON, "-c", code], env=child_env(), capture_output=True, text=True,
                          timeout=120, cwd=root)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "[{'k':", "1}]"]


def test_set_experiment_on_a_missing_chdb_directory_creates_the_store(tmp_path: Path) -> None:
    """set_experiment creates its experiment in the store, so it is a first write too: on a
    chdb directory not made yet it raised 'no store at ...' (DuckDB makes the file)."""
    code = (
        "import traceduck as td\n"
        f"td.configure(db='chdb://{tmp_path / 'a'}', auto_context=False)\n"
        "exp = td.set_experiment('prompt-v2')\n"
        "td.trace(lambda: 1, name='job')()\n"
        "assert td.flush(30)\n"
        "print(exp.experiment_id, len(td.search_traces(experiment_ids=[exp.experiment_id])))\n"
    )
    done = subprocess.run([PYTHON, "-c", code], env=child_env(), capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]


# -- the same answers on every engine --------------------------------------------------------
def test_get_trace_by_unique_ambiguous_and_unknown_prefix(fixed: Any) -> None:
    trace = fixed.get_trace("0101")
    assert trace.info.trace_id == tid(1)
    assert [s.name for s in trace.spans] == ["chat", "llm", "search"]
    assert trace.info.tags["cost"] == 3.2 and trace.info.metadata["user"] == "u1"
    assert fixed.get_trace(f"tr-{tid(2)}").info.trace_id == tid(2)
    with pytest.raises(td.AmbiguousTraceIdError):
        fixed.get_trace("1")
    with pytest.raises(td.TraceNotFoundError):
        fixed.get_trace("ffff")
    with pytest.raises(td.TraceNotFoundError):
        fixed.get_trace("not-hex")


def test_stats_per_group(fixed: Any) -> None:
    rows = fixed.stats("status = 'ERROR' OR tags.env = 'prod'", by="tags.env")
    summary = [(r["group"], r["count"], r["errors"]) for r in rows]
    assert summary == [("prod", 5, 0), ("PROD", 1, 1), ("dev", 1, 1), (None, 1, 1)]
    (everything,) = fixed.stats()
    assert everything["count"] == 12 and everything["p50_ms"] == pytest.approx(75.0)
    by_name = {r["group"]: r["count"] for r in fixed.stats(by="name")}
    assert by_name["chat"] == 7
    by_path = fixed.stats("name = 'chat'", by="metadata.eval.accuracy")
    nested = {(type(r["group"]).__name__, r["group"]): r["count"] for r in by_path}
    assert nested == {
        ("float", 0.93): 1, ("float", 0.5): 1, ("float", 0.75): 1, ("str", "0.75"): 1,
        ("float", 0.99): 1, ("NoneType", None): 2,
    }  # fmt: skip


@pytest.mark.parametrize(
    "by", ["tags.`", "tag.``", "metadata.`", "metadata.eval..accuracy", "metadata.eval."]
)
def test_stats_by_an_empty_key_or_path_step_is_a_filter_error(fixed: Any, by: str) -> None:
    with pytest.raises(td.FilterError, match="cannot group by"):
        fixed.stats(by=by)


def test_compare_side_by_side(fixed: Any) -> None:
    frame = fixed.compare_traces([tid(1), tid(2)], keys=["tags.cost", "status"])
    assert frame.loc["tags.cost"].tolist() == [3.2, 10]
    assert frame.loc["status"].tolist() == ["OK", "ERROR"]


def test_search_tables_and_spans(fixed: Any) -> None:
    table = fixed.search_traces("tags.cost >= 7", order_by=["tags.cost"], return_type="arrow")
    assert table.column("trace_id").to_pylist() == [tid(7), tid(8), tid(2)]
    listed = fixed.search_traces("span.name = 'search'", include_spans=True)
    assert [len(t.spans) for t in listed] == [3]


def test_sql_is_read_only(fixed: Any) -> None:
    assert fixed.sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 12}]
    for statement in (
        "DROP TABLE traces",
        "INSERT INTO spans (trace_id) VALUES ('x')",
        "SELECT 1; DROP TABLE traces",
        "DELETE FROM spans WHERE 1",
        5,  # DuckDB raised its own TypeError from extract_statements
    ):
        with pytest.raises(TraceduckError):
            fixed.sql(statement)
    assert fixed.count_traces() == 12


@pytest.mark.parametrize(
    "query",
    [
        "-- how many\nSELECT count(*) AS n FROM traces",
        "/* how many */ SELECT count(*) AS n FROM traces;",
        "SELECT count(*) AS n FROM traces WHERE name != 'a;b' -- not ; a second statement",
    ],
)
def test_sql_takes_comments_and_a_semicolon_in_text(fixed: Any, query: str) -> None:
    # ClickHouse refused these as "not one read-only query" where DuckDB answered
    assert fixed.sql(query).to_pylist() == [{"n": 12}]
    with pytest.raises(TraceduckError, match="read-only"):
        fixed.sql("-- a comment\nDROP TABLE traces")
    with pytest.raises(TraceduckError, match="read-only"):
        fixed.sql("SELECT 'x;y' AS a; /* ; */ DROP TABLE traces")
    assert fixed.count_traces() == 12


def test_a_read_only_store_refuses_every_change_and_changes_nothing(
    fixed: Any, tmp_path: Path
) -> None:
    # (on DuckDB the read-only store reads through the process's writable connection)
    reader = td.TraceStore(getattr(fixed, "name", fixed.path), read_only=True)
    some = fixed.search_traces(max_results=1)[0].info.trace_id
    export = str(tmp_path / "some.jsonl")
    fixed.export_traces(export, f"trace_id = '{some}'")
    experiments = fixed.search_experiments()
    existing = experiments[0].name
    before = (fixed.get_trace(some).info, fixed.tag_history(some), fixed.exclusive_tag_keys())
    refused = [
        lambda: reader.set_trace_tag(some, "k", 1),
        lambda: reader.set_trace_tag(some, "k", 1, append=True),
        lambda: reader.delete_trace_tag(some, "k"),
        lambda: reader.set_trace_tags("trace_id LIKE '%'", {"k": 1}),
        lambda: reader.append_trace_tags("trace_id LIKE '%'", {"k": 1}),
        lambda: reader.delete_trace_tags("trace_id LIKE '%'", ["k"]),
        lambda: reader.register_tag("k"),
        lambda: reader.log_metadata(some, {"k": 1}),
        lambda: reader.delete_traces(trace_ids=[some]),
        lambda: reader.import_traces(export),
        lambda: reader.create_experiment("new"),
        lambda: reader.get_or_create_experiment("new"),
    ]
    for call in refused:
        with pytest.raises(StorageError, match="was opened read-only; it cannot be changed"):
            call()
    assert reader.get_or_create_experiment(existing).name == existing  # reading is allowed
    with pytest.raises(td.TagError):  # a bad argument is still reported as such
        reader.set_trace_tag(some, "", 1)
    assert fixed.count_traces() == 12
    assert (fixed.get_trace(some).info, fixed.tag_history(some), fixed.exclusive_tag_keys()) == (
        before
    )
    assert fixed.search_experiments() == experiments


def test_the_documented_tables_exist_with_their_columns(fixed: Any) -> None:
    from traceduck.store.duckdb._schema import SQL_SURFACE

    for table, columns in SQL_SURFACE.items():
        got = fixed.sql(f"SELECT * FROM {table} LIMIT 0").column_names
        assert tuple(got) == columns, table


def test_the_readmes_clickhouse_example_runs(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## Stores: DuckDB and ClickHouse") :]
    code = section[section.index("```python\n") + 10 : section.index("```\n", 20)]
    assert "chdb:///tmp/traceduck-readme" in code
    code = code.replace("/tmp/traceduck-readme", str(tmp_path / "readme"))
    code += "\nprint(store.count_traces(), store.sql('SELECT 1 AS x').to_pylist())\n"
    done = subprocess.run(
        [PYTHON, "-c", code], env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0 [{'x': 1}]"


# -- a real server ----------------------------------------------------------------------------
@pytest.mark.skipif(not SERVER_URL, reason="set TRACEDUCK_TEST_CLICKHOUSE_URL to a server")
def test_a_real_server_over_http() -> None:
    name = parse_store_name(SERVER_URL)
    store = td.TraceStore(SERVER_URL)
    trace_id = write_trace(store, "server-check", {"cost": 4, "env": "prod"})
    assert store.get_trace(trace_id).info.tags == {"cost": 4, "env": "prod"}
    store.set_trace_tag(trace_id, "reviewed", True)
    assert trace_id in [t.info.trace_id for t in store.search_traces("tags.cost > 3", None, None)]
    wrong = f"clickhouse://{name.user or 'default'}:wrong-password@{name.host}:{name.port}/x"
    with pytest.raises(StorageError, match="refused the credentials"):
        td.TraceStore(wrong).count_traces()


# -- stats: the same groups, order and figures on every engine ---------------------------------
@pytest.fixture(params=ENGINES)
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A fresh store of each engine."""
    return td.TraceStore(new_store_name(request.param, tmp_path))


def write_timed(store: Any, specs: list[tuple[dict[str, Any], int]]) -> list[str]:
    """One batch of one-span traces ``(tags, duration in ns)``; their ids."""
    import secrets

    from traceduck.store._records import SpanRows, TraceRow, WriteBatch

    spans, rows, ids = SpanRows(), [], []
    for i, (tags, duration) in enumerate(specs):
        trace, span = secrets.token_hex(16), secrets.token_hex(8)
        start = 1_700_000_000_000_000_000 + i * 1_000
        spans.append((trace, span, None, "job", "UNKNOWN", "OK", None, start, start + duration,
                      duration / 1e6, "INTERNAL", "svc", "{}", None, None, None))  # fmt: skip
        rows.append(TraceRow(trace, "job", "OK", None, start, start + duration, 1, "svc", span,
                             True, True, tags=dict(tags)))  # fmt: skip
        ids.append(trace)
    store.write_batch(WriteBatch(spans, rows))
    return ids


def test_stats_by_names_its_field_as_a_filter_does(empty: Any) -> None:
    """DuckDB read ``--by`` by stripping back-ticks (``tags.`a``b``` grouped nothing,
    ``metadata.`m.n``` also read key m, path n, ``request_metadata.k`` was refused);
    ClickHouse parsed it as a filter field and refused a key a filter must quote
    (``tags.a b``, which the UI sends). Both read it as a filter does now, and what does not
    parse as the key it spells."""
    ids = write_timed(empty, [({"a b": 1, "a`b": "x", "<b>": 2}, 10), ({"a b": 1}, 10), ({}, 10)])
    empty.log_metadata(ids[0], {"m.n": "flat", "x y": 1})
    empty.log_metadata(ids[1], {"m": {"n": "nested"}})

    def groups(by: str) -> list[tuple[Any, int]]:
        return [(g["group"], g["count"]) for g in empty.stats(by=by)]

    assert groups("tags.`a b`") == groups('tag."a b"') == groups("tags.a b") == [(1, 2), (None, 1)]
    assert groups("tags.`a``b`") == groups("tags.a`b") == [(None, 2), ("x", 1)]
    assert groups("TAGS.<b>") == [(None, 2), (2, 1)]
    assert groups("metadata.m.n") == [("flat", 1), ("nested", 1), (None, 1)]
    assert groups("metadata.`m.n`") == [(None, 2), ("flat", 1)]  # the flat key only
    assert groups("request_metadata.m") == [(None, 2), ({"n": "nested"}, 1)]
    assert groups("metadata.x y") == [(None, 2), (1, 1)]
    for by in ("span.name", "tags", "trace.name", "tags.`", "metadata.m..n", "attributes.x y"):
        with pytest.raises(td.FilterError, match="cannot group by"):
            empty.stats(by=by)


def test_stats_groups_of_equal_size_come_in_one_order(empty: Any) -> None:
    """Equal counts were ordered by each engine's JSON text of the value ("10" before "2",
    "true" after "null"): strings, then numbers by size, booleans, lists, objects, JSON
    null, and the traces without the tag last."""
    values = [{"k": v} for v in (True, 10, "b", [1], None, 2, "a", {"x": 1}, False)] + [{}]
    write_timed(empty, [(tags, 1_000) for tags in values])
    rows = empty.stats(by="tags.k")
    assert [g["group"] for g in rows] == ["a", "b", 2, 10, False, True, [1], {"x": 1}, None, None]
    assert [g["count"] for g in rows] == [1] * 10


def test_stats_percentiles_are_the_same_exact_figures_on_every_engine(empty: Any) -> None:
    """DuckDB and ClickHouse interpolate with different float formulas (p95 971.9227648000001
    on one, 971.9227648 on the other): both give the exact interpolation now."""
    import random
    from fractions import Fraction

    rnd = random.Random(14)
    sizes = {"a": 11, "b": 101, "c": 37, "d": 2, "e": 1}
    specs = [({"g": g}, rnd.randrange(1, 10**10)) for g, n in sizes.items() for _ in range(n)]
    write_timed(empty, specs)

    def exact(ns: list[int], q: Fraction) -> float:
        ordered = sorted(Fraction(x, 10**6) for x in ns)
        rank = q * (len(ordered) - 1)
        low = int(rank)
        high = min(low + 1, len(ordered) - 1)
        value = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
        return int(value * 10**8) / 1e8  # a multiple of 0.01 ns, as a float

    for row in empty.stats(by="tags.g"):
        ns = [d for tags, d in specs if tags["g"] == row["group"]]
        assert row["count"] == sizes[row["group"]]
        assert row["p50_ms"] == exact(ns, Fraction(1, 2))
        assert row["p95_ms"] == exact(ns, Fraction(95, 100))
        assert row["p99_ms"] == exact(ns, Fraction(99, 100))
        assert row["max_ms"] == max(ns) / 1e6


# -- spans without attributes, imports without tag history ------------------------------------
def write_export(path: Path, records: list[dict[str, Any]]) -> str:
    """A hand-made JSON Lines export of ``records`` (one-span traces unless they say)."""
    import json

    lines = [json.dumps({"traceduck_export": 1, "tag_keys": []})]
    for i, extra in enumerate(records):
        start = 1_700_000_000_000_000_000 + i * 1_000_000
        span = {"span_id": f"{i + 1:016x}", "name": "job", "start_time_ns": start,
                "end_time_ns": start + 1_000_000, **extra.pop("span", {})}  # fmt: skip
        lines.append(json.dumps({
            "trace_id": f"{i + 1:032x}", "name": "job", "status": "OK",
            "timestamp_ms": start // 1_000_000, "execution_time_ms": 1.0,
            "start_time_ns": start, "end_time_ns": start + 1_000_000, "span_count": 1,
            "has_root": True, "spans": [span], **extra,
        }))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_span_without_attributes_reads_an_empty_object_everywhere(
    empty: Any, tmp_path: Path
) -> None:
    """The exporter and the collector store ``{}`` and ``[]`` for a span without attributes
    or events; an import that left them out stored NULL on DuckDB and ``{}`` on ClickHouse,
    and a batch with None read ``{}`` on DuckDB and failed on ClickHouse ('' is no JSON)."""
    from traceduck.store._records import SpanRows, TraceRow, WriteBatch

    spans = [{}, {"attributes": None, "events": None}, {"attributes": {}, "events": []}]
    empty.import_traces(write_export(tmp_path / "in.jsonl", [{"span": s} for s in spans]))
    batch = SpanRows()
    batch.append(("f" * 32, "f" * 16, None, "job", "UNKNOWN", "OK", None, 1, 2, 1e-6,
                  "INTERNAL", "svc", None, None, None, None))  # fmt: skip
    row = TraceRow("f" * 32, "job", "OK", None, 1, 2, 1, "svc", "f" * 16, True, True)
    empty.write_batch(WriteBatch(batch, [row]))
    table = empty.sql("SELECT attributes, events FROM spans ORDER BY trace_id")
    assert table.to_pylist() == [{"attributes": "{}", "events": "[]"}] * 4
    for t in empty.search_traces(include_spans=True):
        assert (t.spans[0].attributes, t.spans[0].events) == ({}, [])


def test_an_import_sets_the_tags_and_metadata_its_history_does_not_explain(
    empty: Any, tmp_path: Path
) -> None:
    """A hand-made file's tags without tag history had set events on ClickHouse (where the
    history is the current state) and none on DuckDB; the same for metadata without entries.
    On both now, the import sets them, with its own source, after the file's history."""
    set_live = {"ts": "2024-01-01T00:00:00", "key": "env", "new_value": "dev",
                "operation": "set", "source": "live"}  # fmt: skip
    gone = {**set_live, "key": "gone", "new_value": 1}
    path = write_export(tmp_path / "in.jsonl", [
        {"tags": {"env": "prod", "n": 1}},
        {"tags": {"env": "prod"}, "tag_events": [set_live, gone]},
        {"tags": {"env": "dev"}, "tag_events": [set_live], "metadata": {"m": {"a": 1}}},
        {"tags": {'x"y': 1, "p\\q": 2**70}, "metadata": {'m"': 1e300}},
    ])  # fmt: skip
    empty.import_traces(path)

    def history(i: int) -> list[tuple[Any, ...]]:
        return [(e.key, e.old_value, e.new_value, e.operation, e.source)
                for e in empty.tag_history(f"{i:032x}")]  # fmt: skip

    assert history(1) == [("env", None, "prod", "set", "api"), ("n", None, 1, "set", "api")]
    assert history(2) == [
        ("env", None, "dev", "set", "live"), ("gone", None, 1, "set", "live"),
        ("env", "dev", "prod", "update", "api"), ("gone", 1, None, "delete", "api"),
    ]  # fmt: skip
    assert history(3) == [("env", None, "dev", "set", "live")]  # the history explains it
    entries = [(m.key, m.value, m.source) for m in empty.metadata_history(f"{3:032x}")]
    assert entries == [("m", {"a": 1}, "api")]
    assert empty.get_trace(f"{2:032x}").info.tags == {"env": "prod"}
    assert history(4) == [("p\\q", None, 2**70, "set", "api"), ('x"y', None, 1, "set", "api")]
    assert [(m.key, m.value) for m in empty.metadata_history(f"{4:032x}")] == [('m"', 1e300)]
    # the command line's import sets them as the command line
    from click.testing import CliRunner

    from traceduck.cli import main

    engine = "chdb" if type(empty).__name__ == "ClickHouseStore" else "duckdb"
    by_cli = new_store_name(engine, tmp_path)
    done = CliRunner().invoke(main, ["import", path, "--db", by_cli])
    assert done.exit_code == 0, done.output
    assert [e.source for e in td.TraceStore(by_cli).tag_history(f"{1:032x}")] == ["cli", "cli"]
    # an export of what was imported carries the history, and importing it adds nothing
    again = td.TraceStore(new_store_name(engine, tmp_path))
    empty.export_traces(str(tmp_path / "out.jsonl"))
    again.import_traces(str(tmp_path / "out.jsonl"))
    for i in (1, 2, 3, 4):
        assert [e.source for e in again.tag_history(f"{i:032x}")] == [
            e.source for e in empty.tag_history(f"{i:032x}")
        ]


# -- the read API: tags in the order they were set, one table schema ---------------------------
def test_tags_read_in_the_order_they_were_set_on_every_engine(empty: Any) -> None:
    """DuckDB keeps a trace's tags as a dict does (an update keeps a key's place, a key
    deleted and set again comes last); ClickHouse sorted them by key, so get_trace, search
    and ``--json`` printed another order."""
    (tid,) = write_timed(empty, [({"z": 1, "a": 2, "m": 3}, 1_000)])
    empty.set_trace_tag(tid, "b", 1)
    empty.delete_trace_tag(tid, "z")
    empty.set_trace_tag(tid, "z", 5)
    empty.set_trace_tag(tid, "a", 9)
    empty.set_trace_tag(tid, "a", 10, append=True)
    empty.set_trace_tags(f"trace_id = '{tid}'", {"c": 1, "0": 2})
    empty.log_metadata(tid, {"y": 1, "b": 2})
    empty.log_metadata(tid, {"a": 1, "y": 3})
    keys = ["a", "m", "b", "z", "c", "0"]
    assert list(empty.get_trace(tid[:10]).info.tags) == keys
    assert list(empty.search_traces()[0].info.tags) == keys
    for size in (10, None):  # a page, and every match (another query on ClickHouse)
        table = empty.search_traces(return_type="arrow", max_results=size)
        assert table["tags"].to_pylist() == ['{"a":[9,10],"m":3,"b":1,"z":5,"c":1,"0":2}']
        assert table["metadata"].to_pylist() == ['{"y":3,"b":2,"a":1}']


def test_search_tables_have_one_schema_on_every_engine(empty: Any) -> None:
    """span_count was int32 on DuckDB and int64 on ClickHouse in Arrow and pandas."""
    write_timed(empty, [({"k": 1}, 1_000)])
    for size in (10, None):
        table = empty.search_traces(return_type="arrow", max_results=size)
        assert table.schema.field("span_count").type == "int64"
        assert table.schema.field("timestamp_ms").type == "int64"
        assert table.schema.field("execution_time_ms").type == "double"
        assert {table.schema.field(c).type for c in ("trace_id", "tags", "experiment")} == {
            "string"
        }
    frame = empty.search_traces(return_type="pandas")
    assert str(frame["span_count"].dtype) == "int64"


def test_a_bad_regular_expression_is_the_same_error_on_every_engine(empty: Any) -> None:
    """ClickHouse's message repeated the pattern (``(, error: missing ): (``)."""
    write_timed(empty, [({"k": "x"}, 1_000)])
    with pytest.raises(td.FilterError) as info:
        empty.count_traces("tags.k RLIKE '('")
    assert str(info.value).splitlines()[0] == (
        "invalid regular expression: missing ): ( (at position 13)"
    )
