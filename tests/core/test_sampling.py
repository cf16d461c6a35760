"""traceduck's head sampler decides exactly as the SDK's ParentBased it stands in for."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from traceduck._sampling import ParentBasedSampler

TRACE_ID = 0x0123456789ABCDEF0123456789ABCDEF


def _parent(*, remote: bool, sampled: bool, state: TraceState | None) -> object:
    context = SpanContext(
        TRACE_ID,
        0x1122334455667788,
        is_remote=remote,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
        trace_state=state,
    )
    return trace.set_span_in_context(NonRecordingSpan(context))


PARENTS = {
    "no context": None,
    "invalid parent": trace.set_span_in_context(NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)),
    **{
        f"{'remote' if remote else 'local'} {'sampled' if sampled else 'unsampled'}"
        f"{' with state' if state else ''}": _parent(remote=remote, sampled=sampled, state=state)
        for remote in (False, True)
        for sampled in (False, True)
        for state in (None, TraceState([("vendor", "v1")]))
    },
}


@pytest.mark.parametrize("root", [ALWAYS_ON, ALWAYS_OFF, TraceIdRatioBased(0.5)], ids=str)
@pytest.mark.parametrize("attributes", [None, {"a": 1}], ids=["no attributes", "attributes"])
@pytest.mark.parametrize("parent", list(PARENTS.values()), ids=list(PARENTS))
@pytest.mark.parametrize("trace_id", [TRACE_ID, 1, 2**128 - 1], ids=["id", "low id", "high id"])
def test_decisions_attributes_and_trace_state_are_the_sdks(
    root: object, attributes: dict | None, parent: object, trace_id: int
) -> None:
    ours = ParentBasedSampler(root).should_sample(parent, trace_id, "f", attributes=attributes)
    sdk = ParentBased(root).should_sample(parent, trace_id, "f", attributes=attributes)
    assert ours.decision == sdk.decision
    assert dict(ours.attributes) == dict(sdk.attributes)
    assert ours.trace_state == sdk.trace_state


def test_its_description_is_the_sdks() -> None:
    assert ParentBasedSampler(ALWAYS_ON).get_description() == (
        ParentBased(ALWAYS_ON).get_description()
    )


def test_configure_s_sampler_is_it_and_a_ratio_still_decides_roots() -> None:
    from traceduck import _config

    assert isinstance(_config._sampler(1.0), ParentBasedSampler)
    never = _config._sampler(0.0)
    assert isinstance(never, ParentBasedSampler)
    assert never.should_sample(None, TRACE_ID, "f").decision.name == "DROP"
    assert _config._sampler(1.0).should_sample(None, TRACE_ID, "f").decision.name == (
        "RECORD_AND_SAMPLE"
    )
