"""OTLP out: configure(otlp_*) and the standard OTEL_EXPORTER_OTLP_* variables send traceduck's
spans, captured data, tags and metadata to any OTLP receiver (here a real traceduck collector)."""

from __future__ import annotations

import json

import pytest

import traceduck as td
from traceduck import TraceStore
from traceduck._context import TraceState
from traceduck._export._otlp import label_attributes
from traceduck.collector import Collector
from traceduck.errors import ConfigError

from .conftest import run_python

APP = """
import json
import traceduck as td
td.configure(**json.loads({kwargs!r}))

@td.trace(span_type="LLM")
def ask(q):
    td.update_current_trace(tags={{"env": "prod", "n": 2, "cfg": {{"t": 0.5}}}},
                            metadata={{"user": "u1"}})
    return "answer to " + q

ask("why")
print(td.get_last_trace_id())
assert td.flush(10) is {sent}
"""


def _app(sent: bool = True, **kwargs: object) -> str:
    """The app's source; ``sent``: what its flush() answers (False: OTLP did not take it)."""
    return APP.format(kwargs=json.dumps(kwargs), sent=sent)


def _check(store: TraceStore, trace_id: str) -> None:
    trace = store.get_trace(trace_id)
    assert trace.info.tags == {"env": "prod", "n": 2, "cfg": {"t": 0.5}}
    assert trace.info.metadata["user"] == "u1"
    (span,) = trace.spans
    assert (span.name, span.span_type, span.inputs, span.outputs) == (
        "ask",
        "LLM",
        {"q": "why"},
        "answer to why",
    )


def test_env_variables_alone_turn_otlp_on(collector: Collector, db: str) -> None:
    out = run_python(
        _app(db=None),
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.http_port}",
    )
    _check(TraceStore(db), out.strip())


def test_traces_variables_grpc_beside_duckdb(collector: Collector, db: str, tmp_path) -> None:
    local = str(tmp_path / "local.duckdb")
    out = run_python(
        _app(db=local),
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://{collector.grpc_endpoint}",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",  # the _TRACES_ variable wins
    )
    trace_id = out.strip()
    _check(TraceStore(db), trace_id)
    _check(TraceStore(local, read_only=True), trace_id)  # the local store got it too


def test_configure_grpc_with_a_bare_loopback_address(collector: Collector, db: str) -> None:
    out = run_python(_app(db=None, otlp_endpoint=collector.grpc_endpoint, otlp_protocol="grpc"))
    _check(TraceStore(db), out.strip())


def test_configure_headers_carry_the_token(db: str) -> None:
    with Collector(db, http_port=0, grpc_port=None, token="t0k", ack="written") as guarded:
        endpoint = f"http://127.0.0.1:{guarded.http_port}"
        # The app runs on regardless, and its flush() says the spans were not delivered.
        denied = run_python(_app(sent=False, db=None, otlp_endpoint=endpoint))
        out = run_python(
            _app(db=None, otlp_endpoint=endpoint, otlp_headers={"Authorization": "Bearer t0k"})
        )
        store = TraceStore(db)
        _check(store, out.strip())
        assert [t.info.trace_id for t in store.search_traces()] == [out.strip()]
        assert denied.strip() != out.strip()


def test_bad_protocol_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="otlp_protocol"):
        td.configure(db=None, otlp_endpoint="http://127.0.0.1:1", otlp_protocol="http/json")


def test_label_encoding_keeps_json_types() -> None:
    state = TraceState(
        tags={"s": "x", "i": 3, "f": 1.5, "b": False, "l": ["a", "b"], "mix": [1, "a"],
              "d": {"k": 1}, "none": None, "empty": [], "big": 2**64},
        exclusive={"s": "global"},
        metadata=[("m", 1, 10), ("m", {"latest": True}, 20)],
    )  # fmt: skip
    attrs = label_attributes(state)
    assert attrs["traceduck.tag.s"] == "x" and attrs["traceduck.tag.i"] == 3
    assert attrs["traceduck.tag.f"] == 1.5 and attrs["traceduck.tag.b"] is False
    assert attrs["traceduck.tag.l"] == ("a", "b")
    assert attrs["traceduck.metadata.m"] == '{"latest":true}'
    assert set(attrs["traceduck.json_keys"]) == {
        "traceduck.tag.mix",
        "traceduck.tag.d",
        "traceduck.tag.none",
        "traceduck.tag.empty",
        "traceduck.tag.big",
        "traceduck.metadata.m",
    }
    assert json.loads(attrs["traceduck.tag.big"]) == 2**64
    assert attrs["traceduck.exclusive_keys"] == ("s",)
    assert attrs["traceduck.exclusive_scope.s"] == "global"
