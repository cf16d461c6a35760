"""Redaction on the OTLP path: what an app sends to a real `traceduck collector` (stock OTLP
exporter) is scrubbed before it leaves the app, and so is its local store beside it."""

from __future__ import annotations

import pytest

from traceduck import TraceStore
from traceduck.collector import Collector

from .conftest import run_python

KEY = "sk-proj-Abcdefghijklmnopqrstuvwx123"
APP = """
import traceduck as td
td.configure(db={local!r}, otlp_endpoint={endpoint!r}, otlp_protocol={protocol!r})

@td.trace
def call_llm(prompt, api_key, headers):
    td.update_current_trace(tags={{"session": "sess-42", "env": "prod"}},
                            metadata={{"auth": {{"user": "bob"}}, "note": "key {key}"}})
    raise PermissionError("rejected key {key}")

try:
    call_llm("use {key}", "{key}", {{"Authorization": "Bearer 9f8e7d6c5b4a3921", "accept": "json"}})
except PermissionError:
    pass
print(td.get_last_trace_id())
assert td.flush(10)
"""


def _check(store: TraceStore, trace_id: str) -> None:
    trace = store.get_trace(trace_id)
    (root,) = trace.spans
    assert root.inputs == {
        "prompt": "use [REDACTED: api key]",
        "api_key": "[REDACTED: api key]",
        "headers": {"Authorization": "[REDACTED: authorization]", "accept": "json"},
    }
    assert root.status_message == "PermissionError: rejected key [REDACTED: api key]"
    (event,) = root.events
    assert event["attributes"]["exception.message"] == "rejected key [REDACTED: api key]"
    assert trace.info.tags == {"session": "[REDACTED: session]", "env": "prod"}
    assert trace.info.metadata["auth"] == "[REDACTED: auth]"
    assert trace.info.metadata["note"] == "key [REDACTED: api key]"
    everything = "\n".join(
        str(store.sql(f"SELECT * FROM {table}").to_pylist())
        for table in ("traces", "spans", "trace_metadata", "tag_events")
    )
    assert KEY not in everything and "sess-42" not in everything and "9f8e7d" not in everything


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_what_goes_out_by_otlp_is_scrubbed(
    collector: Collector, db: str, tmp_path, protocol: str
) -> None:
    endpoint = (
        f"http://127.0.0.1:{collector.http_port}"
        if protocol == "http/protobuf"
        else f"http://{collector.grpc_endpoint}"
    )
    local = str(tmp_path / "local.duckdb")
    out = run_python(APP.format(local=local, endpoint=endpoint, protocol=protocol, key=KEY))
    trace_id = out.strip()
    _check(TraceStore(db), trace_id)  # what the collector received
    _check(TraceStore(local, read_only=True), trace_id)  # and the app's own store
