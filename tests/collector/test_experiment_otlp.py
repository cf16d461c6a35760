"""The experiment travels over OTLP as the root's ``traceduck.experiment`` attribute: a collector
stores each trace in the experiment its app chose, and any SDK can choose one."""

from __future__ import annotations

import json

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from traceduck import TraceStore
from traceduck.collector import Collector

from .conftest import run_python

APP = """
import json
import traceduck as td
td.configure(db=None, otlp_endpoint={endpoint!r}, experiment="from-configure")
@td.trace
def job():
    return 1
job()
first = td.get_last_trace_id()
exp = td.set_experiment("from-set-experiment")  # no local store: no id here
job()
assert td.flush(10)
print(json.dumps([first, td.get_last_trace_id(), exp.experiment_id]))
"""


def test_traceduck_apps_experiments_reach_the_collector(collector: Collector, db: str) -> None:
    endpoint = f"http://127.0.0.1:{collector.http_port}"
    first, second, local_id = json.loads(run_python(APP.format(endpoint=endpoint)))
    assert local_id is None
    store = TraceStore(db)
    assert store.get_trace(first).info.experiment == "from-configure"
    assert store.get_trace(second).info.experiment == "from-set-experiment"
    ids = {e.name: e.experiment_id for e in store.search_experiments()}
    assert ids == {"Default": "0", "from-configure": "1", "from-set-experiment": "2"}
    assert store.search_traces(experiment_ids=["2"])[0].info.trace_id == second


def test_any_sdk_chooses_an_experiment_with_a_root_attribute(collector: Collector, db: str) -> None:
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.http_endpoint))
    )
    tracer = provider.get_tracer("plain")
    labels = {"traceduck.experiment": "go-service"}
    with tracer.start_as_current_span("root", attributes=labels), tracer.start_span("child"):
        pass
    with tracer.start_as_current_span("unlabelled") as plain:
        pass
    assert provider.force_flush(10_000)
    provider.shutdown()
    store = TraceStore(db)
    (labelled,) = store.search_traces("experiment = 'go-service'")
    assert labelled.info.name == "root" and labelled.info.span_count == 2
    other = store.get_trace(format(plain.get_span_context().trace_id, "032x"))
    assert (other.info.experiment, other.info.experiment_id) == ("Default", "0")
