"""DataFrames: pandas is a dependency, and both calls that return one say the same when it is
missing (a broken install)."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

from traceduck import TraceduckError, TraceStore


def test_pandas_is_a_dependency_not_an_extra() -> None:
    requirements = importlib.metadata.requires("traceduck") or []
    plain = [r for r in requirements if "extra ==" not in r]
    assert any(re.match(r"pandas\b", r) for r in plain), requirements


def test_both_dataframe_calls_return_dataframes(store_path: Path) -> None:
    import pandas as pd

    store = TraceStore(str(store_path), read_only=True)
    frame = store.search_traces(max_results=3, return_type="pandas")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 3
    side_by_side = store.compare_traces(list(frame["trace_id"]))
    assert isinstance(side_by_side, pd.DataFrame)
    assert side_by_side.attrs["trace_ids"] == list(frame["trace_id"])


def test_without_pandas_both_calls_say_the_same_thing(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TraceStore(str(store_path), read_only=True)
    ids = [t.info.trace_id for t in store.search_traces(max_results=2)]
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now fails
    messages = []
    for call, what in (
        (lambda: store.search_traces(return_type="pandas"), "search_traces(return_type='pandas')"),
        (lambda: store.compare_traces(ids), "compare_traces"),
    ):
        with pytest.raises(TraceduckError) as caught:
            call()
        assert str(caught.value).startswith(f"{what} returns a pandas DataFrame")
        messages.append(str(caught.value)[len(what) :])
    assert messages[0] == messages[1]
    assert "pip install pandas" in messages[0]
