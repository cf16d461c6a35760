"""The status a span gets from what ends it besides an exception: ``sys.exit()`` with success
is OK, with a failure code ERROR; Ctrl-C is ERROR; a generator closed by its consumer is OK
(tests/core/test_decorator_kinds.py). The exception passes through as it was, every time."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import traceduck as td

from ._helpers import PYTHON, exception_event, flush, last_trace, subprocess_env


def _raise_through_trace(exc: BaseException) -> td.Trace:
    """``exc`` raised inside a traced function nested in a ``start_span`` block."""

    @td.trace
    def inner():
        raise exc

    with pytest.raises(type(exc)) as info, td.start_span("outer"):
        inner()
    assert info.value is exc
    flush()
    return last_trace()


@pytest.mark.parametrize(
    "exc",
    [SystemExit(0), SystemExit(None), SystemExit(), SystemExit(False)],
    ids=["code-0", "code-None", "sys.exit()", "code-False"],
)
def test_a_successful_sys_exit_leaves_the_trace_ok(exc: SystemExit) -> None:
    trace = _raise_through_trace(exc)
    assert trace.info.status == "OK"
    assert {s.name: s.status for s in trace.spans} == {"outer": "OK", "inner": "OK"}
    assert all(s.events == [] and s.status_message in (None, "") for s in trace.spans)


@pytest.mark.parametrize(
    ("exc", "message"),
    [(SystemExit(2), "SystemExit: 2"), (SystemExit("bad config"), "SystemExit: bad config")],
    ids=["code-2", "message"],
)
def test_a_failing_sys_exit_marks_the_trace_error(exc: SystemExit, message: str) -> None:
    trace = _raise_through_trace(exc)
    assert trace.info.status == "ERROR"
    for span in trace.spans:
        assert span.status == "ERROR" and span.status_message == message
        assert exception_event(span)["exception.type"] == "SystemExit"


def test_ctrl_c_marks_the_trace_error() -> None:
    trace = _raise_through_trace(KeyboardInterrupt())
    assert trace.info.status == "ERROR"
    assert exception_event(trace.spans[0])["exception.type"] == "KeyboardInterrupt"


def test_a_traced_main_that_calls_sys_exit_0_exits_0_with_an_ok_trace(tmp_path: Path) -> None:
    db = tmp_path / "exit.duckdb"
    script = (
        "import sys, traceduck as td\n"
        f"td.configure(db={str(db)!r})\n"
        "@td.trace\n"
        "def main():\n"
        "    print('done')\n"
        "    sys.exit()\n"
        "main()\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", script], env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, "done\n"), done.stderr
    [trace] = td.TraceStore(str(db)).search_traces()
    assert (trace.info.name, trace.info.status) == ("main", "OK")


class _Uncomparable:
    """An exit code whose comparisons raise (as a numpy array's truth value does)."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("cannot compare")

    __ne__ = __eq__  # type: ignore[assignment]
    __hash__ = object.__hash__

    def __str__(self) -> str:
        return "odd code"


def test_an_exit_code_equal_to_0_but_not_an_int_is_a_failure() -> None:
    # The interpreter exits 1 for any code that is neither None nor an int (it prints it):
    # sys.exit(0.0) is a failed exit, so its span is ERROR (it was OK, as 0.0 == 0).
    trace = _raise_through_trace(SystemExit(0.0))
    assert trace.info.status == "ERROR"
    assert {s.status_message for s in trace.spans} == {"SystemExit: 0.0"}


def test_an_exit_code_whose_comparison_raises_passes_through_unchanged() -> None:
    # Deciding the span's status must not call the user's code: the SystemExit reaches the
    # caller as it was (it was replaced by the code's RuntimeError), and the span is ERROR.
    trace = _raise_through_trace(SystemExit(_Uncomparable()))
    assert trace.info.status == "ERROR"
    assert {s.status_message for s in trace.spans} == {"SystemExit: odd code"}


def test_sys_exit_with_a_float_zero_exits_1() -> None:
    # What the two tests above rely on: CPython's exit status for such codes.
    done = subprocess.run(
        [PYTHON, "-c", "import sys; sys.exit(0.0)"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
