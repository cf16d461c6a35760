"""Per-call overhead in the caller's thread: bare call, raw OpenTelemetry SDK, traceduck, MLflow.

Every variant runs in this one process, interleaved round-robin. Each timed batch is followed
by that variant's flush, timed separately: the flush is the deferred (exporter/writer) cost per
trace, reported beside the caller's cost, and it leaves the background threads idle for the
next variant. The raw-SDK baseline is a separate ``TracerProvider`` (not the global one) with a
``BatchSpanProcessor`` (traceduck's settings) and a no-op exporter; traceduck runs behind its
own global provider and BatchSpanProcessor, as ``traceduck.configure(db=...)`` installs them.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ._common import (
    BSP_SETTINGS,
    Config,
    NoopSpanExporter,
    Section,
    SuiteResult,
    Target,
    Variant,
    median,
    paired_ratio,
    progress,
    quartiles,
    ratio,
    raw_sdk_provider,
    round_robin,
    us,
)

NAME = "overhead"
TITLE = "Per-call overhead (caller's thread)"
CHILDREN = 10  # the nested trace: a root and 10 children
GATE = 1.2  # DESIGN: @trace <= 1.2x a raw SDK span
MLFLOW_GATE = 10.0  # issue 6: >= 10x less caller-side overhead than @mlflow.trace


def f(x: int) -> int:
    return x + 1


async def af(x: int) -> int:
    return x + 1


def gen(x: int) -> Iterator[int]:
    yield x
    yield x + 1


def run(cfg: Config) -> SuiteResult:
    quick = cfg.quick
    # quick: 3 rounds (the least a median of paired ratios needs; each costs ~1 s of MLflow
    # flush), with larger batches than before to keep each sample steady.
    rounds, calls, mlflow_calls = (3, 300, 3) if quick else (20, 1000, 20)
    # quick: MLflow's deferred row reuses its batches of the rounds (each MLflow flush ~1 s).
    deferred_reps, deferred_calls, mlflow_deferred = (1, 500, None) if quick else (3, 5000, 50)
    started = time.perf_counter()

    import traceduck

    traceduck.configure(db=str(cfg.workdir / "overhead.duckdb"))

    provider = raw_sdk_provider()
    tracer = provider.get_tracer("bench")
    raw_flush = provider.force_flush
    td_flush = traceduck.flush

    # -- the functions under test ---------------------------------------------------------
    def raw_f(x: int) -> int:
        with tracer.start_as_current_span("f"):
            return f(x)

    td_f = traceduck.trace(f)
    td_f_nocap = traceduck.trace(capture_inputs=False, capture_outputs=False)(f)

    def raw_root(x: int) -> int:
        with tracer.start_as_current_span("root"):
            for _ in range(CHILDREN):
                raw_f(x)
            return x

    @traceduck.trace
    def td_root(x: int) -> int:
        for _ in range(CHILDREN):
            td_f(x)
        return x

    async def raw_af(x: int) -> int:
        with tracer.start_as_current_span("af"):
            return await af(x)

    td_af = traceduck.trace(af)

    def raw_gen(x: int) -> Iterator[int]:
        with tracer.start_as_current_span("gen"):
            yield from gen(x)

    td_gen = traceduck.trace(gen)

    # -- batches ----------------------------------------------------------------------------
    loop = asyncio.new_event_loop()

    def sync_batch(fn: Callable[[int], Any]) -> Callable[[int], None]:
        def batch(n: int) -> None:
            for i in range(n):
                fn(i)

        return batch

    def async_batch(fn: Callable[[int], Coroutine[Any, Any, int]]) -> Callable[[int], None]:
        async def body(n: int) -> None:
            for i in range(n):
                await fn(i)

        def batch(n: int) -> None:
            loop.run_until_complete(body(n))

        return batch

    def gen_batch(fn: Callable[[int], Iterator[int]]) -> Callable[[int], None]:
        def batch(n: int) -> None:
            for i in range(n):
                for _ in fn(i):
                    pass

        return batch

    nested = max(calls // (CHILDREN + 1), 1)
    variants = [
        Variant("a", "(a) bare call `f(x)`", sync_batch(f), calls),
        Variant("b", "(b) raw SDK `start_as_current_span`", sync_batch(raw_f), calls, 1, raw_flush),
        Variant(
            "c", "(c) `@traceduck.trace` (capture on)", sync_batch(td_f), calls, 1, td_flush, "b"
        ),
        Variant(
            "d",
            "(d) `@traceduck.trace(capture_inputs=False, capture_outputs=False)`",
            sync_batch(td_f_nocap),
            calls,
            1,
            td_flush,
            "b",
        ),
        Variant(
            "e_raw",
            "(e) nested, raw SDK: root + 10 children, per trace",
            sync_batch(raw_root),
            nested,
            1,
            raw_flush,
        ),
        Variant(
            "e_td",
            "(e) nested, traceduck: root + 10 children, per trace",
            sync_batch(td_root),
            nested,
            1,
            td_flush,
            "e_raw",
        ),
        Variant("f_async_bare", "(f) async: bare `await af(x)`", async_batch(af), calls),
        Variant(
            "f_async_raw",
            "(f) async: raw SDK span around `await af(x)`",
            async_batch(raw_af),
            calls,
            1,
            raw_flush,
        ),
        Variant(
            "f_async_td",
            "(f) async: `@traceduck.trace`",
            async_batch(td_af),
            calls,
            1,
            td_flush,
            "f_async_raw",
        ),
        Variant("f_gen_bare", "(f) generator (2 items): bare", gen_batch(gen), calls),
        Variant(
            "f_gen_raw",
            "(f) generator: raw SDK span around `yield from gen(x)`",
            gen_batch(raw_gen),
            calls,
            1,
            raw_flush,
        ),
        Variant(
            "f_gen_td",
            "(f) generator: `@traceduck.trace`",
            gen_batch(td_gen),
            calls,
            1,
            td_flush,
            "f_gen_raw",
        ),
    ]
    mlflow_ready = _add_mlflow(variants, cfg, mlflow_calls)
    tag_variants = _tag_variants(traceduck, f, sync_batch, calls, nested, td_flush)
    tag_variants += _redact_variants(traceduck, tracer, raw_flush, td_flush, calls)

    # Warm-up: first-call caches, the DuckDB schema; then each exporter's flush once. Not
    # timed. MLflow's warm-up was its setup's call, whose flush (~1 s, mostly its logging
    # thread's poll interval) runs meanwhile.
    warm = [v for v in [*variants, *tag_variants] if v.key != "mlflow"]
    for variant in warm:
        variant.batch(min(variant.ops, 50))
    for flush in dict.fromkeys(v.flush for v in warm if v.flush is not None):
        flush()
    mlflow_note = mlflow_ready()
    progress(f"[{NAME}] {mlflow_note}")
    by_key = {v.key: v for v in [*variants, *tag_variants]}
    gc.collect()
    gc.freeze()  # setup objects out of the collector's way: each batch's gc.collect() is cheap
    before = traceduck.stats()

    # -- 1. caller's cost, round-robin ------------------------------------------------------
    # The tag/context variants run in the same rounds, so their ratios share the conditions.
    round_robin([*variants, *tag_variants], rounds, NAME)
    expected = sum(
        v.ops * rounds * (CHILDREN + 1 if v.key == "e_td" else 1)
        for v in variants
        if v.flush is td_flush
    ) + sum(
        v.ops * rounds * SPANS_PER_OP.get(v.key, 1)
        for v in tag_variants
        if v.key not in (RAW, "red_raw")
    )

    # -- 2. deferred cost: bigger batches, then the flush -------------------------------------
    deferred_keys = ["b", "c", "d", "e_raw", "e_td", "red_raw", "red_off", "red_on"] + (
        ["mlflow"] if "mlflow" in by_key else []
    )
    deferred = [
        Variant(
            k,
            by_key[k].label,
            by_key[k].batch,
            (mlflow_deferred or mlflow_calls)
            if k == "mlflow"
            else deferred_calls // (CHILDREN + 1)
            if k.startswith("e_")
            else deferred_calls,
            1,
            by_key[k].flush,
        )
        for k in deferred_keys
    ]
    reused = [v for v in deferred if v.key == "mlflow" and mlflow_deferred is None]
    round_robin([v for v in deferred if v not in reused], deferred_reps, f"{NAME}: deferred")
    for v in reused:  # its batches in the rounds were timed alike: batch, then timed flush
        v.samples = by_key[v.key].samples
    expected += sum(
        v.ops * deferred_reps * (CHILDREN + 1 if v.key == "e_td" else 1)
        for v in deferred
        if v.flush is td_flush or v.key in ("red_off", "red_on")
    )
    loop.close()
    gc.unfreeze()  # frozen objects are never finalized: DuckDB's bindings would report leaks
    after = traceduck.stats()
    written = after["written_spans"] - before["written_spans"]
    dropped = after["dropped_spans"] - before["dropped_spans"]
    store = traceduck.TraceStore(str(cfg.workdir / "overhead.duckdb"))
    captured = store.sql("SELECT count(*) FROM spans WHERE inputs IS NOT NULL").column(0)[0]
    scrubbed = {  # a check that the redaction switch worked: rows with the key vs the marker
        text: store.sql(
            "SELECT count(*) FROM spans WHERE name = 'ask' AND contains(inputs, ?)", [text]
        )
        .column(0)[0]
        .as_py()
        for text in (API_KEY, "[REDACTED: api key]")
    }

    # -- report -----------------------------------------------------------------------------
    baselines = {v.baseline for v in variants if v.baseline}
    rows = []
    for v in variants:
        walls = [s.wall_ns for s in v.samples]
        lo, hi = quartiles(walls)
        base = by_key[v.baseline] if v.baseline else None
        same = "1.00×" if v.key in baselines else "–"
        rows.append(
            [
                v.label,
                us(median(walls)),
                f"{us(lo)}–{us(hi)}",
                ratio(paired_ratio(v, base)) if base else same,
                us(median([s.cpu_ns for s in v.samples])),
                ratio(paired_ratio(v, base, "cpu_ns")) if base else same,
            ]
        )
    if "mlflow" not in by_key:
        rows.append(["`@mlflow.trace`", mlflow_note, "", "", "", ""])
    caller = Section(
        title=TITLE,
        headers=[
            "variant",
            "µs/call, wall (median)",
            "p25–p75",
            "× raw SDK equiv. (wall)",
            "caller CPU µs (median)",
            "× raw SDK equiv. (CPU)",
        ],
        rows=rows,
        notes=[
            f"{rounds} rounds, round-robin with a rotating start; per timed batch {calls:,} "
            f"calls ({nested:,} traces for nested"
            + (f", {mlflow_calls:,} for MLflow" if "mlflow" in by_key else "")
            + "). A call is one trace (nested: a trace of 11 spans, timed per trace). Each "
            "batch is followed by its flush (not timed here) so every batch starts with idle "
            "background threads.",
            "wall: the caller's wall time per call. caller CPU: the calling thread's CPU time "
            "per call (`time.thread_time`), which other tenants of a shared machine and waits "
            "for the GIL inflate far less. × raw SDK equiv.: median over rounds of (variant / "
            "its raw-SDK equivalent in the same round): (c), (d) and MLflow against (b), "
            "nested against nested raw, async against async raw, generator against generator raw.",
            f"Raw-SDK baselines: their own `TracerProvider` (not the global one), "
            f"`BatchSpanProcessor({_bsp_args()})`, a no-op exporter. traceduck: "
            "`traceduck.configure(db=<tmp>)`, i.e. its global provider and a "
            "BatchSpanProcessor with the same settings in front of the DuckDB exporter.",
            f"traceduck wrote {written:,} of the {expected:,} spans of this suite"
            + (f"; **dropped {dropped:,}**" if dropped else "; dropped none")
            + f"; {captured.as_py():,} spans in the store carry captured inputs (a check that "
            "capture was on).",
        ],
    )
    if "mlflow" in by_key:
        caller.notes.append(mlflow_note)

    drows = []
    for v in deferred:
        s = v.samples
        flush_ns = median([x.flush_ns or 0.0 for x in s])
        bg_ns = median([x.background_cpu_ns or 0.0 for x in s])
        wall_ns = median([x.wall_ns for x in s])
        drows.append(
            [
                v.label,
                f"{v.ops:,}",
                us(wall_ns, 1),
                us(flush_ns, 1),
                us(bg_ns, 1),
                us(median([x.cpu_ns for x in s]) + bg_ns, 1),
            ]
        )
    deferred_section = Section(
        title="(g) Deferred cost per trace: span processor, exporter, DuckDB writer",
        headers=[
            "variant",
            "traces per batch",
            "caller wall µs/trace",
            "flush µs/trace",
            "background CPU µs/trace",
            "caller CPU + background CPU µs/trace",
        ],
        rows=drows,
        notes=[
            f"{deferred_reps} rounds, round-robin: a batch of traces, then the flush: "
            "`traceduck.flush()` (raw SDK: `provider.force_flush()`; MLflow: "
            "`mlflow.flush_trace_async_logging()`)."
            + (
                f" MLflow's row (--quick): its {rounds} batches of the first table's rounds, "
                "whose flushes were timed the same way."
                if reused
                else ""
            ),
            "flush µs/trace: wall time of that flush / traces in the batch (work the "
            "background threads already did during the batch is not in it). background CPU "
            "µs/trace: CPU time of every thread but the caller's (span processor, exporter, "
            "DuckDB) over batch + flush / traces: the whole deferred cost, wherever it ran.",
            "These batches are long enough for the span processor's 200 ms schedule to fire "
            "mid-batch, so the deferred work runs during the calls and competes with them for "
            "the GIL (and the CPU): caller wall µs/trace here is the sustained cost a "
            "CPU-bound program sees, next to the burst cost in the table above.",
        ],
    )

    cpu_c = paired_ratio(by_key["c"], by_key["b"], "cpu_ns")
    cpu_e = paired_ratio(by_key["e_td"], by_key["e_raw"], "cpu_ns")
    wall_c = paired_ratio(by_key["c"], by_key["b"])
    wall_e = paired_ratio(by_key["e_td"], by_key["e_raw"])
    targets = [
        _gate("`@trace` (capture on) vs raw SDK span", cpu_c, wall_c),
        _gate("nested trace (root + 10) vs raw SDK", cpu_e, wall_e),
        Target(
            "`@trace` without capture / async / generator vs raw SDK (CPU)",
            " / ".join(
                ratio(paired_ratio(by_key[k], by_key[b], "cpu_ns"))
                for k, b in (("d", "b"), ("f_async_td", "f_async_raw"), ("f_gen_td", "f_gen_raw"))
            ),
            "info",
            None,
        ),
    ]
    dkey = {v.key: v for v in deferred}
    targets.append(
        Target(
            f"sustained: caller wall in {deferred_calls:,}-call batches vs raw SDK, (c) / nested",
            f"{ratio(paired_ratio(dkey['c'], dkey['b']))} / "
            f"{ratio(paired_ratio(dkey['e_td'], dkey['e_raw']))}",
            "info",
            None,
        )
    )
    targets.append(
        Target(
            "deferred background CPU per trace, (c) / nested (raw SDK: "
            f"{us(median([x.background_cpu_ns or 0.0 for x in dkey['b'].samples]), 1)} / "
            f"{us(median([x.background_cpu_ns or 0.0 for x in dkey['e_raw'].samples]), 1)})",
            f"{us(median([x.background_cpu_ns or 0.0 for x in dkey['c'].samples]), 1)} µs / "
            f"{us(median([x.background_cpu_ns or 0.0 for x in dkey['e_td'].samples]), 1)} µs",
            "reported",
            None,
        )
    )
    if "mlflow" in by_key:
        bare = median([s.cpu_ns for s in by_key["a"].samples])
        td = median([s.cpu_ns for s in by_key["c"].samples]) - bare
        ml_wall = median([s.wall_ns for s in by_key["mlflow"].samples]) - bare
        ml = median([s.cpu_ns for s in by_key["mlflow"].samples]) - bare
        factor = ml / td if td > 0 else float("inf")
        targets.append(
            Target(
                "caller-side overhead, `@mlflow.trace` / `@traceduck.trace` (CPU)",
                f"{factor:.0f}× ({us(ml, 0)} µs vs {us(td, 1)} µs above a bare call; "
                f"MLflow wall {us(ml_wall, 0)} µs)",
                f"≥ {MLFLOW_GATE:.0f}×",
                factor >= MLFLOW_GATE,
            )
        )
    else:
        targets.append(Target("`@mlflow.trace` comparison", mlflow_note, "≥ 10×", None))

    tag_section, tag_targets = _tag_report(
        [v for v in tag_variants if not v.key.startswith("red_")], by_key, rounds, calls, nested
    )
    targets.extend(tag_targets)
    redact_section, redact_targets = _redact_report(
        by_key, {v.key: v for v in deferred}, rounds, calls, scrubbed
    )
    targets.extend(redact_targets)
    sections = [caller, deferred_section, tag_section, redact_section]
    result = SuiteResult(NAME, TITLE, time.perf_counter() - started, sections, targets)
    if "mlflow" in by_key:
        import mlflow

        result.environment["mlflow"] = mlflow.__version__
    return result


RAW = "casc_raw"  # the raw-SDK equivalent of a cascade tag: not traceduck's spans
SPANS_PER_OP = dict.fromkeys(["casc_none", "casc_seen", "casc_tag", RAW], CHILDREN + 1)
CASCADE_KEY = "traceduck.tag.tenant"


class _StampFromBaggage(SpanProcessor):
    """A cascade tag in plain OpenTelemetry: a processor copying one baggage entry onto every
    span started under it as an attribute (what traceduck's does for ``traceduck.tag.*``)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        value = otel_baggage.get_baggage(self.key, parent_context)
        if value is not None:
            span.set_attribute(self.key, value)


def _raw_cascade_root(f: Callable[[int], int]) -> tuple[Callable[[int], int], Callable[[], Any]]:
    """The raw-SDK equivalent of a nested trace with a cascade tag on its root, and its flush:
    the baseline's provider setup plus the stamping processor; the root gets the attribute at
    creation and puts the baggage entry in its context, each child gets it from the processor."""
    provider = TracerProvider()
    provider.add_span_processor(_StampFromBaggage(CASCADE_KEY))
    provider.add_span_processor(BatchSpanProcessor(NoopSpanExporter(), **BSP_SETTINGS))
    tracer = provider.get_tracer("bench")

    def leaf(x: int) -> int:
        with tracer.start_as_current_span("f"):
            return f(x)

    def root(x: int) -> int:
        with tracer.start_as_current_span("root", attributes={CASCADE_KEY: "acme"}):
            token = otel_context.attach(otel_baggage.set_baggage(CASCADE_KEY, "acme"))
            try:
                for _ in range(CHILDREN):
                    leaf(x)
                return x
            finally:
                otel_context.detach(token)

    return root, provider.force_flush


def _tag_variants(
    traceduck: Any,
    f: Callable[[int], int],
    sync_batch: Callable[[Callable[[int], Any]], Callable[[int], None]],
    calls: int,
    nested: int,
    td_flush: Callable[[], object],
) -> list[Variant]:
    """Issue 8: `@trace` with automatic context off/on, and a nested trace with no cascade tag,
    with a cascade tag seen elsewhere in the process, and with a cascade tag on its root.

    The switches are process-wide (``configure(auto_context=...)``, the cascade flag), so each
    variant sets its own at the start of its batch and restores the default after its flush
    (the deferred work of a batch runs during that flush, under the batch's setting)."""
    from traceduck import _autocontext, _cascade

    def switched(batch: Callable[[int], None], ctx: bool, seen: bool) -> Callable[[int], None]:
        def run(n: int) -> None:
            _autocontext.SETTINGS.enabled = ctx
            _cascade.STATE.active = seen
            batch(n)

        return run

    def flush_and_restore() -> None:
        td_flush()
        _autocontext.SETTINGS.enabled = True  # configure()'s default
        _cascade.STATE.active = False  # the main rows run as in a process without cascade tags

    leaf = traceduck.trace(f)

    @traceduck.trace(name="root")
    def plain_root(x: int) -> int:
        for _ in range(CHILDREN):
            leaf(x)
        return x

    @traceduck.trace(name="root", tags=[traceduck.Tag("tenant", "acme", cascade=True)])
    def cascade_root(x: int) -> int:
        for _ in range(CHILDREN):
            leaf(x)
        return x

    one = sync_batch(leaf)
    tree = sync_batch(plain_root)
    raw_root, raw_flush = _raw_cascade_root(f)
    return [
        Variant("ctx_off", "`@trace`, `auto_context=False`", switched(one, False, False),
                calls, 1, flush_and_restore),
        Variant("ctx_on", "`@trace`, `auto_context=True` (default)", switched(one, True, False),
                calls, 1, flush_and_restore, "ctx_off"),
        Variant("casc_none", "nested (root + 10), no cascade tag in the process",
                switched(tree, True, False), nested, 1, flush_and_restore),
        Variant("casc_seen", "nested, none on this trace but one seen in the process",
                switched(tree, True, True), nested, 1, flush_and_restore, "casc_none"),
        Variant("casc_tag", "nested, cascade tag on the root (stamped on all 11 spans)",
                switched(sync_batch(cascade_root), True, True), nested, 1, flush_and_restore,
                "casc_none"),
        Variant(RAW, "raw SDK equivalent: nested, attribute + baggage entry on the root, "
                "a processor stamping it on the children (× off: vs raw nested)",
                sync_batch(raw_root), nested, 1, raw_flush, "e_raw"),
    ]  # fmt: skip


def _tag_report(
    tag_variants: list[Variant], by_key: dict[str, Variant], rounds: int, calls: int, nested: int
) -> tuple[Section, list[Target]]:
    rows = []
    for v in tag_variants:
        base = by_key[v.baseline] if v.baseline else None
        per_trace = SPANS_PER_OP.get(v.key, 1)
        rows.append(
            [
                v.label,
                us(median([s.wall_ns for s in v.samples])),
                ratio(paired_ratio(v, base)) if base else "1.00×",
                us(median([s.cpu_ns for s in v.samples])),
                ratio(paired_ratio(v, base, "cpu_ns")) if base else "1.00×",
                us(median([s.background_cpu_ns or 0.0 for s in v.samples]), 1),
                f"{per_trace}",
            ]
        )
    section = Section(
        title="(h) Tags and automatic context: the same call with each switch off and on",
        headers=[
            "variant",
            "µs/call, wall (median)",
            "× off (wall)",
            "caller CPU µs (median)",
            "× off (CPU)",
            "background CPU µs/trace",
            "spans per call",
        ],
        rows=rows,
        notes=[
            f"Same {rounds} round-robin rounds as the first table ({calls:,} calls per batch, "
            f"{nested:,} traces for nested). × off: median over rounds of (variant / its 'off' "
            "row in the same round): auto context on vs off; cascade rows vs nested without.",
            "Automatic context is computed once per process and attached in the span "
            "processor's export thread, so it shows in background CPU, not in the caller's "
            "columns. A cascade tag costs the caller one baggage lookup per span once one was "
            "seen in the process, and an attribute set + baggage entry on the spans it covers.",
        ],
    )
    targets = [
        Target(
            "auto context on vs off, `@trace` caller CPU (wall)",
            f"{ratio(paired_ratio(by_key['ctx_on'], by_key['ctx_off'], 'cpu_ns'))} "
            f"({ratio(paired_ratio(by_key['ctx_on'], by_key['ctx_off']))})",
            "info",
            None,
        ),
        Target(
            "cascade: seen in process / tag on root vs none, nested trace caller CPU",
            f"{ratio(paired_ratio(by_key['casc_seen'], by_key['casc_none'], 'cpu_ns'))} / "
            f"{ratio(paired_ratio(by_key['casc_tag'], by_key['casc_none'], 'cpu_ns'))}",
            "info",
            None,
        ),
        Target(
            "cascade tag on the root vs its raw SDK equivalent, nested caller CPU "
            "(the raw SDK's own with / without)",
            f"{ratio(paired_ratio(by_key['casc_tag'], by_key[RAW], 'cpu_ns'))} "
            f"({ratio(paired_ratio(by_key[RAW], by_key['e_raw'], 'cpu_ns'))})",
            "info",
            None,
        ),
    ]
    return section, targets


# Redaction (issue 19): an LLM-style call whose arguments carry a secret, with a new prompt
# each call (no cached verdict for it), redaction off and on (the default rules).
PROMPT = (
    "You are a support assistant. Summarise the customer's last three messages in two "
    "sentences and say whether a refund was promised. Customer #{i}: the parcel arrived "
    "damaged and I was told on the phone that I would get my money back within 5 days."
)
API_KEY = "sk-proj-" + "x7Rb2Qm9" * 5


def _redact_variants(
    traceduck: Any,
    tracer: Any,
    raw_flush: Callable[[], object],
    td_flush: Callable[[], object],
    calls: int,
) -> list[Variant]:
    """``@trace`` over ``ask(prompt, api_key)`` with redaction off and on, and a raw-SDK span
    around the same call. The switch is process-wide (``configure(redact=...)`` sets it): each
    variant sets its own at the start of its batch; after its flush the default (on) is back."""
    from traceduck import _redact

    def ask(prompt: str, api_key: str) -> int:
        return len(prompt)

    def raw_ask(prompt: str, api_key: str) -> int:
        with tracer.start_as_current_span("ask"):
            return ask(prompt, api_key)

    td_ask = traceduck.trace(ask)

    def batch_of(fn: Callable[[str, str], int], on: bool | None) -> Callable[[int], None]:
        def run(n: int) -> None:
            if on is not None:
                _redact.SETTINGS.redactor = _redact.default() if on else None
            for i in range(n):
                fn(PROMPT.format(i=i), API_KEY)

        return run

    def flush_and_restore() -> None:
        td_flush()
        _redact.SETTINGS.redactor = _redact.default()  # configure()'s default

    return [
        Variant("red_raw", "raw SDK span around `ask(prompt, api_key)`",
                batch_of(raw_ask, None), calls, 1, raw_flush),
        Variant("red_off", "`@trace` `ask(prompt, api_key)`, `redact=False`",
                batch_of(td_ask, False), calls, 1, flush_and_restore, "red_raw"),
        Variant("red_on", "`@trace` `ask(prompt, api_key)`, `redact=True` (default)",
                batch_of(td_ask, True), calls, 1, flush_and_restore, "red_raw"),
    ]  # fmt: skip


def _redact_report(
    by_key: dict[str, Variant],
    dkey: dict[str, Variant],
    rounds: int,
    calls: int,
    scrubbed: dict[str, int],
) -> tuple[Section, list[Target]]:
    rows = []
    for key in ("red_raw", "red_off", "red_on"):
        v = by_key[key]
        base = by_key[v.baseline] if v.baseline else None
        rows.append(
            [
                v.label,
                us(median([s.wall_ns for s in v.samples])),
                us(median([s.cpu_ns for s in v.samples])),
                ratio(paired_ratio(v, base, "cpu_ns")) if base else "1.00×",
                us(median([s.background_cpu_ns or 0.0 for s in v.samples]), 1),
            ]
        )
    section = Section(
        title="(i) Redaction: the same call with `redact` off and on",
        headers=[
            "variant",
            "µs/call, wall (median)",
            "caller CPU µs (median)",
            "× raw SDK (CPU)",
            "background CPU µs/trace",
        ],
        rows=rows,
        notes=[
            f"Same {rounds} round-robin rounds as the first table, {calls:,} calls per "
            f"batch. `ask(prompt, api_key)`: a {len(PROMPT.format(i=0))}-character prompt, "
            "new each call (so no "
            "cached verdict), and an `sk-...` key under a key the rules match; with redaction "
            "on, the stored inputs read `[REDACTED: api key]`.",
            "Redaction runs where the span processor exports (its worker thread, or the "
            "flush): the caller's columns should not move; the work shows in background CPU.",
            f"In the store: {scrubbed[API_KEY]:,} `ask` spans hold the key (the "
            f"`redact=False` batches), {scrubbed['[REDACTED: api key]']:,} its marker.",
        ],
    )
    on, off, raw = by_key["red_on"], by_key["red_off"], by_key["red_raw"]
    cpu_on = paired_ratio(on, raw, "cpu_ns")
    targets = [
        _gate("`@trace` with redaction on (default rules) vs raw SDK span", cpu_on,
              paired_ratio(on, raw)),
        Target(
            "redaction on vs off, sustained (table (g)): caller wall; background CPU µs/trace "
            "on / off",
            f"{ratio(paired_ratio(dkey['red_on'], dkey['red_off']))}; "
            f"{us(median([s.background_cpu_ns or 0.0 for s in dkey['red_on'].samples]), 1)} / "
            f"{us(median([s.background_cpu_ns or 0.0 for s in dkey['red_off'].samples]), 1)}",
            "info",
            None,
        ),
        Target(
            "redaction on vs off: caller CPU (wall); background CPU µs/trace on / off",
            f"{ratio(paired_ratio(on, off, 'cpu_ns'))} ({ratio(paired_ratio(on, off))}); "
            f"{us(median([s.background_cpu_ns or 0.0 for s in on.samples]), 1)} / "
            f"{us(median([s.background_cpu_ns or 0.0 for s in off.samples]), 1)}",
            "info",
            None,
        ),
    ]  # fmt: skip
    return section, targets


def _gate(name: str, cpu: float, wall: float) -> Target:
    """Judged on the caller's CPU time; the wall-time ratio stands beside it."""
    return Target(f"{name} (CPU)", f"{ratio(cpu)} (wall {ratio(wall)})", f"≤ {GATE}×", cpu <= GATE)


def _bsp_args() -> str:
    return ", ".join(f"{k}={v:_}" for k, v in BSP_SETTINGS.items())


def _add_mlflow(variants: list[Variant], cfg: Config, calls: int) -> Callable[[], str]:
    """Append an ``@mlflow.trace`` variant when mlflow is importable. Its first call's flush
    runs in a thread; the returned function waits for it, checks that the trace reached
    MLflow's store (else takes the variant out again) and returns a note for the report."""
    if importlib.util.find_spec("mlflow") is None:
        return lambda: "mlflow not installed"
    try:
        import mlflow

        for name in ("mlflow", "alembic", "sqlalchemy"):
            logging.getLogger(name).setLevel(logging.WARNING)
        if importlib.util.find_spec("sqlalchemy") is not None:
            from . import _stores

            backend = "sqlite"  # MLflow 3's default tracking store
            # A copy of an empty store MLflow made earlier: creating one takes ~4 s per run.
            # Its default experiment is used, as before (setting one changes MLflow's cost).
            mlflow.set_tracking_uri(f"sqlite:///{_stores.mlflow_empty_store(cfg.workdir)}")
        else:  # mlflow-skinny has no SQL store
            backend = "file store"
            mlflow.set_tracking_uri((cfg.workdir / "mlruns").as_uri())

        def mf(x: int) -> int:
            return x + 1

        traced = mlflow.trace(mf)
        traced(0)  # the MLflow variant's warm-up
    except Exception as exc:
        note = f"mlflow failed to set up ({type(exc).__name__}: {exc}); row skipped"
        return lambda: note
    first_flush = threading.Thread(target=mlflow.flush_trace_async_logging, daemon=True)
    first_flush.start()

    def flush() -> None:
        mlflow.flush_trace_async_logging()

    def batch(n: int) -> None:
        for i in range(n):
            traced(i)

    label = f"`@mlflow.trace` ({backend} backend, default async logging)"
    variant = Variant("mlflow", label, batch, calls, 1, flush, "b")
    variants.append(variant)

    def ready() -> str:
        first_flush.join()
        try:
            stored = mlflow.search_traces(max_results=1, return_type="list")
        except Exception as exc:
            variants.remove(variant)
            return f"mlflow failed to set up ({type(exc).__name__}: {exc}); row skipped"
        if not stored:
            variants.remove(variant)
            return "mlflow installed, but its traces did not reach its store; row skipped"
        return (
            f"MLflow {mlflow.__version__}: `@mlflow.trace` with a `{backend}` tracking store in "
            "the temp dir, otherwise default settings (async trace logging on)."
        )

    return ready
