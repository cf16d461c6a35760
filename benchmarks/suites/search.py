"""Search and tag-after-the-fact over generated stores, against hand-written DuckDB SQL and MLflow.

1. On stores of 100,000 and 1,000,000 traces (``_stores``; 10,000 and 100,000 with --quick),
   each query of issue 3 through ``TraceStore.search_traces`` and the same query hand-written in
   plain DuckDB SQL on a second connection to the same file, interleaved round-robin; p50 of
   each and the median of the paired ratios. Both must return the same traces in the same order.
2. On the largest store: ``set_trace_tag``, a bulk ``set_trace_tags`` of 1,000 traces,
   ``get_trace`` and ``log_metadata`` on a finished trace, each beside the plain SQL that does
   the least a user could write for the same change (info: the gates are on traceduck alone).
3. MLflow's ``search_traces`` (SQLite store, ``include_spans=False``) on 10,000 traces of the same
   shape, against traceduck's on a 10,000-trace store holding the same traces.
4. The same traces in ClickHouse (chdb, ``_chdb_stores``): each search through
   ``TraceStore('chdb://...')`` beside DuckDB's and against the same query hand-written in
   ClickHouse SQL on the same chdb store (same columns, same order, same rows); on the largest
   store ``set_trace_tag``, a bulk tag of 1,000 traces, ``log_metadata`` and ``get_trace`` on
   chdb beside DuckDB.

The stores are copies of the cached ones, so the tag and metadata writes change nothing shared.
"""

from __future__ import annotations

import gc
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _stores
from ._common import (
    Config,
    Section,
    SuiteResult,
    Target,
    Variant,
    in_fresh_process,
    median,
    paired_ratio,
    progress,
    round_robin,
)

NAME = "search"
TITLE = "Search and tags over generated stores"
SEARCH_GATE = 1.5  # issue 3: <= 1.5x the same query hand-written in DuckDB SQL
MLFLOW_GATE = 50.0  # issue 3: >= 50x faster than MLflow's search_traces
TAG_GATE_MS = 2.0  # set_trace_tag, log_metadata
BULK_GATE_MS = 50.0  # a bulk tag of 1,000 traces
BULK_TRACES = 1_000
SIZES = (100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
MLFLOW_TRACES = 10_000
QUICK_MLFLOW_TRACES = 1_000
IDLE_S = 60.0  # keep the store's connection warm for the whole run (see the notes)

# The columns of a search result row (traceduck's TraceInfo), for the hand-written SQL too.
INFO_COLUMNS = (
    "trace_id, name, status, timestamp_ms, execution_time_ms, span_count, tags, metadata, "
    "service_name, request_preview, response_preview, status_message"
)
ORDER = "ORDER BY timestamp_ms DESC, trace_id"


@dataclass(frozen=True)
class Query:
    key: str
    label: str
    filter: str
    where: str  # the hand-written SQL's WHERE clause
    params: tuple[Any, ...]
    fetch_all: bool = False  # every match as Arrow, else the newest 100 as a list of traces
    mlflow: str | None = None  # the same filter in MLflow's language (None: not expressible)


QUERIES = (
    Query(
        "env",
        "`tags.env = 'prod'`, newest 100",
        "tags.env = 'prod'",
        "tags->>'$.env' = ?",
        ("prod",),
        mlflow="tags.env = 'prod'",
    ),
    Query(
        "errors",
        "`status = 'ERROR' AND execution_time_ms > 500`, newest 100",
        "status = 'ERROR' AND execution_time_ms > 500",
        "status = ? AND execution_time_ms > ?",
        ("ERROR", 500),
        mlflow="trace.status = 'ERROR' AND trace.execution_time_ms > 500",
    ),
    Query(
        "user",
        "`tags.user_id = 'user_42'`, newest 100",
        "tags.user_id = 'user_42'",
        "tags->>'$.user_id' = ?",
        ("user_42",),
        mlflow="tags.user_id = 'user_42'",
    ),
    Query(
        "or",
        "`tags.user_id = 'user_7' OR tags.cost > 9.9 OR status = 'ERROR'`, newest 100",
        "tags.user_id = 'user_7' OR tags.cost > 9.9 OR status = 'ERROR'",
        "tags->>'$.user_id' = ? OR TRY_CAST(tags->>'$.cost' AS DOUBLE) > ? OR status = ?",
        ("user_7", 9.9, "ERROR"),
    ),
    Query(
        "all",
        "every match of `tags.env = 'staging'` (~33%), as Arrow",
        "tags.env = 'staging'",
        "tags->>'$.env' = ?",
        ("staging",),
        fetch_all=True,
        mlflow="tags.env = 'staging'",
    ),
)


def run(cfg: Config) -> SuiteResult:
    started = time.perf_counter()
    sizes = QUICK_SIZES if cfg.quick else SIZES
    reps = dict.fromkeys(sizes, 3) if cfg.quick else {100_000: 9, 1_000_000: 5}
    tag_reps = 5 if cfg.quick else 20
    mlflow_traces = QUICK_MLFLOW_TRACES if cfg.quick else MLFLOW_TRACES

    search_rows: list[list[str]] = []
    tag_rows: list[list[str]] = []
    targets: list[Target] = []
    for n in sizes:
        progress(f"[{NAME}] store of {n:,} traces")
        path = _stores.copy_store(n, cfg.workdir)
        rows, gates = _search_section(path, n, reps[n])
        search_rows += rows
        targets += gates
        if n == sizes[-1]:
            rows, gates = _tag_section(path, n, tag_reps)
            tag_rows += rows
            targets += gates
        _release(path)

    sections = [
        Section(
            "Search: `TraceStore.search_traces` vs the same query in plain DuckDB SQL",
            [
                "store",
                "query",
                "matches",
                "traceduck p50 ms",
                "hand-written SQL p50 ms",
                "× SQL (paired)",
                "same rows",
            ],
            search_rows,
            [
                "Stores generated by `benchmarks/suites/_stores.py` and cached: tags env ∈ "
                "{prod, staging, dev}, user_id among 10,000, a numeric cost; 1% "
                "ERROR; log-normal latencies (median 150 ms); a root and 1-3 child spans; "
                "metadata with tag/metadata history rows. Each run uses a fresh copy.",
                "Newest 100: `search_traces(filter)` (a list of `Trace`, default order newest "
                "first) against `SELECT <the TraceInfo columns> FROM traces WHERE <filter> "
                f"{ORDER} LIMIT 100` fetched as tuples. Every match: `search_traces(filter, "
                "max_results=None, return_type='arrow')` against the same SELECT without LIMIT "
                "fetched as an Arrow table.",
                "Hand-written SQL: what a DuckDB user would type (`tags->>'$.env' = ?`, "
                "`TRY_CAST(tags->>'$.cost' AS DOUBLE) > ?`), bound parameters, on its own "
                "connection to the same file in the same process (so both share DuckDB's cache).",
                "Round-robin, rotating start; p50 = median wall time per call; × SQL = median "
                "over rounds of traceduck / SQL in the same round. same rows: the trace ids "
                "of both, in order, are equal.",
                f"The store's idle release (0.25 s by default) is raised to {IDLE_S:.0f} s for "
                "this suite, so every call runs on a warm connection, as in a notebook or the UI.",
            ],
        ),
        Section(
            f"Tags, metadata and reads after the fact ({sizes[-1]:,}-trace store)",
            ["operation", "traceduck p50 ms", "p90 ms", "plain SQL p50 ms", "notes"],
            tag_rows,
            [
                "Each call on another trace (a random sample of the store), round-robin with "
                "the plain-SQL reference, which writes different traces of the same store.",
                "Plain SQL (each row's notes say what it runs): for `set_trace_tag` and "
                "`log_metadata` the same writes traceduck makes (the history row included) in "
                "one transaction, without its checks or exclusive-tag handling; for the bulk "
                "tag one `UPDATE` and no history rows (info only; the gates are on traceduck's "
                "own figures).",
            ],
        ),
    ]
    chdb_sections, chdb_targets = _chdb_sections(cfg, sizes)
    sections += chdb_sections
    targets += chdb_targets
    mlflow_section, mlflow_targets = _mlflow_section(cfg, mlflow_traces)
    sections.append(mlflow_section)
    targets += mlflow_targets
    return SuiteResult(NAME, TITLE, time.perf_counter() - started, sections, targets)


def stores(quick: bool) -> tuple[list[int], list[int]]:
    """The generated stores this suite reads: (traceduck sizes, MLflow sizes)."""
    if quick:
        return [*QUICK_SIZES, QUICK_MLFLOW_TRACES], [QUICK_MLFLOW_TRACES]
    return [*SIZES, MLFLOW_TRACES], [MLFLOW_TRACES]


# -- helpers ----------------------------------------------------------------------------------


def _open(path: Path) -> tuple[Any, Any]:
    """(traceduck.TraceStore, a plain DuckDB connection) on the same file."""
    import duckdb

    import traceduck
    from traceduck.store.duckdb._databases import get_database

    store = traceduck.TraceStore(path)
    get_database(str(path)).idle_s = IDLE_S
    return store, duckdb.connect(str(path))


def _release(path: Path) -> None:
    """Close the store so the next one does not share the process's memory with it."""
    from traceduck.store.duckdb._databases import get_database

    get_database(str(path)).shutdown()


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.2f}" if ns < 1e8 else f"{ns / 1e6:.0f}"


def _times(ratio: float) -> str:
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.0f}×"


def _variant(key: str, label: str, call: Callable[[], object]) -> Variant:
    def batch(n: int) -> None:
        for _ in range(n):
            call()

    return Variant(key=key, label=label, batch=batch, ops=1)


def _rounds(variants: list[Variant], reps: int, tag: str) -> None:
    """``round_robin`` with the heap frozen first: its per-sample ``gc.collect()`` then skips
    the long-lived objects (DuckDB, pyarrow, MLflow's SQLAlchemy), which would otherwise cost
    more than the calls timed here."""
    gc.collect()
    gc.freeze()
    try:
        round_robin(variants, reps, tag)
    finally:
        gc.unfreeze()


def _p50(variant: Variant) -> float:
    return median([s.wall_ns for s in variant.samples])


def _p90(variant: Variant) -> float:
    values = sorted(s.wall_ns for s in variant.samples)
    return values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]


# -- 1. search --------------------------------------------------------------------------------


def _td_search(store: Any, q: Query) -> Callable[[], Any]:
    if q.fetch_all:
        return lambda: store.search_traces(q.filter, max_results=None, return_type="arrow")
    return lambda: store.search_traces(q.filter)


def _sql_search(con: Any, q: Query) -> Callable[[], Any]:
    base = f"SELECT {INFO_COLUMNS} FROM traces WHERE {q.where} {ORDER}"
    if q.fetch_all:
        # DuckDB's advice for Arrow output: a relation, not a DB-API result (one copy fewer).
        return lambda: con.sql(base, params=list(q.params)).to_arrow_table()
    return lambda: con.execute(base + " LIMIT 100", list(q.params)).fetchall()


def _ids(result: Any) -> list[str]:
    if hasattr(result, "column_names"):  # an Arrow table
        return [str(x) for x in result.column("trace_id").to_pylist()]
    return [t.info.trace_id if hasattr(t, "info") else t[0] for t in result]


def _search_section(path: Path, n: int, reps: int) -> tuple[list[list[str]], list[Target]]:
    store, con = _open(path)
    rows: list[list[str]] = []
    targets: list[Target] = []
    try:
        for q in QUERIES:
            td_call, sql_call = _td_search(store, q), _sql_search(con, q)
            td_ids, sql_ids = _ids(td_call()), _ids(sql_call())  # also the warm-up
            same = td_ids == sql_ids
            td = _variant("td", "traceduck", td_call)
            sql = _variant("sql", "SQL", sql_call)
            _rounds([td, sql], reps, f"{NAME} {n:,} {q.key}")
            ratio = paired_ratio(td, sql)
            count = len(td_ids)
            matches = f"{count:,}" if q.fetch_all or count < 100 else "100 (of more)"
            rows.append(
                [
                    f"{n:,}",
                    q.label,
                    matches,
                    _ms(_p50(td)),
                    _ms(_p50(sql)),
                    f"{ratio:.2f}×",
                    "yes" if same else f"**NO** ({len(td_ids)} vs {len(sql_ids)} rows)",
                ]
            )
            targets.append(
                Target(
                    f"search {q.label} vs hand-written SQL, {n:,} traces",
                    f"{ratio:.2f}× ({_ms(_p50(td))} vs {_ms(_p50(sql))} ms)"
                    + ("" if same else "; **results differ**"),
                    f"≤ {SEARCH_GATE}×",
                    ratio <= SEARCH_GATE and same,
                )
            )
    finally:
        con.close()
    return rows, targets


# -- 2. tags, metadata, get_trace ---------------------------------------------------------------


def _tag_section(path: Path, n: int, reps: int) -> tuple[list[list[str]], list[Target]]:
    store, con = _open(path)
    try:
        size = 8 * reps + 16
        query = f"SELECT trace_id FROM traces USING SAMPLE reservoir({size} ROWS) REPEATABLE (7)"
        sample = [r[0] for r in con.execute(query).fetchall()]
        random.Random(7).shuffle(sample)
        ids: Iterator[str] = iter(sample)

        def take() -> str:
            return next(ids)

        counter = iter(range(10**9))
        # Bulk windows: traces are spread evenly in time, so a window of 1,000 traces' width
        # holds about 1,000; every call takes a fresh window (first tags, not no-op rewrites).
        lo, hi = con.execute("SELECT min(timestamp_ms), max(timestamp_ms) FROM traces").fetchone()
        width = (hi - lo) * BULK_TRACES // n
        windows = iter(range(lo, hi - width, width))
        bulk_counts: list[int] = []

        def window() -> tuple[int, int]:
            start = next(windows)
            return start, start + width

        def td_bulk() -> None:
            a, b = window()
            flt = f"timestamp_ms >= {a} AND timestamp_ms < {b}"
            bulk_counts.append(store.set_trace_tags(flt, {"batch": next(counter)}))

        def sql_bulk() -> None:
            a, b = window()
            con.execute(
                "UPDATE traces SET tags = json_merge_patch(tags, json_object('batch', ?)) "
                "WHERE timestamp_ms >= ? AND timestamp_ms < ?",
                [next(counter), a, b],
            )

        def sql_tag() -> None:  # the same work: read the tag, set it, one history row
            tid, value = take(), next(counter)
            con.execute("BEGIN")
            old = con.execute(
                "SELECT tags->'$.reviewed' FROM traces WHERE trace_id = ?", [tid]
            ).fetchone()[0]
            con.execute(
                "UPDATE traces SET tags = json_merge_patch(tags, json_object('reviewed', ?)) "
                "WHERE trace_id = ?",
                [value, tid],
            )
            con.execute(
                "INSERT INTO tag_events (ts, trace_id, key, old_value, new_value, operation, "
                "source) VALUES (now(), ?, 'reviewed', ?, ?, 'set', 'api')",
                [tid, old, str(value)],
            )
            con.execute("COMMIT")

        def sql_metadata() -> None:
            tid = take()
            con.execute("BEGIN")
            con.execute(
                "INSERT INTO trace_metadata (ts, trace_id, key, value, source) "
                "VALUES (now(), ?, 'score', ?, 'api')",
                [tid, "0.5"],
            )
            con.execute(
                "UPDATE traces SET metadata = json_merge_patch(metadata, '{\"score\": 0.5}') "
                "WHERE trace_id = ?",
                [tid],
            )
            con.execute("COMMIT")

        def sql_get() -> None:
            tid = take()
            con.execute(f"SELECT {INFO_COLUMNS} FROM traces WHERE trace_id = ?", [tid]).fetchall()
            con.execute("SELECT * FROM spans WHERE trace_id = ?", [tid]).fetchall()

        ops: list[tuple[str, Variant, Variant, str]] = [
            (
                "`set_trace_tag(id, 'reviewed', i)`",
                _variant(
                    "tag", "td", lambda: store.set_trace_tag(take(), "reviewed", next(counter))
                ),
                _variant("tag_sql", "sql", sql_tag),
                "plain SQL doing the same work in one transaction: read the old value, "
                "`UPDATE traces SET tags = json_merge_patch(...)`, INSERT the history row",
            ),
            (
                f"`set_trace_tags(<time window of ~{BULK_TRACES:,} traces>, {{'batch': i}})`",
                _variant("bulk", "td", td_bulk),
                _variant("bulk_sql", "sql", sql_bulk),
                "plain SQL: one `UPDATE ... WHERE timestamp_ms >= ? AND timestamp_ms < ?`",
            ),
            (
                "`log_metadata(id, {'score': 0.5})` on a finished trace",
                _variant("meta", "td", lambda: store.log_metadata(take(), {"score": 0.5})),
                _variant("meta_sql", "sql", sql_metadata),
                "plain SQL: INSERT the entry + UPDATE `traces.metadata`, in one transaction",
            ),
            (
                "`get_trace(id)` (the trace and its spans)",
                _variant("get", "td", lambda: store.get_trace(take())),
                _variant("get_sql", "sql", sql_get),
                "plain SQL: the trace row by id, then `SELECT * FROM spans WHERE trace_id = ?`",
            ),
        ]
        for _, td, sql, _ in ops:  # warm-up, then the timed rounds
            td.batch(1)
            sql.batch(1)
        bulk_counts.clear()
        for _, td, sql, _ in ops:
            _rounds([td, sql], reps, f"{NAME} {n:,} {td.key}")
        rows = [
            [label, _ms(_p50(td)), _ms(_p90(td)), _ms(_p50(sql)), note]
            for label, td, sql, note in ops
        ]
        bulk = f"{min(bulk_counts):,}–{max(bulk_counts):,}" if bulk_counts else "?"
        rows[1][4] += f"; traces tagged per call: {bulk}"
    finally:
        con.close()

    p50 = {v.key: _p50(v) / 1e6 for _, td, sql, _ in ops for v in (td, sql)}
    where = f"{n:,} traces"

    def beside_sql(key: str) -> str:
        return f"{p50[key]:.2f} ms (the same work in plain SQL: {p50[key + '_sql']:.2f} ms)"

    targets = [
        Target(f"`set_trace_tag` p50, {where}", beside_sql("tag"), f"≤ {TAG_GATE_MS:g} ms",
               p50["tag"] <= TAG_GATE_MS),
        Target(f"bulk tag of ~{BULK_TRACES:,} matching traces p50, {where}",
               f"{p50['bulk']:.1f} ms", f"≤ {BULK_GATE_MS:g} ms", p50["bulk"] <= BULK_GATE_MS),
        Target(f"`log_metadata` after the fact p50, {where}", beside_sql("meta"),
               f"≤ {TAG_GATE_MS:g} ms", p50["meta"] <= TAG_GATE_MS),
        Target(f"`get_trace` p50, {where}", f"{p50['get']:.2f} ms", "info", None),
    ]  # fmt: skip
    return rows, targets


# -- 3. MLflow --------------------------------------------------------------------------------


def _mlflow_section(cfg: Config, n: int) -> tuple[Section, list[Target]]:
    title = f"traceduck vs MLflow `search_traces`, {n:,} traces of the same shape"
    headers = [
        "query",
        "matches",
        "traceduck p50 ms",
        "MLflow p50 ms",
        "MLflow / traceduck",
        "same traces",
    ]
    try:
        import mlflow
    except Exception as exc:  # not installed, or an install that does not import
        note = (
            f"No MLflow rows: `import mlflow` failed ({type(exc).__name__}: {exc}). "
            "`pip install mlflow` (the full package, for its SQLite store) adds them."
        )
        skipped = Target("search vs MLflow `search_traces`", "mlflow unavailable", "≥ 50×", None)
        return Section(title, headers, [], [note]), [skipped]
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    progress(f"[{NAME}] MLflow store of {n:,} traces")
    ml_db, ml_count = _stores.copy_mlflow_store(n, cfg.workdir)
    client, experiment = _stores.mlflow_client(ml_db)
    path = _stores.copy_store(n, cfg.workdir)
    store, con = _open(path)
    con.close()
    reps = 3 if cfg.quick else 5
    rows: list[list[str]] = []
    targets: list[Target] = []
    try:
        for q in QUERIES:
            if q.mlflow is None:
                rows.append([q.label, "–", "–", "–", "–", "not expressible: MLflow's filter "
                             "language has no OR and compares tags as strings"])  # fmt: skip
                continue
            limit = 50_000 if q.fetch_all else 100

            def ml_call(q: Query = q, limit: int = limit) -> Any:
                return client.search_traces(
                    locations=[experiment], filter_string=q.mlflow, max_results=limit,
                    include_spans=False,
                )  # fmt: skip

            td_call = _td_search(store, q)
            td_ids = _ids(td_call())
            ml_ids = [t.info.trace_id.removeprefix("tr-") for t in ml_call()]
            same = td_ids == ml_ids if ml_count == n else None
            td = _variant("td", "traceduck", td_call)
            ml = _variant("mlflow", "MLflow", ml_call)
            _rounds([td, ml], reps, f"{NAME} mlflow {q.key}")
            ratio = paired_ratio(ml, td)
            rows.append(
                [
                    q.label,
                    f"{len(td_ids):,}",
                    _ms(_p50(td)),
                    _ms(_p50(ml)),
                    _times(ratio),
                    "yes" if same else ("**NO**" if same is False else "– (MLflow store partial)"),
                ]
            )
            targets.append(
                Target(
                    f"search {q.label}: MLflow `search_traces` / traceduck, {n:,} traces",
                    f"{_times(ratio)} ({_ms(_p50(ml))} vs {_ms(_p50(td))} ms)",
                    f"≥ {MLFLOW_GATE:g}×",
                    ratio >= MLFLOW_GATE and same is not False,
                )
            )
    finally:
        _release(path)
    notes = [
        f"MLflow {mlflow.__version__}: `MlflowClient(tracking_uri='sqlite:///...').search_traces("
        "locations=[experiment], filter_string=..., max_results=100 (every match: 50,000), "
        "include_spans=False)` — trace infos with tags and metadata, as traceduck's list "
        "(which loads no spans either). traceduck: the same calls as above, on a "
        f"{n:,}-trace store generated from the same rows.",
        "The MLflow store is written once through MLflow's store API (`start_trace` per trace: "
        "info, tags, metadata; no spans, which these filters do not read) and cached "
        f"(`{_stores.cache_dir().name}/`); MLflow's filter spellings: `trace.status`, "
        "`trace.execution_time_ms`, `tags.<key>`. Tags are strings in MLflow.",
    ]
    if ml_count < n:
        notes.append(
            f"**The MLflow store holds {ml_count:,} of {n:,} traces** (its build ran out of its "
            f"{_stores.MLFLOW_TIME_BOX_S:.0f} s time box; the next run continues it)."
        )
    return Section(title, headers, rows, notes), targets


# -- 4. the same on ClickHouse (chdb) ------------------------------------------------------------

# The hand-written ClickHouse SQL a user who knows the engine's tables would type: the current
# value of a tag is its latest event (argMax by `ord`), read from the typed column.
_TAG_IS = (
    "trace_id IN (SELECT trace_id FROM td_tag_events WHERE kind = 'event' AND key = {k%s:String} "
    "GROUP BY trace_id HAVING argMax(value_type = '%s' AND %s, ord))"
)
CH_WHERE = {
    "env": (_TAG_IS % (0, "string", "value_str = {v0:String}"), {"k0": "env", "v0": "prod"}),
    "errors": ("status = {s:String} AND execution_time_ms > {ms:Int64}", {"s": "ERROR", "ms": 500}),
    "user": (_TAG_IS % (0, "string", "value_str = {v0:String}"),
             {"k0": "user_id", "v0": "user_42"}),
    "or": (
        _TAG_IS % (0, "string", "value_str = {v0:String}") + " OR "
        + _TAG_IS % (1, "number", "value_num > {v1:Float64}") + " OR status = {s:String}",
        {"k0": "user_id", "v0": "user_7", "k1": "cost", "v1": 9.9, "s": "ERROR"},
    ),
    "all": (_TAG_IS % (0, "string", "value_str = {v0:String}"), {"k0": "env", "v0": "staging"}),
}  # fmt: skip
CH_INFO = ", ".join(
    f"t.{c} AS {c}"
    for c in (
        "trace_id", "name", "status", "timestamp_ms", "execution_time_ms", "span_count",
        "service_name", "request_preview", "response_preview", "status_message",
    )
)  # fmt: skip
_DOC = "concat('{{', arrayStringConcat(groupArray(concat(toJSONString(key), ':', v)), ','), '}}')"
_TAGS = (
    f"SELECT trace_id, {_DOC} AS tags FROM (SELECT trace_id, key, argMax(new_value, ord) AS v, "
    "argMax(value_type, ord) AS vt FROM td_tag_events WHERE kind = 'event'{where} "
    "GROUP BY trace_id, key) WHERE vt != '' GROUP BY trace_id"
)
_METADATA = (
    f"SELECT trace_id, {_DOC} AS metadata FROM (SELECT trace_id, key, argMax(value, ord) AS v "
    "FROM td_metadata{where} GROUP BY trace_id, key) GROUP BY trace_id"
)


def _ch_sql(q: Query) -> str:
    """The whole search as one ClickHouse query: the matching trace rows with their tags and
    metadata as JSON text, newest first (the newest 100: their ids once, as a scalar)."""
    where, _ = CH_WHERE[q.key]
    tail = "ORDER BY t.timestamp_ms DESC, t.trace_id"
    if q.fetch_all:
        return (
            f"SELECT {CH_INFO}, g.tags, m.metadata FROM td_traces AS t FINAL "
            f"LEFT JOIN ({_TAGS.format(where='')}) AS g ON g.trace_id = t.trace_id "
            f"LEFT JOIN ({_METADATA.format(where='')}) AS m ON m.trace_id = t.trace_id "
            f"WHERE {where.replace('trace_id IN', 't.trace_id IN')} {tail}"
        )
    return (
        "WITH (SELECT groupArray(trace_id) FROM (SELECT trace_id FROM td_traces FINAL "
        f"WHERE {where} ORDER BY timestamp_ms DESC, trace_id LIMIT 100)) AS ids "
        f"SELECT {CH_INFO}, g.tags, m.metadata "
        "FROM (SELECT * FROM td_traces FINAL WHERE trace_id IN (SELECT arrayJoin(ids))) AS t "
        f"LEFT JOIN ({_TAGS.format(where=' AND trace_id IN (SELECT arrayJoin(ids))')}) AS g "
        "ON g.trace_id = t.trace_id "
        f"LEFT JOIN ({_METADATA.format(where=' WHERE trace_id IN (SELECT arrayJoin(ids))')}) AS m "
        f"ON m.trace_id = t.trace_id {tail}"
    )


def _ch_search(client: Any, q: Query) -> Callable[[], Any]:
    query, params = _ch_sql(q), CH_WHERE[q.key][1]
    if q.fetch_all:
        return lambda: client.query_arrow(query, parameters=params)
    return lambda: client.query(query, parameters=params).result_rows


def chdb_available() -> str | None:
    """Why the ClickHouse rows cannot run here, or None."""
    import importlib.util

    for module in ("chdb", "clickhouse_connect"):
        if importlib.util.find_spec(module) is None:
            return f"`{module}` is not installed (`pip install -e '.[clickhouse]'`)"
    return None


def _chdb_sections(cfg: Config, sizes: tuple[int, ...]) -> tuple[list[Section], list[Target]]:
    from . import _chdb_stores

    why = chdb_available()
    title = "Search on ClickHouse (chdb) beside DuckDB, and against hand-written ClickHouse SQL"
    if why:
        skipped = Target("search on chdb", "chdb unavailable", f"≤ {SEARCH_GATE}×", None)
        return [Section(title, [], [], [f"No ClickHouse rows: {why}."])], [skipped]
    import traceduck

    progress(f"[{NAME}] chdb stores of {', '.join(f'{n:,}' for n in sizes)} traces")
    built = _chdb_stores.ensure_chdb_stores(list(sizes))
    reps = 3 if cfg.quick else 5
    rows: list[list[str]] = []
    tag_rows: list[list[str]] = []
    targets: list[Target] = []
    for n in sizes:
        url = _chdb_stores.copy_chdb_stores(cfg.workdir, n)
        path = cfg.workdir / f"traces-{n}.duckdb"
        if not path.exists():
            path = _stores.copy_store(n, cfg.workdir)
        duck, con = _open(path)
        con.close()
        chdb = traceduck.TraceStore(url)
        client = chdb.conn.client  # the same engine, through clickhouse-connect directly
        for q in QUERIES:
            calls = {
                "duck": _td_search(duck, q),
                "chdb": _td_search(chdb, q),
                "ch_sql": _ch_search(client, q),
            }
            ids = {k: _ids(call()) for k, call in calls.items()}  # also the warm-up
            same = ids["chdb"] == ids["ch_sql"] == ids["duck"]
            variants = {k: _variant(k, k, call) for k, call in calls.items()}
            _rounds(list(variants.values()), reps, f"{NAME} chdb {n:,} {q.key}")
            v_sql = paired_ratio(variants["chdb"], variants["ch_sql"])
            v_duck = paired_ratio(variants["chdb"], variants["duck"])
            p50 = {k: _ms(_p50(v)) for k, v in variants.items()}
            rows.append(
                [f"{n:,}", q.label, p50["duck"], p50["chdb"], p50["ch_sql"], _times(v_duck),
                 f"{v_sql:.2f}×", "yes" if same else "**NO** " + _differs(ids)]
            )  # fmt: skip
            targets.append(_chdb_sql_target(q.label, n, v_sql, p50, same))
            targets.append(
                Target(
                    f"search {q.label}: chdb / DuckDB, {n:,} traces",
                    f"{_times(v_duck)} ({p50['chdb']} vs {p50['duck']} ms)",
                    "info",
                    None,
                )
            )
        if n == sizes[-1]:
            tag_rows, tag_targets = _chdb_tags(duck, chdb, path, n, 5 if cfg.quick else 15)
            targets += tag_targets
        _release(path)
    large_edits: list[tuple[int, list[list[str]]]] = []
    for n in cfg.chdb_traces:  # alone: chdb opens one directory per process
        progress(f"[{NAME}] chdb store of {n:,} traces (in a fresh process)")
        built.update(_chdb_stores.ensure_chdb_stores([n]))
        alone, gates, edits = in_fresh_process(_chdb_alone, str(cfg.workdir), n, LARGE_REPS)
        rows += alone
        targets += gates
        large_edits.append((n, edits))
    build = "; ".join(f"{n:,} traces: {_build_note(b)}" for n, b in built.items())
    notes = [
        "The same generated traces as the DuckDB stores (`_stores.generate_chunk`), as the "
        "engine's batch writer stores them (`WriteBatch`es of "
        f"{_chdb_stores.BATCH:,} traces: spans, live tags, metadata, as the exporter and the "
        "collector write them; inserted from Arrow by `_chdb_stores.write_chunk`, which "
        "tests/test_bench_chdb_store.py checks against the writer), then every table merged "
        f"(`OPTIMIZE ... FINAL`, a store at rest); cached (`{_chdb_stores.cache_path().name}/`). "
        f"Build time when the cache was made: {build}.",
        "DuckDB and chdb: `TraceStore(path)` and `TraceStore('chdb://...')`, the same calls as "
        "above, interleaved round-robin in one process with the hand-written SQL. × DuckDB = "
        "median over rounds of chdb / DuckDB in the same round.",
        "Hand-written ClickHouse SQL (`suites/search.py`, `_ch_sql`): one query returning the "
        "same columns (tags and metadata as JSON text), newest first: the filter as a semi-join "
        "on the latest tag event per trace (`argMax(value_type = 'string' AND value_str = ?, "
        "ord)`), the newest 100 ids computed once (a scalar `WITH`), their tags and metadata "
        "joined; every match: the tag and metadata documents of every trace joined to the "
        "matching rows. Run on the same engine through clickhouse-connect "
        "(`store.conn.client`). same rows: DuckDB, chdb and the SQL give the same trace ids in "
        "the same order.",
    ]
    if cfg.chdb_traces:
        notes.append(
            f"{', '.join(f'{n:,}' for n in cfg.chdb_traces)} traces (`--chdb-traces`): chdb "
            "only (no DuckDB store of that size; same rows: chdb and the SQL), on a copy of "
            f"the cache hard-linked, {LARGE_REPS} rounds, in a fresh process."
        )
    headers = ["store", "query", "DuckDB p50 ms", "chdb p50 ms",
               "hand-written ClickHouse SQL p50 ms", "chdb × DuckDB", "chdb × SQL (paired)",
               "same rows"]  # fmt: skip
    sections = [Section(title, headers, rows, notes)]
    if tag_rows:
        sections.append(
            Section(
                f"Tags and metadata after the fact on chdb beside DuckDB ({sizes[-1]:,} traces)",
                ["operation", "DuckDB p50 ms", "chdb p50 ms", "chdb p90 ms", "chdb × DuckDB"],
                tag_rows,
                [
                    "The same calls on both stores, round-robin, each call on another trace "
                    "(the same sample on both: the stores hold the same traces). The bulk tag "
                    "tags a time window of ~1,000 traces; a fresh window per call.",
                    "On ClickHouse a tag edit is one insert of events (no transaction); it "
                    "first reads the trace's current tags and the exclusive keys, a few "
                    "round trips of a few ms each.",
                ],
            )
        )
    for n, edits in large_edits:
        sections.append(
            Section(
                f"Tags and metadata after the fact on chdb alone ({n:,} traces)",
                ["operation", "chdb p50 ms", "chdb p90 ms"],
                edits,
                [
                    "The calls of the table above on chdb alone (no DuckDB store of this "
                    f"size), {LARGE_EDIT_REPS} rounds after the searches, each call on another "
                    "trace of a sample (`ORDER BY cityHash64(trace_id, 11)`), on the same "
                    "hard-linked copy: an edit inserts new parts and changes no cached file."
                ],
            )
        )
    return sections, targets


def _build_note(built: dict[str, Any]) -> str:
    note = f"{built['seconds']:.0f} s"
    if "bytes" in built:  # recorded by the Arrow build
        note += f" + {built['merge_seconds']:.0f} s merging, {built['bytes'] / 1e9:.2f} GB"
    return note


LARGE_REPS = 3  # rounds on the stores of --chdb-traces (every match of 10M: ~45 s a call)
LARGE_EDIT_REPS = 15  # as on the largest DuckDB store


def _chdb_alone(
    workdir: str, n: int, reps: int
) -> tuple[list[list[str]], list[Target], list[list[str]]]:
    """In a fresh process: the chdb searches on the store of ``n`` traces, traceduck against
    the hand-written ClickHouse SQL (the rows of ``_chdb_sections``' table, without DuckDB),
    then the edits after the fact (their rows). The copy is hard-linked to the cache: the
    edits only insert, which writes new parts and changes no file of the cache's."""
    import traceduck

    from . import _chdb_stores

    url = _chdb_stores.copy_chdb_stores(Path(workdir), n, linked=True)
    chdb = traceduck.TraceStore(url, read_only=True)
    client = chdb.conn.client
    rows: list[list[str]] = []
    targets: list[Target] = []
    for q in QUERIES:
        calls = {"chdb": _td_search(chdb, q), "ch_sql": _ch_search(client, q)}
        ids = {k: _ids(call()) for k, call in calls.items()}  # also the warm-up
        same = ids["chdb"] == ids["ch_sql"]
        variants = {k: _variant(k, k, call) for k, call in calls.items()}
        _rounds(list(variants.values()), reps, f"{NAME} chdb {n:,} {q.key}")
        v_sql = paired_ratio(variants["chdb"], variants["ch_sql"])
        p50 = {k: _ms(_p50(v)) for k, v in variants.items()}
        rows.append(
            [f"{n:,}", q.label, "—", p50["chdb"], p50["ch_sql"], "—", f"{v_sql:.2f}×",
             "yes" if same else "**NO** " + _differs(ids)]
        )  # fmt: skip
        targets.append(_chdb_sql_target(q.label, n, v_sql, p50, same))
    edits, gates = _chdb_edits_alone(traceduck.TraceStore(url), n, LARGE_EDIT_REPS)
    return rows, targets + gates, edits


def _differs(ids: dict[str, list[str]]) -> str:
    return "(" + ", ".join(f"{k} {len(v)} rows" for k, v in ids.items()) + ")"


EDIT_LABELS = {
    "tag": "`set_trace_tag(id, 'reviewed2', i)`",
    "bulk": f"`set_trace_tags(<time window of ~{BULK_TRACES:,} traces>, {{'chbatch': i}})`",
    "meta": "`log_metadata(id, {'score2': 0.5})` on a finished trace",
    "get": "`get_trace(id)` (the trace and its spans)",
}


class _Edits:
    """The edits after the fact, each call on another trace of ``sample`` (the bulk tag on
    another time window of ~BULK_TRACES traces of the store's ``n``, between ``lo`` and
    ``hi``)."""

    def __init__(self, sample: list[str], lo: int, hi: int, n: int) -> None:
        self.sample, self.lo, self.hi = sample, lo, hi
        self.width = (hi - lo) * BULK_TRACES // n
        self.counter = iter(range(10**9))
        self.counts: dict[str, list[int]] = {}  # traces tagged per bulk call, per store

    def ops(self, store: Any, key: str) -> dict[str, Callable[[], object]]:
        ids = iter(self.sample)
        width, counter = self.width, self.counter
        windows = iter(range(self.lo + width // 2, self.hi - width, width))  # not the search's
        counts = self.counts.setdefault(key, [])

        def bulk() -> None:
            a = next(windows)
            flt = f"timestamp_ms >= {a} AND timestamp_ms < {a + width}"
            counts.append(store.set_trace_tags(flt, {"chbatch": next(counter)}))

        return {
            "tag": lambda: store.set_trace_tag(next(ids), "reviewed2", next(counter)),
            "bulk": bulk,
            "meta": lambda: store.log_metadata(next(ids), {"score2": 0.5}),
            "get": lambda: store.get_trace(next(ids)),
        }


def _chdb_edits_alone(store: Any, n: int, reps: int) -> tuple[list[list[str]], list[Target]]:
    """``_chdb_tags``' edits on chdb alone (no DuckDB store of this size): p50 and p90."""
    sample = [
        r[0]
        for r in store.conn.query(
            "SELECT trace_id FROM td_traces ORDER BY cityHash64(trace_id, 11) LIMIT {k:UInt32}",
            {"k": 6 * reps + 12},
        )
    ]
    ((lo, hi),) = store.conn.query("SELECT min(timestamp_ms), max(timestamp_ms) FROM td_traces")
    edits = _Edits(sample, lo, hi, n)
    ops = edits.ops(store, "chdb")
    rows: list[list[str]] = []
    targets: list[Target] = []
    for key, label in EDIT_LABELS.items():
        c = _variant("chdb", "chdb", ops[key])
        c.batch(1)  # warm-up
        _rounds([c], reps, f"{NAME} chdb {n:,} {key}")
        rows.append([label, _ms(_p50(c)), _ms(_p90(c))])
        targets.append(
            Target(f"{label.split('(')[0]}` on chdb, {n:,} traces", f"{_ms(_p50(c))} ms p50",
                   "info", None)
        )  # fmt: skip
    tagged = edits.counts["chdb"]
    rows[1][0] += f" (traces tagged per call: {min(tagged):,}–{max(tagged):,})"
    return rows, targets


def _chdb_tags(
    duck: Any, chdb: Any, path: Path, n: int, reps: int
) -> tuple[list[list[str]], list[Target]]:
    import duckdb

    con = duckdb.connect(str(path), read_only=False)
    try:
        size = 6 * reps + 12
        sample = [
            r[0]
            for r in con.execute(
                f"SELECT trace_id FROM traces USING SAMPLE reservoir({size} ROWS) REPEATABLE (11)"
            ).fetchall()
        ]
        lo, hi = con.execute("SELECT min(timestamp_ms), max(timestamp_ms) FROM traces").fetchone()
    finally:
        con.close()
    random.Random(11).shuffle(sample)
    edits = _Edits(sample, lo, hi, n)
    duck_ops, chdb_ops = edits.ops(duck, "duck"), edits.ops(chdb, "chdb")
    labels = EDIT_LABELS
    counts = edits.counts
    rows: list[list[str]] = []
    targets: list[Target] = []
    for key, label in labels.items():
        d, c = _variant("duck", "duck", duck_ops[key]), _variant("chdb", "chdb", chdb_ops[key])
        d.batch(1)  # warm-up
        c.batch(1)
        _rounds([d, c], reps, f"{NAME} chdb {n:,} {key}")
        ratio = paired_ratio(c, d)
        rows.append([label, _ms(_p50(d)), _ms(_p50(c)), _ms(_p90(c)), _times(ratio)])
        targets.append(
            Target(
                f"{label.split('(')[0]}` chdb / DuckDB, {n:,} traces",
                f"{_times(ratio)} ({_ms(_p50(c))} vs {_ms(_p50(d))} ms)",
                "info",
                None,
            )
        )
    bulk = {k: f"{min(v):,}–{max(v):,}" for k, v in counts.items() if v}
    rows[1][0] += f" (traces tagged per call: DuckDB {bulk.get('duck')}, chdb {bulk.get('chdb')})"
    return rows, targets


def _chdb_sql_target(label: str, n: int, ratio: float, p50: dict[str, Any], same: bool) -> Target:
    """The gate of one search on chdb: within SEARCH_GATE of the hand-written SQL, same rows."""
    return Target(
        f"search {label} on chdb vs hand-written ClickHouse SQL, {n:,} traces",
        f"{ratio:.2f}× ({p50['chdb']} vs {p50['ch_sql']} ms)"
        + ("" if same else "; **results differ**"),
        f"≤ {SEARCH_GATE}×",
        ratio <= SEARCH_GATE and same,
    )
