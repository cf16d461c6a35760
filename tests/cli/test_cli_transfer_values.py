"""Any JSON tag or metadata value survives export and import, in both formats."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traceduck import TraceStore

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12
).filter(lambda k: not k.startswith("traceduck."))
COUNTER = itertools.count()


@pytest.fixture(scope="module")
def source(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[TraceStore, Path]:
    work = tmp_path_factory.mktemp("values")
    seed = work / "seed.parquet"
    TraceStore(template_db, read_only=True).export_traces(seed, "name = 'ingest'")
    store = TraceStore(work / "source.duckdb")
    store.import_traces(seed)
    return store, work


@settings(max_examples=8, deadline=None)
@given(tags=st.dictionaries(KEYS, VALUES, min_size=1, max_size=4), meta=VALUES)
def test_tag_and_metadata_values_round_trip(
    source: tuple[TraceStore, Path], tags: dict, meta: object
) -> None:
    store, work = source
    tid = store.search_traces("name = 'ingest'", max_results=1)[0].info.trace_id
    for key, value in tags.items():
        store.set_trace_tag(tid, key, value)
    store.log_metadata(tid, {"value": meta})
    for suffix in (".parquet", ".jsonl"):
        n = next(COUNTER)
        file = work / f"out-{n}{suffix}"
        store.export_traces(file, f"trace_id = '{tid}'")
        copy = TraceStore(work / f"copy-{n}.duckdb")
        assert copy.import_traces(file).imported == 1
        assert copy.get_trace(tid) == store.get_trace(tid)
        assert copy.tag_history(tid) == store.tag_history(tid)
        assert copy.metadata_history(tid) == store.metadata_history(tid)
