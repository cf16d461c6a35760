"""Collector: OTLP ingest through `traceduck collector` (DuckDB, and chdb), root end → searchable.

1. Server throughput. `traceduck collector` runs in its own process; client processes send
   pre-encoded OTLP requests (510 spans = 51 traces of a root and 9 children, the ingest suite's
   spans) as fast as the answers come, over OTLP/HTTP protobuf (keep-alive) and OTLP/gRPC.
   Encoding is done before the clock starts, so the figure is the server's. "accepted" = spans
   answered / time until the last answer; "written" = spans / time until the collector's writer
   has committed all of them (its status page, ``GET /``, says so): the sustained figure, with
   nothing left in a queue.
2. The same with the stock `opentelemetry-exporter-otlp` HTTP exporter as the client (encoding
   included, so the clients' CPU competes with the server's on 2 cores), into DuckDB and into
   chdb (`traceduck collector --db chdb:///dir`), in the same rounds.
3. Root end → searchable: an app configured with ``traceduck.configure(db=None,
   otlp_endpoint=...)`` ends a trace; another process polls ``TraceStore(path).sql`` until it
   finds it, while the collector holds the file between writes. The collector is the last
   ingest case's (`--ack queued`), kept running once that case is measured.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._common import (
    Config,
    Section,
    SuiteResult,
    Target,
    chdb_missing,
    in_fresh_process,
    median,
    num,
    progress,
    traceduck_handle,
    wait_quiet,
)

NAME = "collector"
TITLE = "Collector: OTLP ingest"
SPANS_PER_REQUEST = 510
TARGET_SPANS_PER_S = 20_000


def _env() -> dict[str, str]:
    import traceduck

    src = str(Path(traceduck.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Server:
    """`traceduck collector` in a child process on free ports. The constructor starts it and
    returns at once (the caller prepares meanwhile); ``wait_started()`` reads its ports."""

    def __init__(self, db: Path | str, ack: str) -> None:
        if isinstance(db, Path):  # a DuckDB file (a chdb URL names a new directory)
            for p in (db, Path(f"{db}.wal")):
                p.unlink(missing_ok=True)
        self.db = db
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "traceduck", "collector", "--db", str(db), "--http-port", "0",
             "--grpc-port", "0", "--ack", ack],
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.http_port = self.grpc_port = 0
        self.terminated = False

    def wait_started(self) -> Server:
        if self.http_port:
            return self
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        http = re.search(r"OTLP/HTTP http://127\.0\.0\.1:(\d+)/", line)
        grpc = re.search(r"OTLP/gRPC 127\.0\.0\.1:(\d+)", line)
        if not http or not grpc:
            self.proc.kill()
            raise RuntimeError(f"collector did not start: {line!r}")
        self.http_port, self.grpc_port = int(http.group(1)), int(grpc.group(1))
        return self

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM, once: it commits what it holds, then exits); ``stop``
        waits. A second SIGTERM could land after it restored the default handler."""
        if not self.terminated and self.proc.poll() is None:
            self.terminated = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> tuple[int, str]:
        """Stop it and wait until it has exited: (exit status, its stderr)."""
        if self.proc.returncode is not None:  # stopped and waited for already
            return self.proc.returncode, ""
        self.terminate()
        _out, err = self.proc.communicate(timeout=300)
        return self.proc.returncode, err


def _requests(count: int, seed: int) -> list[bytes]:
    """``count`` pre-encoded OTLP requests of SPANS_PER_REQUEST spans (the ingest suite's).

    Building and encoding them takes ~1.7 s per 25 requests, in every client of every case, so
    they are cached beside the generated stores (keyed by the span builder's source and the
    OpenTelemetry version); each seed is a different set of traces (random ids)."""
    import hashlib
    import importlib.metadata
    import inspect
    import struct

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from . import _stores
    from .ingest import SPANS_PER_TRACE, build_spans

    key = repr((inspect.getsource(build_spans), SPANS_PER_REQUEST,
                importlib.metadata.version("opentelemetry-sdk")))  # fmt: skip
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    path = _stores.cache_dir() / f"otlp-requests-{count}-{seed}-{digest}.bin"
    if path.exists():
        data, bodies, at = path.read_bytes(), [], 0
        while at < len(data):
            (size,) = struct.unpack_from("<I", data, at)
            bodies.append(data[at + 4 : at + 4 + size])
            at += 4 + size
        return bodies
    spans = build_spans(count * SPANS_PER_REQUEST // SPANS_PER_TRACE, seed)
    bodies = [
        encode_spans(spans[i : i + SPANS_PER_REQUEST]).SerializeToString()
        for i in range(0, len(spans), SPANS_PER_REQUEST)
    ]
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_bytes(b"".join(struct.pack("<I", len(b)) + b for b in bodies))
    os.replace(partial, path)
    return bodies


# In a client process: (ready queue, go event, the collector's port), from Clients' initializer.
_SHARED: tuple[Any, Any, Any] | None = None


def _init_client(ready: Any, go: Any, port: Any) -> None:
    global _SHARED
    _SHARED = (ready, go, port)


def _wait_for_go() -> int:
    """Tell the suite this client is ready, wait for the start, return the collector's port."""
    assert _SHARED is not None
    ready, go, port = _SHARED
    ready.put(1)
    go.wait()
    return int(port.value)


def _client(transport: str, count: int, seed: int) -> float:
    """Send ``count`` pre-encoded requests one after another; seconds from the start signal
    to the last answer."""
    import http.client

    import grpc  # before the clock starts

    bodies = _requests(count, seed)
    port = _wait_for_go()
    if transport == "http":
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def send(body: bytes) -> None:
            while True:
                conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
                reply = conn.getresponse()
                reply.read()
                if reply.status == 200:
                    return
                if reply.status != 503:
                    raise RuntimeError(f"HTTP {reply.status}")
                time.sleep(0.1)  # the write queue is full: back off as an OTLP exporter would

    else:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")

        def send(body: bytes) -> None:
            while True:
                try:
                    export(body, timeout=120)
                    return
                except grpc.RpcError as exc:
                    if exc.code() is not grpc.StatusCode.UNAVAILABLE:
                        raise
                    time.sleep(0.1)

    t0 = time.perf_counter()
    for body in bodies:
        send(body)
    return time.perf_counter() - t0


def _stock_client(count: int, seed: int) -> float:
    """The stock OTLP/HTTP exporter exporting finished SDK spans (it encodes them itself)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    from .ingest import SPANS_PER_TRACE, build_spans

    spans = build_spans(count * SPANS_PER_REQUEST // SPANS_PER_TRACE, seed)
    endpoint = f"http://127.0.0.1:{_wait_for_go()}/v1/traces"
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=120)
    t0 = time.perf_counter()
    for i in range(0, len(spans), SPANS_PER_REQUEST):
        if exporter.export(spans[i : i + SPANS_PER_REQUEST]) is not SpanExportResult.SUCCESS:
            raise RuntimeError("stock exporter failed")
    return time.perf_counter() - t0


class Clients:
    """The client processes (spawned once, used by every case) and what they wait on."""

    def __init__(self, count: int) -> None:
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        self.count = count
        self.ready, self.go, self.port = context.Queue(), context.Event(), context.Value("i", 0)
        self.pool = ProcessPoolExecutor(
            count, mp_context=context, initializer=_init_client,
            initargs=(self.ready, self.go, self.port),
        )  # fmt: skip

    def close(self, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait)


def throughput(
    server: Server,
    transport: str,
    clients: Clients,
    per_client: int,
    start_next: Callable[[], Server | None],
) -> tuple[Callable[..., dict[str, Any]], Server]:
    """One measurement on ``server`` (started, maybe not up yet): spans/s accepted and written.
    Once the clock has stopped, ``start_next()`` starts the next collector, which boots while
    this one is told to stop; if it returns None, this one keeps running (and is returned).
    Returns (a function that stops this one, waits for it to exit and adds the spans found in
    its store to the figures, less those of the traces given; the next collector)."""
    # The clients load their requests while the collector starts.
    seeds = [1 + k * 1_000_000 for k in range(clients.count)]
    if transport == "stock":
        jobs = [clients.pool.submit(_stock_client, per_client, seed) for seed in seeds]
    else:
        jobs = [clients.pool.submit(_client, transport, per_client, seed) for seed in seeds]
    try:
        wait_quiet(server.wait_started().proc.pid)
        clients.port.value = server.grpc_port if transport == "grpc" else server.http_port
        for _ in jobs:
            clients.ready.get(timeout=300)
        t0 = time.perf_counter()
        clients.go.set()
        for job in jobs:
            job.result(timeout=600)
        answered = time.perf_counter() - t0
        clients.go.clear()
        spans = clients.count * per_client * SPANS_PER_REQUEST
        _wait_written(server.http_port, spans)
        written = time.perf_counter() - t0
        following = start_next()
    except BaseException:
        server.terminate()
        raise
    if following is None:
        following = server
    else:
        server.terminate()  # it commits what it holds and exits, while the next one boots

    def finish(other_traces: Sequence[str] = ()) -> dict[str, Any]:
        code, err = server.stop()
        if code != 0:
            raise RuntimeError(f"collector exited {code}: {err[-500:]}")
        return {
            "spans": spans,
            "accepted": spans / answered,
            "written": spans / written,
            "stored": _count(server.db, other_traces),
        }

    return finish, following


def _wait_written(port: int, spans: int, limit_s: float = 300) -> None:
    """Poll the collector's status page until its writer has committed ``spans`` spans."""
    import json
    import urllib.request

    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as reply:
            if json.loads(reply.read())["written_spans"] >= spans:
                return
        time.sleep(0.02)
    raise RuntimeError(f"the collector did not write {spans:,} spans within {limit_s:.0f} s")


def _count(db: Path | str, other_traces: Sequence[str] = ()) -> int:
    """Spans in the store at ``db``, less those of ``other_traces``."""
    if isinstance(db, str):  # chdb: one directory per process, so counted in a fresh one
        return in_fresh_process(_count_chdb, db, list(other_traces))
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        query = "SELECT count(*) FROM spans WHERE NOT list_contains(?, trace_id)"
        return int(con.execute(query, [list(other_traces)]).fetchall()[0][0])
    finally:
        con.close()


def _count_chdb(url: str, other_traces: list[str]) -> int:
    from traceduck import TraceStore

    query = "SELECT count() FROM spans WHERE NOT has({ids:Array(String)}, trace_id)"
    table = TraceStore(url, read_only=True).sql(query, {"ids": other_traces})
    return int(table.column(0)[0].as_py())


class LatencyApp:
    """The app of the latency measurement, in its own (spawned) process. It starts at once
    and then waits, idle, for the collector's port (``latency``)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.proc = context.Process(target=_latency_app, args=(child,), daemon=True)
        self.proc.start()
        self.stopping = False

    def wait_ready(self) -> None:
        """Until it has imported what it needs (it then waits, idle, for the port)."""
        if not self.conn.poll(120) or self.conn.recv() != "ready":
            raise RuntimeError("the latency app did not start")

    def stop(self, wait: bool = True) -> None:
        """Ask the app to flush and exit (once); ``wait``: until it has."""
        if not self.stopping and self.proc.is_alive():
            self.stopping = True
            try:
                self.conn.send("stop")
            except OSError:  # it has gone already
                pass
        if wait:
            self.proc.join(60)


def latency(server: Server, app: LatencyApp, samples: int) -> tuple[list[float], list[str]]:
    """Seconds from a root's end (in ``app``, sending OTLP to ``server``, a collector with
    ``--ack queued``) until another process finds it; and the traces' ids."""
    import random

    parent = app.conn
    parent.send(server.wait_started().http_port)
    from traceduck import TraceStore

    store = TraceStore(str(server.db), read_only=True)
    out: list[float] = []
    ids: list[str] = []
    rng = random.Random(4)
    try:
        for _ in range(samples):
            time.sleep(rng.uniform(0.0, 1.0))  # anywhere in the writer's 1 s cycle
            parent.send("go")
            trace_id, ended = parent.recv()
            ids.append(trace_id)
            while True:
                # A fresh read each time: the reader process lets go of the file between polls.
                found = store.sql("SELECT count(*) FROM traces WHERE trace_id = ?", [trace_id])
                store._db.close()
                if found.column(0)[0].as_py():
                    out.append(time.time() - ended)
                    break
                if time.time() - ended > 30:
                    out.append(float("inf"))
                    break
                time.sleep(0.1)
    finally:
        app.stop(wait=False)  # the app flushes and exits while the collector does
        server.stop()
        app.stop()
    return out, ids


def _latency_app(conn: Any) -> None:
    import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401  (ahead of time)

    import traceduck

    conn.send("ready")
    port = conn.recv()
    if port == "stop":
        return
    traceduck.configure(db=None, otlp_endpoint=f"http://127.0.0.1:{port}")
    handle = traceduck_handle()

    while conn.recv() == "go":
        handle(1)
        conn.send((traceduck.get_last_trace_id(), time.time()))
    traceduck.shutdown()


def run(cfg: Config) -> SuiteResult:
    quick = cfg.quick
    started = time.perf_counter()
    clients, per_client = (2, 25) if quick else (3, 100)
    reps = 1 if quick else 2
    cases = [
        ("http", "queued", "duckdb", "OTLP/HTTP protobuf, pre-encoded, `--ack queued` (default)"),
        ("grpc", "queued", "duckdb", "OTLP/gRPC, pre-encoded, `--ack queued`"),
        ("http", "written", "duckdb", "OTLP/HTTP protobuf, pre-encoded, `--ack written`"),
        ("stock", "queued", "chdb",
         "stock OTLP/HTTP exporter as client (encodes too), into chdb (`--db chdb:///dir`)"),
        ("stock", "queued", "duckdb", "stock OTLP/HTTP exporter as client (encodes too)"),
    ]  # fmt: skip
    if chdb_missing():
        cases = [c for c in cases if c[2] != "chdb"]
    if quick:  # the gated case and gRPC; the others only in a full run
        cases = cases[:2]
    Case = tuple[str, str, str]
    results: dict[Case, list[dict[str, Any]]] = {(t, a, e): [] for t, a, e, _ in cases}
    plan = [(rep, (t, a, e)) for rep in range(reps) for t, a, e, _ in cases]

    # The latency samples run on the last case's collector (--ack queued, as the default, into
    # DuckDB): it stays up after its measurement instead of another collector starting.
    assert plan[-1][1][1:] == ("queued", "duckdb"), "the last case's collector: latency samples"

    def server_for(step: int) -> Server | None:
        """The collector of ``plan[step]``; past the plan, None (keep the last one)."""
        if step == len(plan):
            return None
        rep, (transport, ack, engine) = plan[step]
        if engine == "chdb":
            return Server(f"chdb://{cfg.workdir / f'collector-{transport}-chdb-{rep}'}", ack)
        return Server(cfg.workdir / f"collector-{transport}-{ack}-{rep}.duckdb", ack)

    # The latency app boots with the first collector and the clients, then waits idle.
    server = server_for(0)
    assert server is not None
    app = LatencyApp()
    pool = Clients(clients)
    samples = 2 if quick else 8
    try:
        app.wait_ready()  # no clock starts while something boots (``throughput`` waits too)
        for step, (rep, case) in enumerate(plan):
            finish, server = throughput(
                server, case[0], pool, per_client, lambda step=step: server_for(step + 1)
            )
            progress(f"[{NAME}] {'/'.join(case)} round {rep + 1}/{reps}")
            if step + 1 < len(plan):  # before the next clock starts
                results[case].append(finish())
        pool.close(wait=False)  # the clients exit during the first latency sample
        waits, latency_traces = latency(server, app, samples)
        progress(f"[{NAME}] root end → searchable: {samples} samples")
        results[case].append(finish(latency_traces))
    except BaseException:
        server.stop()
        app.stop()
        raise
    finally:
        pool.close()
    rows = []
    for transport, ack, engine, label in cases:
        runs = results[(transport, ack, engine)]
        accepted = [r["accepted"] for r in runs]
        written = [r["written"] for r in runs]
        lost = sum(r["spans"] - r["stored"] for r in runs)
        rows.append(
            [
                label,
                num(median(accepted)),
                num(median(written)),
                f"{min(written):,.0f}–{max(written):,.0f}",
                f"{sum(r['stored'] for r in runs):,}/{sum(r['spans'] for r in runs):,}"
                + ("" if lost == 0 else " **LOST**"),
            ]
        )
    throughput_section = Section(
        title="Ingest through `traceduck collector` (spans/s)",
        headers=["client → server", "accepted", "written (sustained)", "range", "spans stored"],
        rows=rows,
        notes=[
            f"{clients} client processes × {per_client} requests of {SPANS_PER_REQUEST} spans "
            f"(root + 9 children per trace), {reps} round(s); collector and clients share the "
            "machine's cores.",
            "written = spans / time from the first request until the collector's writer has "
            "committed every span (polled on its status page every 20 ms); the store is then "
            "checked after SIGTERM: 'spans stored'.",
        ],
    )
    latency_section = Section(
        title="Root end → searchable from another process (ms)",
        headers=["median", "max", "samples"],
        rows=[[f"{median(waits) * 1000:.0f}", f"{max(waits) * 1000:.0f}", str(len(waits))]],
        notes=[
            "App: `traceduck.configure(db=None, otlp_endpoint=...)` (200 ms batch delay, then the "
            "OTLP queue's 200 ms); collector `--ack queued` (writer interval 1 s; the last "
            "ingest case's, once that case is measured and written); reader: "
            "`TraceStore(path, read_only=True).sql(...)` in the benchmark process, polled every "
            "100 ms, closing the file between polls."
        ],
    )
    http_written = median([r["written"] for r in results[("http", "queued", "duckdb")]])
    targets = [
        Target(
            "OTLP/HTTP protobuf ingest, sustained (written)",
            f"{num(http_written)} spans/s",
            f"≥ {num(TARGET_SPANS_PER_S)} spans/s",
            http_written >= TARGET_SPANS_PER_S,
        ),
        Target(
            "root end → searchable via the collector (max)",
            f"{max(waits) * 1000:.0f} ms (median {median(waits) * 1000:.0f} ms)",
            "info",
            None,
        ),
    ]
    if ("stock", "queued", "chdb") in results:
        into = {
            e: median([r["written"] for r in results[("stock", "queued", e)]])
            for e in ("chdb", "duckdb")
        }
        targets.append(
            Target(
                "collector ingest into chdb / into DuckDB, stock OTLP/HTTP exporter (written)",
                f"{into['chdb'] / into['duckdb']:.2f}× ({num(into['chdb'])} vs "
                f"{num(into['duckdb'])} spans/s)",
                "info",
                None,
            )
        )
    return SuiteResult(
        NAME, TITLE, time.perf_counter() - started, [throughput_section, latency_section], targets
    )
