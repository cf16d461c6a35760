"""``configure()``: where traces go and what is captured. Everything has a default.

traceduck adds one span processor to the OpenTelemetry ``TracerProvider``: the application's own
SDK provider if it set one (so its other exporters keep working and plain OpenTelemetry spans
join our traces), else a provider of ours, installed as the global one. Reconfiguring swaps the
processor's target; the previous exporter is flushed and shut down.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, TraceIdRatioBased

from . import _autocontext, _experiment, _redact, _runtime
from ._autocontext import AutoLabels
from ._cascade import STATE as _CASCADE
from ._cascade import on_start as _cascade_on_start
from ._constants import (
    DEFAULT_DB,
    DEFAULT_QUEUE_BYTES,
    DEFAULT_QUEUE_TRACES,
    ENV_DB,
    EXPERIMENT_ATTR,
)
from ._context import REGISTRY
from ._duration import parse_duration
from ._export._duckdb import DuckDBSpanExporter
from ._export._otlp import OtlpFanOut, make_exporter, resolve
from ._export._processor import DEFAULT_BLOCK_TIMEOUT_S, BlockingSpanProcessor
from ._export._redacting import RedactingExporter
from ._sampling import ParentBasedSampler
from .errors import ConfigError
from .store._sink import close_all

__all__ = ["configure", "default_db_path", "flush", "shutdown", "stats"]

_UNSET: Any = object()
_lock = threading.RLock()


class _Switch(SpanProcessor):
    """The one processor traceduck adds to a provider; configure() swaps what it feeds."""

    def __init__(self) -> None:
        self.target: BlockingSpanProcessor | None = None

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        experiment = _experiment.STATE.stamp  # None for Default: one read per span
        if experiment is not None:
            parent = span.parent
            if parent is None or parent.is_remote:
                span.set_attribute(EXPERIMENT_ATTR, experiment)
        # Cascade tags (baggage -> traceduck.tag.* attributes): local roots always look, other
        # spans only once a cascade tag was seen in this process. Common case: two lookups.
        if _CASCADE.active:
            _cascade_on_start(span, parent_context)
        else:
            parent = span.parent
            if parent is None or parent.is_remote:
                _cascade_on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        target = self.target
        if target is not None:
            target.on_end(span)

    def shutdown(self) -> None:
        target = self.target
        if target is not None:
            target.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        target = self.target
        return target.force_flush(timeout_millis) if target is not None else True


class _State:
    provider: TracerProvider | None = None
    owns_provider = False
    switch: _Switch | None = None
    exporter: DuckDBSpanExporter | None = None
    otlp: OtlpFanOut | None = None
    options: dict[str, Any] = {}  # noqa: RUF012 - one process-wide instance
    atexit_registered = False


_S = _State()


def default_db_path() -> str:
    """``$TRACEDUCK_DB``, else ``./traceduck.duckdb``."""
    return os.environ.get(ENV_DB) or DEFAULT_DB


def configure(
    db: str | None = _UNSET,
    *,
    otlp_endpoint: str | None = None,
    otlp_protocol: str | None = None,
    otlp_headers: dict[str, str] | None = None,
    service_name: str | None = None,
    sample_ratio: float = 1.0,
    capture_inputs: bool = True,
    capture_outputs: bool = True,
    auto_context: bool = True,
    redact: Any = True,
    max_queue_traces: int = DEFAULT_QUEUE_TRACES,
    max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
    block_timeout_s: float = DEFAULT_BLOCK_TIMEOUT_S,
    flush_interval_s: float = 1.0,
    retention: Any = None,
    experiment: str | None = None,
) -> None:
    """Set where traces go and what is recorded; optional, and safe to call again.

    >>> import traceduck as td
    >>> td.configure(db="traces.duckdb", service_name="search-api", sample_ratio=0.5)

    ``db``: the DuckDB file (default ``$TRACEDUCK_DB`` or ``./traceduck.duckdb``); ``None`` for no
    local store. A locked, unwritable or corrupt path never makes this raise or stall. Bad
    arguments raise ``ConfigError``.

    Finished traces wait for the writer in a queue bounded by ``max_queue_traces`` and
    ``max_queue_bytes``. When it is full while the store writes, the tracing thread waits for
    room (nothing is lost); when the store cannot take traces (unwritable, corrupt, or no write
    for ``block_timeout_s``, e.g. locked by another process that long), the oldest are dropped,
    counted in ``stats()`` and reported on the ``traceduck`` logger once per episode. No call
    waits longer than ``block_timeout_s``.

    ``retention``: a duration ("30d", "12h", "90m", "45s"); traces whose root started longer
    ago are deleted in the background by the writer thread (README, "Deleting traces and
    retention").

    ``experiment``: the experiment (MLflow's grouping) of the traces that start from now on, as
    ``set_experiment(name)`` but without touching the store; None keeps an earlier choice, else
    ``$TRACEDUCK_EXPERIMENT``, else ``$MLFLOW_EXPERIMENT_NAME``, else "Default".

    ``redact``: secrets are scrubbed from what spans carry before it is stored or sent (see
    the README's "Redaction"): ``True`` (the default rules), ``False``, a list of extra
    patterns (``str`` key patterns, compiled ``re.Pattern`` for keys and text), or a callable
    ``(path, value) -> value`` that decides instead of the rules.
    """
    if experiment is not None:
        _experiment.check_name(experiment)
    if not isinstance(sample_ratio, (int, float)) or not 0.0 <= float(sample_ratio) <= 1.0:
        raise ConfigError(f"sample_ratio must be a number from 0 to 1, not {sample_ratio!r}")
    if not isinstance(max_queue_traces, int) or max_queue_traces < 1:
        raise ConfigError(f"max_queue_traces must be a positive int, not {max_queue_traces!r}")
    if otlp_protocol not in (None, "http/protobuf", "grpc"):
        raise ConfigError(f"otlp_protocol must be 'http/protobuf' or 'grpc', not {otlp_protocol!r}")
    if not isinstance(max_queue_bytes, int) or max_queue_bytes < 1:
        raise ConfigError(f"max_queue_bytes must be a positive int, not {max_queue_bytes!r}")
    if not isinstance(block_timeout_s, (int, float)) or block_timeout_s < 0:
        raise ConfigError(f"block_timeout_s must be a number >= 0, not {block_timeout_s!r}")
    if not isinstance(flush_interval_s, (int, float)) or flush_interval_s <= 0:
        raise ConfigError(f"flush_interval_s must be a positive number, not {flush_interval_s!r}")
    for name, flag in (
        ("capture_inputs", capture_inputs),
        ("capture_outputs", capture_outputs),
        ("auto_context", auto_context),
    ):
        if not isinstance(flag, bool):  # "no" and "false" are truthy
            raise ConfigError(f"{name} must be True or False, not {flag!r}")
    retention_s = None if retention is None else parse_duration(retention, "retention")
    redactor = _redact.redactor_for(redact)
    path = default_db_path() if db is _UNSET else db
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"db must be a path or None, not {path!r}")
    with _lock:
        _redact.SETTINGS.use(redactor)
        _install(
            {
                "db": None if path is None else os.fspath(path),
                "service_name": service_name,
                "sample_ratio": float(sample_ratio),
                "max_queue_traces": max_queue_traces,
                "max_queue_bytes": max_queue_bytes,
                "block_timeout_s": float(block_timeout_s),
                "flush_interval_s": flush_interval_s,
                "auto_context": auto_context,
                "otlp_endpoint": otlp_endpoint,
                "otlp_protocol": otlp_protocol,
                "otlp_headers": otlp_headers,
                "retention_s": retention_s,
            }
        )
        _runtime.capture_inputs = bool(capture_inputs)
        _runtime.capture_outputs = bool(capture_outputs)
        _experiment.choose(experiment)


def ensure_configured() -> Any:
    """The tracer, configuring the defaults on first use."""
    tracer = _runtime.tracer
    if tracer is None:
        with _lock:
            if _runtime.tracer is None:
                configure()
            tracer = _runtime.tracer
    return tracer


def _install(options: dict[str, Any]) -> None:
    _runtime.enabled = _runtime.enabled_by_environment()
    provider = _provider(options)
    old = _S.exporter
    exporter = None
    auto_labels = AutoLabels()
    if options["db"] is not None:
        exporter = DuckDBSpanExporter(
            options["db"],
            max_queue_traces=options["max_queue_traces"],
            max_queue_bytes=options["max_queue_bytes"],
            block_timeout_s=options["block_timeout_s"],
            interval_s=options["flush_interval_s"],
            auto_labels=auto_labels,
            retention_s=options.get("retention_s"),
        )
    otlp = _otlp_fanout(options, exporter, auto_labels)
    inner = otlp if otlp is not None else exporter
    processor = (
        BlockingSpanProcessor(RedactingExporter(inner), block_timeout_s=options["block_timeout_s"])
        if inner is not None
        else None
    )
    assert _S.switch is not None
    previous = _S.switch.target
    _S.switch.target = processor
    _S.exporter = exporter
    _S.otlp = otlp
    _S.options = options
    _runtime.collecting = processor is not None
    _autocontext.SETTINGS.enabled = bool(options["auto_context"])
    tracer = provider.get_tracer("traceduck")
    if _S.owns_provider:  # the SDK caches tracers: give ours the new sampler and resource
        tracer.sampler = provider.sampler
        tracer.resource = provider.resource
    _runtime.tracer = tracer
    if previous is not None:
        previous.shutdown()
    elif old is not None:
        old.shutdown()
    if not _S.atexit_registered:
        atexit.register(shutdown)
        _S.atexit_registered = True
        _shutdown_with_multiprocessing_child()


def _otlp_fanout(
    options: dict[str, Any], exporter: Any, auto_labels: AutoLabels
) -> OtlpFanOut | None:
    """The OTLP exporter (configure()'s otlp_* or the OTEL_EXPORTER_OTLP_* variables) feeding
    beside ``exporter``; None when OTLP is off. A broken setup is reported, never raised."""
    target = resolve(options["otlp_endpoint"], options["otlp_protocol"], options["otlp_headers"])
    if target is None:
        return None
    try:
        return OtlpFanOut(make_exporter(**target), exporter, auto_labels)
    except Exception as exc:
        _runtime.report_internal_error("OTLP exporter setup", exc)
        return None


def _provider(options: dict[str, Any]) -> TracerProvider:
    """The SDK provider to add our processor to: the app's, or ours (installed globally)."""
    if _S.provider is None:
        current = otel_trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            _S.provider, _S.owns_provider = current, False
        else:
            resource = Resource.create(
                {"service.name": options["service_name"]} if options["service_name"] else {}
            )
            sampler = _sampler(options["sample_ratio"])
            _S.provider = TracerProvider(resource=resource, sampler=sampler)
            _S.owns_provider = True
            otel_trace.set_tracer_provider(_S.provider)
            if otel_trace.get_tracer_provider() is not _S.provider:  # someone else won the race
                _S.provider = otel_trace.get_tracer_provider()  # type: ignore[assignment]
                _S.owns_provider = False
        _S.switch = _Switch()
        _S.provider.add_span_processor(_S.switch)
    elif _S.owns_provider:
        # A new resource or sampler applies to tracers created from now on.
        if options["service_name"]:
            _S.provider._resource = Resource.create({"service.name": options["service_name"]})
        _S.provider.sampler = _sampler(options["sample_ratio"])
    return _S.provider


def _sampler(ratio: float) -> Any:
    """Head sampling by trace id; the always-on sampler when nothing is dropped (cheaper)."""
    return ParentBasedSampler(ALWAYS_ON if ratio >= 1.0 else TraceIdRatioBased(ratio))


def flush(timeout_s: float | None = None) -> bool:
    """Block until every trace finished before the call is written: True, or False on
    timeout, an unusable store (then at once), or when traces were dropped since the previous
    flush (whether before or during this one). Never raises.

    ``timeout_s`` bounds the whole call, except the span processor's hand-over of its queue
    (at most 16,384 spans) to the exporter."""
    try:
        switch = _S.switch
        if switch is None or switch.target is None:
            return True
        if getattr(_runtime.EXPORTING, "on", False) or (
            threading.current_thread().name.startswith("traceduck-")
        ):
            return False  # user code that an export or one of traceduck's threads runs
        deadline = None if timeout_s is None else time.monotonic() + timeout_s

        def remaining() -> float | None:
            return None if deadline is None else max(deadline - time.monotonic(), 0.0)

        processor = switch.target
        processor.export_queued()
        otlp = _S.otlp
        sent = True
        if otlp is not None:
            left = remaining()
            sent = otlp.flush_otlp(int((30.0 if left is None else left) * 1000))
        exporter = _S.exporter
        written = True if exporter is None else exporter.flush(remaining())
        otlp_dropped = otlp is not None and otlp.unreported_drops()
        return not processor.losses.unreported() and not otlp_dropped and written and sent
    except Exception as exc:
        _runtime.report_internal_error("flush", exc)
        return False


def shutdown() -> None:
    """Flush (a few seconds at most) and stop exporting. Registered with ``atexit``."""
    try:
        with _lock:
            switch = _S.switch
            if switch is not None and switch.target is not None:
                target, switch.target = switch.target, None
                _runtime.collecting = False
                target.shutdown()
                _autocontext.report_to_run(_stats_of(_S.exporter, target))
            _S.exporter = None
            _S.otlp = None
            _runtime.STASH.clear()
            REGISTRY.states.clear()
        close_all()
    except Exception as exc:
        _runtime.report_internal_error("shutdown", exc)


def _shutdown_with_multiprocessing_child(*_: Any) -> None:
    """In a multiprocessing child, also shut down when its target returns: such a child ends
    with ``os._exit()``, which skips ``atexit`` (its queued traces would be lost). A child
    ended by a signal (``Pool.terminate()``) still loses what it had not written. In a parent,
    its children started by fork (which inherit this configuration) are given the same hook."""
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return
    try:
        import multiprocessing.util

        if mp.parent_process() is not None:
            multiprocessing.util.Finalize(None, shutdown, exitpriority=0)
        else:
            multiprocessing.util.register_after_fork(_S, _shutdown_with_multiprocessing_child)
    except Exception as exc:
        _runtime.report_internal_error("multiprocessing exit hook", exc)


def _new_lock() -> None:
    global _lock
    _lock = threading.RLock()  # another thread may have held it at the fork


_runtime.after_fork_in_child(_new_lock)


def stats() -> dict[str, Any]:
    """Counters: queued_traces, written_traces, dropped_traces, dropped_spans, last_error, ..."""
    return _stats_of(_S.exporter, _S.switch.target if _S.switch is not None else None)


def _stats_of(exporter: DuckDBSpanExporter | None, processor: Any) -> dict[str, Any]:
    base = {
        "db": _S.options.get("db"),
        "queued_traces": 0,
        "pending_spans": 0,
        "written_traces": 0,
        "written_spans": 0,
        "dropped_traces": 0,
        "dropped_spans": _runtime.stash_dropped,
        "last_error": None,
    }
    if exporter is not None:
        base.update(exporter.stats())
    if processor is not None:  # what the span processor's queue dropped
        base["dropped_traces"] += processor.losses.traces
        base["dropped_spans"] += processor.losses.spans
    otlp = _S.otlp
    if otlp is not None:  # what OTLP's own queue turned away (a slow or gone collector)
        base["otlp_dropped_spans"] = otlp.queue.dropped_spans
    return base


def current_db() -> str | None:
    """The configured store path (configuring the defaults if needed)."""
    if not _S.options:
        ensure_configured()
    return _S.options.get("db")
