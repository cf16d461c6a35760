"""The code of MLflow's "Setting Trace Tags" page runs with only the import changed, and gives
the answers MLflow would give.

The page's code blocks (MLflow 3.3 docs, docs/genai/tracing/attach-tags, Apache-2.0) are below as
they are written there, except ``import mlflow`` -> ``import traceduck as mlflow`` and
``from mlflow import MlflowClient`` -> ``from traceduck import MlflowClient``, and the page's
placeholder ``"your-trace-id"`` given a real id, as a reader would. The test seeds the traces
the page's searches expect (an experiment "1", errors, slow traces, tagged requests), runs the
blocks in page order in one namespace, then checks what they found and changed.
"""

from __future__ import annotations

import contextlib
import io
import time

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.trace import Status, StatusCode

import traceduck as td

MS = 1_000_000  # ns

ACTIVE_TRACES = """
import traceduck as mlflow


@mlflow.trace
def my_func(x):
    mlflow.update_current_trace(tags={"fruit": "apple"})
    return x + 1


result = my_func(5)
"""

SERVICE_TAGS = """
import traceduck as mlflow
import os


@mlflow.trace
def process_user_request(user_id: str, session_id: str, request_text: str):
    # Add comprehensive tags for production monitoring
    mlflow.update_current_trace(
        tags={
            "user_id": user_id,
            "session_id": session_id,
            "environment": os.getenv("ENVIRONMENT", "development"),
            "model_version": os.getenv("MODEL_VERSION", "1.0.0"),
            "request_type": "chat_completion",
            "priority": "high" if "urgent" in request_text.lower() else "normal",
        }
    )

    response = f"Processed: {request_text}"
    return response
"""

BASIC_USAGE = """
import traceduck as mlflow
from traceduck import MlflowClient

# Using fluent API
mlflow.set_trace_tag(trace_id="your-trace-id", key="tag_key", value="tag_value")
mlflow.delete_trace_tag(trace_id="your-trace-id", key="tag_key")

# Using client API
client = MlflowClient()
client.set_trace_tag(trace_id="your-trace-id", key="tag_key", value="tag_value")
client.delete_trace_tag(trace_id="your-trace-id", key="tag_key")
"""

BATCH_TAGGING = """
import traceduck as mlflow
from traceduck import MlflowClient

client = MlflowClient()

# Find traces that need to be tagged
traces = mlflow.search_traces(
    experiment_ids=["1"], filter_string="status = 'ERROR'", max_results=100
)

# Add tags to all error traces
for trace in traces:
    client.set_trace_tag(trace_id=trace.info.trace_id, key="needs_review", value="true")
    client.set_trace_tag(
        trace_id=trace.info.trace_id, key="review_priority", value="high"
    )
"""

PERFORMANCE_TAGGING = """
import traceduck as mlflow
from traceduck import MlflowClient
from datetime import datetime

client = MlflowClient()

# Get slow traces for analysis
traces = mlflow.search_traces(
    experiment_ids=["1"], filter_string="execution_time_ms > 5000", max_results=50
)

# Tag based on performance analysis
for trace in traces:
    execution_time = trace.info.execution_time_ms

    if execution_time > 10000:
        performance_tag = "very_slow"
    elif execution_time > 7500:
        performance_tag = "slow"
    else:
        performance_tag = "moderate"

    client.set_trace_tag(
        trace_id=trace.info.trace_id, key="performance_category", value=performance_tag
    )
"""

BASIC_FILTERING = """
import traceduck as mlflow

# Find traces by environment
production_traces = mlflow.search_traces(
    experiment_ids=["1"], filter_string="tags.environment = 'production'"
)

# Find traces by user
user_traces = mlflow.search_traces(
    experiment_ids=["1"], filter_string="tags.user_id = 'user_123'"
)

# Find high-priority traces
urgent_traces = mlflow.search_traces(
    experiment_ids=["1"], filter_string="tags.priority = 'high'"
)
"""

COMPLEX_QUERIES = '''
# Combine tag filters with other conditions
slow_production_errors = mlflow.search_traces(
    experiment_ids=["1"],
    filter_string="""
        tags.environment = 'production'
        AND status = 'ERROR'
        AND execution_time_ms > 5000
    """,
)

# Find traces that need review
review_traces = mlflow.search_traces(
    experiment_ids=["1"],
    filter_string="tags.needs_review = 'true'",
    order_by=["timestamp_ms DESC"],
)

# Find specific user sessions
session_traces = mlflow.search_traces(
    experiment_ids=["1"],
    filter_string="tags.session_id = 'session_456'",
    order_by=["timestamp_ms ASC"],
)
'''

MONITORING_QUERIES = '''
# Monitor A/B test performance
control_group = mlflow.search_traces(
    experiment_ids=["1"], filter_string="tags.experiment_variant = 'control'"
)

treatment_group = mlflow.search_traces(
    experiment_ids=["1"], filter_string="tags.experiment_variant = 'treatment'"
)

# Find traces needing escalation
escalation_traces = mlflow.search_traces(
    experiment_ids=["1"],
    filter_string="""
        tags.sla_tier = 'critical'
        AND execution_time_ms > 30000
    """,
)
'''

ANALYTICS = """
# Generate performance reports by model version
model_v1_traces = mlflow.search_traces(
    experiment_ids=["1"], filter_string="tags.model_version = 'v1.0.0'"
)

model_v2_traces = mlflow.search_traces(
    experiment_ids=["1"], filter_string="tags.model_version = 'v2.0.0'"
)

# Compare performance
v1_avg_time = sum(t.info.execution_time_ms for t in model_v1_traces) / len(
    model_v1_traces
)
v2_avg_time = sum(t.info.execution_time_ms for t in model_v2_traces) / len(
    model_v2_traces
)

print(f"V1 average time: {v1_avg_time:.2f}ms")
print(f"V2 average time: {v2_avg_time:.2f}ms")
"""


def _slow_trace(name: str, start_ns: int, ms: int, tags: dict[str, str], error: bool) -> str:
    """A finished trace that took ``ms`` milliseconds (explicit OpenTelemetry span times)."""
    tracer = otel_trace.get_tracer("seed")
    span = tracer.start_span(name, start_time=start_ns)
    with otel_trace.use_span(span, end_on_exit=False):
        td.update_current_trace(tags=tags)
    if error:
        span.set_status(Status(StatusCode.ERROR, "upstream timed out"))
    span.end(end_time=start_ns + ms * MS)
    return format(span.get_span_context().trace_id, "032x")


def _run(code: str, namespace: dict) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<mlflow docs>", "exec"), namespace)
    return out.getvalue()


def test_setting_trace_tags_page(monkeypatch: pytest.MonkeyPatch) -> None:
    base = time.time_ns() - 600_000 * MS
    # A slow error in the Default experiment: the page's searches of experiment "1" skip it.
    outside = _slow_trace("outside", base, 9_000, {"environment": "production"}, error=True)
    experiment = td.set_experiment("docs-tagging")
    assert experiment.experiment_id == "1"  # the first experiment of a new store, as in MLflow
    seeded = {
        "A": _slow_trace(
            "checkout", base + 60_000 * MS, 6_000,
            {"environment": "production", "sla_tier": "critical",
             "experiment_variant": "control", "model_version": "v1.0.0"},
            error=True,
        ),
        "B": _slow_trace(
            "checkout", base + 120_000 * MS, 8_000,
            {"environment": "production", "experiment_variant": "treatment",
             "model_version": "v2.0.0"},
            error=False,
        ),
        "C": _slow_trace(
            "report", base + 180_000 * MS, 12_000, {"model_version": "v2.0.0"}, error=True
        ),
        "D": _slow_trace(
            "export", base + 240_000 * MS, 31_000, {"sla_tier": "critical"}, error=False
        ),
    }  # fmt: skip
    ns: dict = {}

    # Setting Tags on Active Traces
    _run(ACTIVE_TRACES, ns)
    assert ns["result"] == 6
    fruit = td.get_last_trace_id()
    _run(SERVICE_TAGS, ns)
    requests = {}
    for key, env, version, args in (
        ("urgent", "production", "v1.0.0", ("user_123", "session_456", "URGENT: refund please")),
        ("thanks", "production", "v1.0.0", ("user_123", "session_456", "thanks!")),
        ("staging", "staging", "v2.0.0", ("user_7", "session_9", "hello")),
    ):
        monkeypatch.setenv("ENVIRONMENT", env)
        monkeypatch.setenv("MODEL_VERSION", version)
        assert ns["process_user_request"](*args) == f"Processed: {args[2]}"
        requests[key] = td.get_last_trace_id()
        time.sleep(0.003)  # timestamps are milliseconds: keep the requests' order unambiguous
    assert td.flush(10)

    # Setting Tags on Finished Traces: basic usage (set, then delete, by both APIs)
    _run(BASIC_USAGE.replace("your-trace-id", fruit), ns)
    fruit_trace = td.get_trace(fruit)
    assert fruit_trace.info.tags == {"fruit": "apple"}
    assert fruit_trace.info.experiment_id == "1"
    assert [(e.key, e.operation) for e in td.tag_history(fruit)][-4:] == [
        ("tag_key", "set"), ("tag_key", "delete"), ("tag_key", "set"), ("tag_key", "delete"),
    ]  # fmt: skip

    # Batch tagging: every error trace of experiment 1, and no other
    _run(BATCH_TAGGING, ns)
    assert {t.info.trace_id for t in ns["traces"]} == {seeded["A"], seeded["C"]}
    for trace_id in (seeded["A"], seeded["C"]):
        tags = td.get_trace(trace_id).info.tags
        assert tags["needs_review"] == "true" and tags["review_priority"] == "high"
    assert "needs_review" not in td.get_trace(outside).info.tags

    # Performance analysis tagging
    _run(PERFORMANCE_TAGGING, ns)
    categories = {
        k: td.get_trace(v).info.tags.get("performance_category") for k, v in seeded.items()
    }
    assert categories == {"A": "moderate", "B": "slow", "C": "very_slow", "D": "very_slow"}
    assert "performance_category" not in td.get_trace(outside).info.tags

    # Searching and filtering with tags
    def ids(name: str) -> set[str]:
        return {t.info.trace_id for t in ns[name]}

    _run(BASIC_FILTERING, ns)
    assert ids("production_traces") == {requests["urgent"], requests["thanks"], seeded["A"],
                                        seeded["B"]}  # fmt: skip
    assert ids("user_traces") == {requests["urgent"], requests["thanks"]}
    assert ids("urgent_traces") == {requests["urgent"]}
    _run(COMPLEX_QUERIES, ns)
    assert ids("slow_production_errors") == {seeded["A"]}
    assert [t.info.trace_id for t in ns["review_traces"]] == [seeded["C"], seeded["A"]]
    assert [t.info.trace_id for t in ns["session_traces"]] == [
        requests["urgent"],
        requests["thanks"],
    ]
    _run(MONITORING_QUERIES, ns)
    assert ids("control_group") == {seeded["A"]}
    assert ids("treatment_group") == {seeded["B"]}
    assert ids("escalation_traces") == {seeded["D"]}
    printed = _run(ANALYTICS, ns)
    assert ids("model_v1_traces") == {requests["urgent"], requests["thanks"], seeded["A"]}
    assert ids("model_v2_traces") == {requests["staging"], seeded["B"], seeded["C"]}
    v1 = [td.get_trace(t).info.execution_time_ms for t in ids("model_v1_traces")]
    v2 = [td.get_trace(t).info.execution_time_ms for t in ids("model_v2_traces")]
    assert printed == (
        f"V1 average time: {sum(v1) / len(v1):.2f}ms\nV2 average time: {sum(v2) / len(v2):.2f}ms\n"
    )
    assert sum(v2) / len(v2) > 6_600  # B and C, 8 s and 12 s, dominate
