"""A huge exception is stored cut to the documented limit, with a marker, its type and the end
of its traceback; the exception the user's code sees is untouched."""

from __future__ import annotations

import pytest

import traceduck as td
from traceduck._exception import MAX_EXCEPTION_CHARS

from ._helpers import exception_event, flush, last_trace

HUGE = 50_000_000


def test_a_50_mb_message_is_stored_cut_with_a_marker_and_reaches_the_caller_whole() -> None:
    message = "head-of-message " + "x" * (HUGE - 32) + " end-of-message"

    @td.trace
    def parse_payload():
        raise ValueError(message)

    with pytest.raises(ValueError) as info:
        parse_payload()
    assert info.value.args == (message,)  # the same text, not a cut copy
    assert str(info.value) is message or str(info.value) == message

    flush()
    root = last_trace().spans[0]
    assert root.status == "ERROR"
    status = root.status_message or ""
    assert len(status) <= MAX_EXCEPTION_CHARS
    assert status.startswith("ValueError: head-of-message")
    assert status.endswith(f"[truncated {len(message) + len('ValueError: ')} chars]")

    event = exception_event(root)
    assert event["exception.type"] == "ValueError"
    assert len(event["exception.message"]) <= MAX_EXCEPTION_CHARS
    assert event["exception.message"].startswith("head-of-message")
    assert event["exception.message"].endswith(f"[truncated {len(message)} chars]")
    stack = event["exception.stacktrace"]
    assert len(stack) <= MAX_EXCEPTION_CHARS
    assert stack.startswith("Traceback (most recent call last):")
    assert "in parse_payload" in stack
    last_line = stack.rstrip("\n").splitlines()[-1]
    assert last_line.startswith("ValueError: head-of-message")
    assert last_line.endswith(f"[truncated {len(message)} chars]")

    # What the store holds is bounded too, not only what a Span object shows.
    longest = td.sql("SELECT max(length(status_message)) AS n FROM spans").to_pylist()[0]["n"]
    assert longest <= MAX_EXCEPTION_CHARS


def test_a_huge_cause_is_cut_and_the_raised_exception_ends_the_trace() -> None:
    @td.trace
    def load():
        try:
            raise KeyError("k" * 5_000_000)
        except KeyError as exc:
            raise RuntimeError("could not load the model") from exc

    with pytest.raises(RuntimeError) as info:
        load()
    assert len(info.value.__cause__.args[0]) == 5_000_000

    flush()
    root = last_trace().spans[0]
    assert root.status_message == "RuntimeError: could not load the model"
    stack = exception_event(root)["exception.stacktrace"]
    assert len(stack) <= MAX_EXCEPTION_CHARS
    assert "truncated" in stack and "direct cause" in stack
    assert stack.rstrip("\n").endswith("RuntimeError: could not load the model")


def test_a_traceback_longer_than_the_limit_keeps_its_start_and_its_end() -> None:
    def step(n: int) -> None:
        if n == 0:
            raise LookupError("innermost")
        try:
            step(n - 1)
        except LookupError as exc:  # a long chain: each level adds a traceback of its own
            raise LookupError(f"level {n} " + "y" * 200) from exc

    @td.trace
    def walk():
        step(400)

    with pytest.raises(LookupError):
        walk()

    flush()
    stack = exception_event(last_trace().spans[0])["exception.stacktrace"]
    assert len(stack) <= MAX_EXCEPTION_CHARS
    assert stack.startswith("Traceback (most recent call last):")
    assert "... [truncated " in stack
    assert "in walk" in stack  # the outermost frames, at the end of the chain
    assert stack.rstrip("\n").splitlines()[-1].startswith("LookupError: level 400 ")


def test_a_huge_status_description_set_by_hand_is_cut_the_same_way() -> None:
    with td.start_span("check") as span:
        span.set_status("ERROR", "z" * 1_000_000)
    flush()
    status = last_trace().spans[0].status_message or ""
    assert len(status) <= MAX_EXCEPTION_CHARS
    assert status.endswith("[truncated 1000000 chars]")
