"""Deleting traces from a generated store: how long it takes and what it does to the file.

On private copies of the 1,000,000-trace store (100,000 with --quick; ``_stores``), each case on
a fresh copy, one run each (a deletion changes the store, so there is no second round on the
same data), through ``TraceStore.delete_traces``'s own path:

* under the rewrite threshold (a tenth of the traces), in place: the oldest 5%
  (``max_timestamp_millis``: whole row groups, as ``prune`` takes them) and a scattered 5%
  (``tags.cost < 0.5``: some rows of every row group);
* at or over it, rewritten: the oldest 10%, a scattered 15% (``tags.cost < 1.5``), half the
  store (``tags.cost < 5``) and the oldest 90%.

Each row gives the time of the call, then the time of closing the store (its CHECKPOINT: where
DuckDB applies an in-place deletion to the file and rewrites every row group that lost rows;
usually already done at the end of the call), and the file's size before and after. A last row
times retention's step: deleting the 5,000 oldest traces in one transaction in place, as the
writer thread does, p50 of 10 steps.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from . import _stores
from ._common import Config, Section, SuiteResult, Target, median, progress

NAME = "delete"
TITLE = "Deleting traces"
HEADERS = ["traces deleted", "count", "call s", "checkpoint s", "MB before", "MB after",
           "rewritten"]  # fmt: skip


def stores(quick: bool) -> list[int]:
    return [100_000 if quick else 1_000_000]


def _fresh_copy(n: int, workdir: Path, case: str) -> str:
    directory = workdir / case
    directory.mkdir()
    return str(_stores.copy_store(n, directory))


def _size_mb(path: str) -> float:
    return os.path.getsize(path) / 1e6


def run(cfg: Config) -> SuiteResult:
    from traceduck._selection import Selection
    from traceduck.store._retention import CHUNK_TRACES
    from traceduck.store.duckdb._databases import get_database
    from traceduck.store.duckdb._delete import delete_selected

    started = time.perf_counter()
    [n] = stores(cfg.quick)
    progress(f"[{NAME}] store of {n:,} traces")
    _stores.ensure_store(n)

    def oldest(share: float) -> Selection:  # the traces are spread evenly over SPREAD_MS
        return Selection(max_timestamp_ms=_stores.END_MS - int(_stores.SPREAD_MS * (1 - share)))

    cases = [
        ("oldest 5% (`max_timestamp_millis`)", oldest(0.05)),
        ("scattered 5% (`tags.cost < 0.5`)", Selection(filter_string="tags.cost < 0.5")),
        ("oldest 10% (`max_timestamp_millis`)", oldest(0.10)),
        ("scattered 15% (`tags.cost < 1.5`)", Selection(filter_string="tags.cost < 1.5")),
        ("half (`tags.cost < 5`)", Selection(filter_string="tags.cost < 5")),
        ("oldest 90% (`max_timestamp_millis`)", oldest(0.90)),
    ]
    rows = []
    targets = []
    for i, (label, selection) in enumerate(cases):
        path = _fresh_copy(n, cfg.workdir, f"case{i}")
        before = _size_mb(path)
        inode = os.stat(path).st_ino
        db = get_database(path)
        with db.lease() as cur:  # opened (and migrated) before the clock starts
            cur.execute("SELECT 1").fetchall()
        progress(f"[{NAME}] deleting the {label}")
        t0 = time.perf_counter()
        deleted = delete_selected(db, selection, source="api")
        seconds = time.perf_counter() - t0
        rewritten = os.stat(path).st_ino != inode
        t0 = time.perf_counter()
        db.close()
        closing = time.perf_counter() - t0
        after = _size_mb(path)
        assert not os.path.exists(f"{path}.wal")
        rows.append([label, f"{deleted:,}", f"{seconds:.2f}", f"{closing:.2f}", f"{before:.0f}",
                     f"{after:.0f}", "yes" if rewritten else "no"])  # fmt: skip
        if label.startswith("oldest 10%"):
            targets.append(Target(f"delete 10% of {n:,} traces", f"{seconds:.1f} s", "", None))
        if "90%" in label:
            targets.append(
                Target(
                    f"file after deleting 90% of {n:,} traces",
                    f"{after:.0f} MB of {before:.0f} MB",
                    "< half",
                    after < before / 2,
                )
            )
        shutil.rmtree(Path(path).parent)

    path = _fresh_copy(n, cfg.workdir, "retention")
    db = get_database(path)
    step = Selection(max_timestamp_ms=_stores.END_MS, max_traces=CHUNK_TRACES)
    delete_selected(db, step, source="retention", rewrite=False)  # untimed: opens the file
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        assert delete_selected(db, step, source="retention", rewrite=False) == CHUNK_TRACES
        times.append(time.perf_counter() - t0)
    db.close()
    shutil.rmtree(Path(path).parent)
    retention_ms = median(times) * 1000
    rows.append([f"retention step: the {CHUNK_TRACES:,} oldest (p50 of 10)", f"{CHUNK_TRACES:,}",
                 f"{retention_ms / 1000:.2f}", "", "", "", "no"])  # fmt: skip
    targets.append(
        Target(f"retention step ({CHUNK_TRACES:,} traces)", f"{retention_ms:.0f} ms", "", None)
    )

    return SuiteResult(
        suite=NAME,
        title=TITLE,
        seconds=time.perf_counter() - started,
        sections=[
            Section(
                f"Deleting from {n:,} traces (one fresh copy per case)",
                HEADERS,
                rows,
                notes=[
                    "call s: the whole `delete_traces` call. In place (under a tenth of the "
                    "traces) it is one transaction that removes the rows from every table and "
                    "records it, and the CHECKPOINT that writes it into the file when the store "
                    "lets go of the file at the end of the call (a process does once it has held "
                    "it 1 s); rewritten, what stays is copied into a new file that replaces the "
                    "store. checkpoint s: closing the store afterwards (0 when the call did).",
                    "In place the file does not shrink (DuckDB never gives blocks back on "
                    "DELETE, and its checkpoint first rewrites the row groups that lost rows); "
                    "the blocks it frees are reused by the traces written next.",
                ],
            )
        ],
        targets=targets,
    )
