"""Export, import and stats over a generated store (the CLI's `export`, `import`, `stats`).

On a store of 100,000 traces (5,000 with --quick; ``_stores``): ``TraceStore.stats`` grouped by
name, status and a tag (p50 of 5 runs), then ``export_traces`` to Parquet and to JSON Lines and
``import_traces`` of each file into an empty store (one run each: these are minutes-long jobs
at scale, not calls in a loop). Each import is checked to hold every trace of the source. Beside
them, DuckDB's own ``COPY traces TO ... (FORMAT parquet)`` of the flat ``traces`` table (no spans,
no histories), the least a user could write, as a reference for the export's cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

from . import _stores
from ._common import Config, Section, SuiteResult, Target, median, progress

NAME = "transfer"
TITLE = "Export, import and stats"


T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def stores(quick: bool) -> list[int]:
    """The generated store this suite reads. --quick: 5,000 traces, which still makes each
    export and import a run of 1-2 s (the JSON Lines ones), 2-3 of the export's chunks."""
    return [5_000 if quick else 100_000]


def run(cfg: Config) -> SuiteResult:
    from traceduck import TraceStore
    from traceduck.store.duckdb._databases import get_database

    started = time.perf_counter()
    [n] = stores(cfg.quick)
    progress(f"[{NAME}] store of {n:,} traces")
    path = _stores.copy_store(n, cfg.workdir)
    store = TraceStore(path)
    spans = store.sql("SELECT count(*) AS n FROM spans").to_pylist()[0]["n"]
    tag_key = store.sql(
        "SELECT key FROM trace_tags GROUP BY key ORDER BY count(DISTINCT value_str), key LIMIT 1"
    ).to_pylist()
    groupings = ["name", "status"] + ([f"tags.{tag_key[0]['key']}"] if tag_key else [])

    stats_rows = []
    for by in groupings:
        times = [_timed(lambda by=by: store.stats(by=by))[0] for _ in range(5)]
        groups = len(store.stats(by=by))
        stats_rows.append([f"`stats(by={by!r})`", f"{groups:,}", f"{median(times) * 1000:.1f}"])

    # Untimed: one export and import of the ~1% ERROR traces per format, so the timed runs
    # below do not carry the process's one-time costs (imports, DuckDB's first plans; ~0.4 s,
    # most of a small export).
    for fmt in ("parquet", "jsonl"):
        warm = cfg.workdir / f"warm.{fmt}"
        store.export_traces(warm, "status = 'ERROR'")
        TraceStore(cfg.workdir / f"warm-{fmt}.duckdb").import_traces(warm)
        get_database(str(cfg.workdir / f"warm-{fmt}.duckdb")).shutdown()

    rows = []
    targets = []
    for fmt in ("parquet", "jsonl"):
        file = cfg.workdir / f"export.{fmt}"
        seconds, count = _timed(lambda file=file: store.export_traces(file))
        rows.append([f"export to {fmt}", f"{count:,}", f"{seconds:.2f}", f"{n / seconds:,.0f}",
                     f"{file.stat().st_size / 1e6:.1f}"])  # fmt: skip
        target = TraceStore(cfg.workdir / f"import-{fmt}.duckdb")
        seconds, result = _timed(lambda file=file, target=target: target.import_traces(file))
        rows.append([f"import from {fmt}", f"{result.imported:,}", f"{seconds:.2f}",
                     f"{n / seconds:,.0f}", ""])  # fmt: skip
        held = target.sql("SELECT count(*) AS n FROM traces").to_pylist()[0]["n"]
        targets.append(
            Target(f"import from {fmt} holds every trace", f"{held:,}", f"{n:,}", held == n)
        )
        get_database(str(target.path)).shutdown()

    get_database(str(path)).shutdown()
    reference = cfg.workdir / "reference.parquet"
    con = duckdb.connect(str(path), read_only=True)
    seconds, _ = _timed(
        lambda: con.execute(f"COPY traces TO '{reference}' (FORMAT parquet, COMPRESSION zstd)")
    )
    con.close()
    rows.append(["reference: DuckDB `COPY traces TO parquet` (flat, no spans)", f"{n:,}",
                 f"{seconds:.2f}", f"{n / seconds:,.0f}",
                 f"{reference.stat().st_size / 1e6:.1f}"])  # fmt: skip

    return SuiteResult(
        suite=NAME,
        title=TITLE,
        seconds=time.perf_counter() - started,
        sections=[
            Section(
                f"Stats over {n:,} traces",
                ["call", "groups", "p50 ms"],
                stats_rows,
            ),
            Section(
                f"Export and import of {n:,} traces ({spans:,} spans)",
                ["operation", "traces", "seconds", "traces/s", "file MB"],
                rows,
                notes=[
                    "One run each, after an untimed export and import of the store's ERROR "
                    "traces (1%) in each format. Export holds one read lease for the whole run "
                    "and reads 2,000 traces per chunk; import runs in one transaction.",
                    "JSON Lines decodes and re-encodes every JSON value in Python (readable "
                    "files for jq and friends); Parquet keeps JSON text and stays in Arrow.",
                ],
            ),
        ],
        targets=targets,
    )
