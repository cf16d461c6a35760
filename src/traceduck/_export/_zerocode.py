"""The exporter behind ``OTEL_TRACES_EXPORTER=traceduck``: traces with no code change.

OpenTelemetry's auto-configuration (``opentelemetry-instrument``, with ``opentelemetry-distro``)
finds span exporters by name in the ``opentelemetry_traces_exporter`` entry point group and
builds them with no arguments; traceduck registers this class there as ``traceduck``::

    OTEL_TRACES_EXPORTER=traceduck TRACEDUCK_DB=traces.duckdb opentelemetry-instrument python app.py

Every instrumented library's spans (urllib, sqlite3, requests, FastAPI, ...) are then written
to ``$TRACEDUCK_DB`` (default ``./traceduck.duckdb``) as whole traces, with the automatic
context in ``metadata.context``, exactly as ``td.configure()`` would write them, in the
experiment ``$TRACEDUCK_EXPERIMENT`` or ``$MLFLOW_EXPERIMENT_NAME`` names (else Default),
and scrubbed of secrets with the default redaction rules (README, "Redaction").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from .. import _experiment
from .._autocontext import AutoLabels
from .._config import default_db_path
from ._duckdb import DuckDBSpanExporter
from ._redacting import redact_spans

__all__ = ["TraceduckExporter"]


class TraceduckExporter(DuckDBSpanExporter):
    """A span exporter into the default store, buildable with no arguments.

    >>> provider.add_span_processor(BatchSpanProcessor(TraceduckExporter()))  # $TRACEDUCK_DB
    """

    def __init__(self, db: str | None = None, **options: Any) -> None:
        options.setdefault("auto_labels", AutoLabels())  # metadata.context, as configure() adds
        super().__init__(db or default_db_path(), **options)
        # No traceduck span processor stamps the roots when they start: take the experiment
        # (the environment's, or set_experiment's) at export.
        _experiment.STATE.at_export = True

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # No configure() put the redacting exporter in front: scrub here (the default rules,
        # or configure(redact=...)'s if the app called it).
        return super().export(redact_spans(spans))
