"""The loss warnings read as sentences: one trace 'was' dropped, several 'were'."""

from __future__ import annotations

import logging

import pytest

from traceduck._export._loss import Losses


@pytest.mark.parametrize(
    ("traces", "spans", "said"),
    [(1, 1, "1 trace (1 span) was dropped"), (2, 5, "2 traces (5 spans) were dropped")],
)
def test_an_episode_s_summary_agrees_with_its_count(
    caplog: pytest.LogCaptureFixture, traces: int, spans: int, said: str
) -> None:
    losses = Losses("the write queue of x.duckdb")
    with caplog.at_level(logging.WARNING, logger="traceduck"):
        losses.dropped(traces, spans, "the store cannot take traces")
        losses.end_episode()
    assert f"traceduck: {said} at the write queue of x.duckdb over" in caplog.text
    assert (losses.traces, losses.spans) == (traces, spans)
