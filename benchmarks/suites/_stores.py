"""Generated stores of N traces for the search and UI benchmarks: fast (Arrow), cached, shared.

    from suites._stores import ensure_store, copy_store
    path = ensure_store(1_000_000)        # the cached store (build it first if missing)
    work = copy_store(1_000_000, tmp_dir) # a private copy to write to (tags, metadata)

Build the caches ahead of a run: ``PYTHONPATH=src python benchmarks/run.py --build-stores``.

The store returned by ``ensure_store`` is shared by every run and every suite: open it read-only
(``TraceStore(path, read_only=True)`` or ``duckdb.connect(path, read_only=True)``) or write to a
copy. It is built once per size and shape, into ``$TRACEDUCK_BENCH_CACHE`` (default:
``benchmarks/.cache`` in the repository, git-ignored); the file name carries the size, the
generator's version and a fingerprint of traceduck's schema, so a schema change builds a new one.

The shape (issue 3), every value drawn from a seeded generator, so a store of N traces is the
same file content on every machine:

* traces over the 30 days before 2026-01-01, written oldest first (as a live store fills);
  names ``chat`` / ``answer_question`` / ``summarize`` / ``classify``;
* tags ``env`` in {prod, staging, dev} (a third each), ``user_id`` = ``user_<0..9999>``
  (uniform), ``cost`` a number in [0, 10) (3 decimals);
* status ERROR on 1% (the root and its last child; that child has an exception event);
* latencies log-normal, in whole ms: median 150 ms, 11.5% over 500 ms, 1% over 1.5 s;
* a root and 1-3 children (retriever, llm, tool; 3 spans per trace on average) with small
  JSON inputs/outputs and attributes (``model``, ``tokens`` on llm spans);
* metadata ``session`` (a string) and ``model`` (``{"name", "version"}``), with their
  ``trace_metadata`` entries, and a ``set`` event per live tag in ``tag_events``, as the
  exporter writes them.

The schema comes from the store itself (``get_database(path)`` migrates a new file); rows go in
by Arrow, ``INSERT INTO <table> BY NAME SELECT * FROM <arrow chunk>``, 100,000 traces a chunk.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._common import progress

GENERATOR_VERSION = 1  # bump when the shape below changes: cached stores are rebuilt
CHUNK = 100_000  # traces per Arrow chunk
SEED = 20261123
END_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the newest trace starts just before
SPREAD_MS = 30 * 24 * 3600 * 1000  # traces spread over 30 days
ENVS = ("prod", "staging", "dev")
USERS = 10_000
ERROR_RATE = 0.01
LATENCY_MEDIAN_MS = 150.0
LATENCY_SIGMA = 1.0  # of the log: P(> 500 ms) = 11.5%
NAMES = ("chat", "answer_question", "summarize", "classify")
CHILDREN = (("retrieve", "RETRIEVER"), ("llm", "LLM"), ("tool", "TOOL"))
MODELS = ("gpt-4o-mini", "claude-haiku", "llama-3-8b")
SERVICE = "bench-app"
ERROR_MESSAGE = "ValueError: upstream model failed"
MLFLOW_TIME_BOX_S = 240.0  # an MLflow store that takes longer is kept with what it has

_HEX = np.array([f"{i:02x}" for i in range(256)], dtype="S2")


# -- where stores live ------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$TRACEDUCK_BENCH_CACHE``, else ``benchmarks/.cache`` (git-ignored). Created if missing."""
    configured = os.environ.get("TRACEDUCK_BENCH_CACHE")
    path = Path(configured) if configured else Path(__file__).resolve().parents[1] / ".cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def schema_fingerprint() -> str:
    """Changes whenever traceduck's schema (its migrations' DDL) or this generator changes."""
    from traceduck.store.duckdb._schema import MIGRATIONS, SCHEMA_VERSION

    text = repr((SCHEMA_VERSION, GENERATOR_VERSION, sorted(MIGRATIONS.items())))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def store_path(n_traces: int) -> Path:
    return cache_dir() / f"traces-{n_traces}-{schema_fingerprint()}.duckdb"


@contextlib.contextmanager
def build_lock(target: Path) -> Iterator[None]:
    """One builder per store at a time, across processes (the search and UI suites share it)."""
    with open(f"{target}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_store(n_traces: int) -> Path:
    """The cached store of ``n_traces`` traces, built first if missing. Do not write to it."""
    target = store_path(n_traces)
    if target.exists():
        return target
    with build_lock(target):
        if target.exists():  # another process built it while we waited
            return target
        partial = target.with_name(target.name + ".partial")
        for stale in (partial, Path(f"{partial}.wal")):
            stale.unlink(missing_ok=True)
        started = time.perf_counter()
        build_store(partial, n_traces)
        os.replace(partial, target)  # a reader never sees a half-built store
        progress(
            f"[stores] built {target.name}: {n_traces:,} traces in "
            f"{time.perf_counter() - started:.1f} s ({target.stat().st_size / 1e6:.0f} MB)"
        )
    return target


def copy_store(n_traces: int, directory: Path) -> Path:
    """A private, writable copy of the cached store of ``n_traces`` traces in ``directory``."""
    source = ensure_store(n_traces)
    dest = Path(directory) / f"traces-{n_traces}.duckdb"
    shutil.copyfile(source, dest)
    return dest


def copy_mlflow_store(n_traces: int, directory: Path) -> tuple[Path, int]:
    """A copy of MLflow's SQLite store of the first traces of ``ensure_store(n_traces)``.

    Returns (the copy, how many traces it holds). MLflow writes a trace at a time through its
    store API (``SqlAlchemyStore.start_trace``: trace info, tags and metadata, no spans), which
    takes minutes for 10,000 traces, so the work is cached and resumable: a build that runs out
    of its time box (``MLFLOW_TIME_BOX_S``) keeps what it wrote, is used as it is for this run
    (the count says how many), and goes on where it stopped on the next run.
    """
    import mlflow

    target = cache_dir() / f"mlflow-{n_traces}-{mlflow.__version__}-g{GENERATOR_VERSION}.db"
    dest = Path(directory) / "mlflow.db"
    with build_lock(target):
        count = n_traces
        source = target
        if not target.exists():
            source = target.with_name(target.name + ".partial")
            count = _fill_mlflow(source, n_traces)
            if count == n_traces:
                os.replace(source, target)
                source = target
        shutil.copyfile(source, dest)
    return dest, count


def mlflow_empty_store(directory: Path) -> Path:
    """A copy of an empty MLflow SQLite tracking store (schema created), as ``directory/mlflow.db``.

    MLflow creates its schema on first use by running its Alembic migrations, ~4 s; the empty
    store is made once per MLflow version by MLflow itself and cached. In the copy, the default
    experiment's artifact location (where MLflow writes each trace's ``traces.json``) is
    ``directory/mlruns/0``, as if MLflow had created the store with ``directory`` as its cwd.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    target = cache_dir() / f"mlflow-empty-{mlflow.__version__}.db"
    with build_lock(target):
        if not target.exists():
            partial = target.with_name(target.name + ".partial")
            partial.unlink(missing_ok=True)
            MlflowClient(tracking_uri=f"sqlite:///{partial}").search_experiments()
            os.replace(partial, target)
    dest = Path(directory) / "mlflow.db"
    shutil.copyfile(target, dest)
    with contextlib.closing(sqlite3.connect(dest)) as con, con:
        artifacts = str(Path(directory).resolve() / "mlruns" / "0")
        con.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", [artifacts]
        )
    return dest


MLFLOW_EXPERIMENT = "traceduck-bench"


def mlflow_client(db: Path) -> tuple[Any, str]:
    """(an MlflowClient on the SQLite file ``db``, the benchmark experiment's id)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{Path(db).resolve()}")
    experiment = client.get_experiment_by_name(MLFLOW_EXPERIMENT)
    if experiment is not None:
        return client, experiment.experiment_id
    artifacts = cache_dir() / "mlflow-artifacts"  # stays empty: traces here have no spans
    return client, client.create_experiment(MLFLOW_EXPERIMENT, artifacts.as_uri())


def _fill_mlflow(db: Path, n_traces: int) -> int:
    """Add traces to MLflow store ``db`` until it holds ``n_traces`` or time runs out."""
    from mlflow.entities import TraceInfo, TraceLocation, TraceState

    client, experiment_id = mlflow_client(db)
    store = client._tracking_client.store  # the SqlAlchemyStore behind the client
    with sqlite3.connect(db) as con:
        (done,) = con.execute("SELECT count(*) FROM trace_info").fetchone()
    if done >= n_traces:
        return n_traces
    rows = generate_chunk(0, n_traces, n_traces)["traces"].slice(done).to_pylist()
    location = TraceLocation.from_experiment_id(experiment_id)
    deadline = time.monotonic() + MLFLOW_TIME_BOX_S
    progress(f"[stores] MLflow store: writing traces {done:,}..{n_traces:,} (cached afterwards)")
    with _progress_bar(n_traces - done, db.name) as advance:
        for row in rows:
            if time.monotonic() > deadline:
                break
            tags = json.loads(row["tags"])
            metadata = json.loads(row["metadata"])
            info = TraceInfo(
                trace_id="tr-" + row["trace_id"],
                trace_location=location,
                request_time=row["timestamp_ms"],
                execution_duration=round(row["execution_time_ms"]),
                state=TraceState.ERROR if row["status"] == "ERROR" else TraceState.OK,
                request_preview=row["request_preview"],
                response_preview=row["response_preview"],
                trace_metadata={
                    k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()
                },
                tags={"mlflow.traceName": row["name"], **{k: str(v) for k, v in tags.items()}},
            )
            store.start_trace(info)
            done += 1
            advance(1)
    if done < n_traces:
        progress(
            f"[stores] MLflow store: {done:,} of {n_traces:,} traces after the "
            f"{MLFLOW_TIME_BOX_S:.0f} s time box; the next run goes on from there"
        )
    return done


# -- building ---------------------------------------------------------------------------------


def build_store(path: Path, n_traces: int) -> None:
    """Write ``n_traces`` generated traces into a new store at ``path`` (schema by traceduck)."""
    from traceduck.store.duckdb._databases import get_database

    db = get_database(str(path))
    # The next chunk is generated on a second thread while DuckDB inserts this one (numpy,
    # Arrow compute and DuckDB all release the GIL).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-generate") as pool:

        def submit(start: int) -> Future[dict[str, pa.Table]]:
            return pool.submit(generate_chunk, start, min(CHUNK, n_traces - start), n_traces)

        try:
            with db.lease(write=True) as cur, _progress_bar(n_traces, path.name) as advance:
                pending = submit(0)
                for start in range(0, n_traces, CHUNK):
                    chunk = pending.result()
                    if start + CHUNK < n_traces:
                        pending = submit(start + CHUNK)
                    _insert(cur, chunk)
                    advance(chunk["traces"].num_rows)
                    del chunk
                cur.execute("CHECKPOINT")
        finally:
            db.shutdown()
    if Path(f"{path}.wal").exists():
        raise RuntimeError(f"{path}.wal left after CHECKPOINT and close; the store is incomplete")


def _insert(cur: Any, chunk: dict[str, pa.Table]) -> None:
    for table, rows in chunk.items():
        cur.register("_bench_chunk", rows)
        try:
            cur.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _bench_chunk")
        finally:
            cur.unregister("_bench_chunk")


@contextlib.contextmanager
def _progress_bar(total: int, label: str) -> Iterator[Any]:
    """A rich progress bar on a terminal, else a line per chunk on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        done = [0, 0]  # traces done, last tenth reported

        def advance_plain(n: int) -> None:
            done[0] += n
            tenth = done[0] * 10 // max(total, 1)
            if tenth > done[1]:
                done[1] = tenth
                progress(f"[stores] {label}: {done[0]:,}/{total:,} traces")

        yield advance_plain
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(f"generating {label}", total=total)
        yield lambda n: bar.advance(task, n)


def _hex_ids(rng: np.random.Generator, n: int, nbytes: int) -> pa.Array:
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    return pa.array(_HEX[raw].view(f"S{2 * nbytes}").ravel()).cast(pa.string())


def _cat(*parts: Any) -> pa.Array:
    """Element-wise string concatenation of arrays and scalars."""
    return pc.binary_join_element_wise(*parts, "")


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _pick(choices: tuple[str | None, ...], index: np.ndarray) -> pa.Array:
    """``choices[index[i]]`` for every i, as an Arrow string array."""
    return pc.take(pa.array(choices, pa.string()), pa.array(index.astype(np.int64)))


def generate_chunk(start: int, n: int, total: int) -> dict[str, pa.Table]:
    """Traces ``start .. start+n-1`` of a store of ``total``: Arrow tables keyed by table name.

    Deterministic per (start, total): each chunk has its own seeded generator.
    """
    rng = np.random.default_rng([SEED, start, total])
    index = np.arange(start, start + n, dtype=np.int64)

    # -- traces -----------------------------------------------------------------------------
    step = SPREAD_MS / total
    start_ns = (END_MS - SPREAD_MS + (index + rng.random(n)) * step) * 1_000_000
    start_ns = start_ns.astype(np.int64)
    latency_ms = LATENCY_MEDIAN_MS * np.exp(rng.normal(0.0, LATENCY_SIGMA, n))
    latency_ms = np.round(latency_ms).clip(1, None)  # whole ms, as MLflow stores them
    end_ns = start_ns + (latency_ms * 1_000_000).astype(np.int64)
    is_error = rng.random(n) < ERROR_RATE
    children = rng.integers(1, len(CHILDREN) + 1, n)
    env = rng.integers(0, len(ENVS), n)
    user = rng.integers(0, USERS, n)
    cost = np.round(rng.random(n) * 10, 3)
    name_ix = rng.choice(len(NAMES), n, p=(0.4, 0.3, 0.2, 0.1))
    model_ix = rng.integers(0, len(MODELS), n)
    trace_ids = _hex_ids(rng, n, 16)
    names = _pick(NAMES, name_ix)
    models = _pick(MODELS, model_ix)
    envs = _pick(ENVS, env)
    question = _cat("question ", _text(index))
    request = _cat('{"question":"', question, '"}')
    response = _cat('"answer to ', question, '"')
    tags = _cat('{"env":"', envs, '","user_id":"user_', _text(user), '","cost":', _text(cost), "}")
    session = _cat("session_", _text(index // 4))
    model_json = _cat('{"name":"', models, '","version":', _text(model_ix + 1), "}")
    metadata = _cat('{"session":"', session, '","model":', model_json, "}")

    # -- spans: the root first, then its children one after another --------------------------
    per_trace = children + 1
    owner = np.repeat(np.arange(n), per_trace)  # the trace of each span
    first = np.cumsum(per_trace) - per_trace  # each trace's root position
    pos = np.arange(owner.size) - first[owner]  # 0 = root, 1.. = children
    is_root = pos == 0
    m = owner.size
    span_ids = _hex_ids(rng, m, 8)
    root_ids = pc.take(span_ids, pa.array(first))
    kids = children[owner]
    slot = (latency_ms[owner] * 1_000_000 / kids).astype(np.int64)
    child_start = start_ns[owner] + (pos - 1).clip(0) * slot + slot // 20
    child_end = child_start + slot * 9 // 10
    s_start = np.where(is_root, start_ns[owner], child_start)
    s_end = np.where(is_root, end_ns[owner], child_end)
    failed = is_error[owner] & (is_root | (pos == kids))  # the root and its last child
    kind = np.where(is_root, 0, pos.clip(1, None))  # 0 root, 1 retrieve, 2 llm, 3 tool
    owner_arr = pa.array(owner)
    root_mask = pa.array(is_root)
    llm_attributes = _cat(
        '{"model":"', pc.take(models, owner_arr), '","tokens":',
        _text(rng.integers(50, 4000, m)), "}",
    )  # fmt: skip
    other_attributes = _pick(("{}", '{"top_k":5}', "", '{"tool":"search"}'), kind)
    exception = _cat(
        '[{"name":"exception","time_ns":', _text(s_end),
        ',"attributes":{"exception.type":"ValueError",'
        '"exception.message":"upstream model failed"}}]',
    )  # fmt: skip
    failed_child = pa.array(failed & ~is_root)
    spans = pa.table(
        {
            "trace_id": pc.take(trace_ids, owner_arr),
            "span_id": span_ids,
            "parent_id": pc.if_else(
                root_mask, pa.scalar(None, pa.string()), pc.take(root_ids, owner_arr)
            ),
            "name": pc.if_else(
                root_mask, pc.take(names, owner_arr), _pick(("", *(c[0] for c in CHILDREN)), kind)
            ),
            "span_type": _pick(("CHAIN", *(c[1] for c in CHILDREN)), kind),
            "status": _pick(("OK", "ERROR"), failed),
            "status_message": _pick((None, ERROR_MESSAGE), failed),
            "start_time_ns": pa.array(s_start),
            "end_time_ns": pa.array(s_end),
            "duration_ms": pa.array((s_end - s_start) / 1e6),
            "kind": _pick(("SERVER", "INTERNAL"), ~is_root),
            "service_name": pa.repeat(SERVICE, m),
            "attributes": pc.if_else(pa.array(kind == 2), llm_attributes, other_attributes),
            "inputs": pc.if_else(
                root_mask,
                pc.take(request, owner_arr),
                _cat('{"query":"', pc.take(question, owner_arr), '"}'),
            ),
            "outputs": pc.if_else(root_mask, pc.take(response, owner_arr), pa.scalar('"ok"')),
            "events": pc.if_else(failed_child, exception, pa.scalar("[]")),
        }
    )

    traces = pa.table(
        {
            "trace_id": trace_ids,
            "name": names,
            "status": _pick(("OK", "ERROR"), is_error),
            "status_message": _pick((None, ERROR_MESSAGE), is_error),
            "timestamp_ms": pa.array(start_ns // 1_000_000),
            "execution_time_ms": pa.array((end_ns - start_ns) / 1e6),
            "start_time_ns": pa.array(start_ns),
            "end_time_ns": pa.array(end_ns),
            "span_count": pa.array(per_trace.astype(np.int32)),
            "service_name": pa.repeat(SERVICE, n),
            "root_span_id": root_ids,
            "has_root": pa.repeat(True, n),
            "request_preview": request,
            "response_preview": response,
            "tags": tags,
            "metadata": metadata,
        }
    )

    # -- history: a metadata entry per key, a 'set' event per live tag ------------------------
    written = pa.array(end_ns // 1000, pa.timestamp("us"))
    trace_metadata = pa.table(
        {
            "ts": pa.concat_arrays([written, written]),
            "trace_id": pa.concat_arrays([trace_ids, trace_ids]),
            "key": _pick(("session", "model"), np.repeat([0, 1], n)),
            "value": pa.concat_arrays([_cat('"', session, '"'), model_json]),
            "source": pa.repeat("live", 2 * n),
        }
    )
    tag_events = pa.table(
        {
            "ts": pa.concat_arrays([written] * 3),
            "trace_id": pa.concat_arrays([trace_ids] * 3),
            "key": _pick(("env", "user_id", "cost"), np.repeat([0, 1, 2], n)),
            "old_value": pa.nulls(3 * n, pa.string()),
            "new_value": pa.concat_arrays(
                [_cat('"', envs, '"'), _cat('"user_', _text(user), '"'), _text(cost)]
            ),
            "operation": pa.repeat("set", 3 * n),
            "source": pa.repeat("live", 3 * n),
        }
    )
    return {
        "traces": traces,
        "spans": spans,
        "trace_metadata": trace_metadata,
        "tag_events": tag_events,
    }


def build_all(sizes: list[int], mlflow_sizes: list[int]) -> None:
    """Build (or check) the cached stores of these sizes; MLflow's only when it imports."""
    for n in sizes:
        progress(f"[stores] {ensure_store(n)}")
    for n in mlflow_sizes:
        try:
            import mlflow  # noqa: F401
        except Exception as exc:
            progress(f"[stores] no MLflow store: `import mlflow` failed ({exc})")
            return
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            _, count = copy_mlflow_store(n, Path(tmp))
        progress(f"[stores] MLflow store: {count:,} of {n:,} traces in {cache_dir()}")
