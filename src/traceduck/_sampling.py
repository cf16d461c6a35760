"""The head sampler of traceduck's own provider: the SDK's ``ParentBased``, deciding in one call.

The SDK's ``ParentBased.should_sample`` reads the parent's span context, then calls the chosen
sampler, which reads it again (for its trace state) and builds a new ``SamplingResult``. This
one reads the parent once and answers for the SDK's static samplers (always on, always off)
itself, with one shared result for a root without attributes; any other sampler (a ratio for
the root) is called as the SDK would call it. The decisions, attributes and trace states are
the SDK's. A traced call's caller CPU, ``benchmarks/profile_hotpath.py``: 13.5 µs, against
14.4 µs with the SDK's sampler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState

__all__ = ["ParentBasedSampler"]

# A root sampled without attributes: the SDK's result holds only the decision, an empty read-only
# mapping of attributes and no trace state, none of which a span changes (it copies them).
_ROOT_SAMPLED = SamplingResult(Decision.RECORD_AND_SAMPLE)


class ParentBasedSampler(ParentBased):
    """``ParentBased(root)`` with the SDK's defaults for sampled and unsampled parents."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if parent is None or not parent.is_valid:
            sampler = self._root
            parent_state = None
            if sampler is ALWAYS_ON and attributes is None:
                return _ROOT_SAMPLED
        else:
            if parent.is_remote:
                on, off = self._remote_parent_sampled, self._remote_parent_not_sampled
            else:
                on, off = self._local_parent_sampled, self._local_parent_not_sampled
            sampler = on if parent.trace_flags.sampled else off
            parent_state = parent.trace_state
        if sampler is ALWAYS_ON:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent_state)
        if sampler is ALWAYS_OFF:
            return SamplingResult(Decision.DROP, None, parent_state)
        return sampler.should_sample(
            parent_context=parent_context,
            trace_id=trace_id,
            name=name,
            kind=kind,
            attributes=attributes,
            links=links,
        )
