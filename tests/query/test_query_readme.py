"""Every example of the README's "Filter language" section runs against the store it describes
(t1, t2, t3, made here by real tracing) and matches what the section says: filters and the
traces they match, orders, the page-token loop, and each error's exact message."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Status, StatusCode

import traceduck as td

README = Path(__file__).resolve().parents[2] / "README.md"
IDS = {"t1": "a1" * 16, "t2": "b2" * 16, "t3": "c3" * 16}
T0_NS = 1_735_689_600_000 * 1_000_000  # 2025-01-01 00:00:00 UTC
MS = 1_000_000


def _section() -> str:
    text = README.read_text()
    start = text.index("\n## Filter language\n")
    return text[start : text.index("\n## ", start + 1)]


def _tables(section: str) -> list[tuple[list[str], list[list[str]]]]:
    """(header cells, body rows as cells) of each markdown table in the section."""
    tables, block = [], []
    for line in [*section.splitlines(), ""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif block:
            tables.append((block[0], block[2:]))
            block = []
    return tables


def _code(cell: str) -> str:
    """The text of a cell's code span (``...`` or `...`)."""
    found = re.search(r"``(.+?)``|`(.*?)`", cell)
    assert found, f"no code in README cell {cell!r}"
    return found.group(1) if found.group(1) is not None else found.group(2)


def _names(cell: str) -> list[str]:
    return [] if cell == "none" else [n.strip() for n in cell.split(",")]


class _FixedTraceIds(IdGenerator):
    def __init__(self, trace_ids: list[str]) -> None:
        self.trace_ids = [int(t, 16) for t in trace_ids]

    def generate_trace_id(self) -> int:
        return self.trace_ids.pop(0)

    def generate_span_id(self) -> int:
        return random.getrandbits(64)


def _trace(tracer, name, start_ms, spans, *, tags, metadata=None, error=None, attributes=None):
    """A root of ``spans[0]`` and children ``spans[1:]``: (name, type, start ms, ms, error?,
    attributes) each, relative to the trace's start."""
    start = T0_NS + start_ms * MS
    root_name, root_type, _, root_ms, _, _ = spans[0]
    root = tracer.start_span(
        root_name,
        start_time=start,
        attributes={"traceduck.span_type": root_type, **(attributes or {})},
    )
    with otel_trace.use_span(root, end_on_exit=False):
        td.update_current_trace(tags=tags, metadata=metadata)
    parent = otel_trace.set_span_in_context(root)
    for child_name, kind, offset, ms, failed, attrs in spans[1:]:
        child = tracer.start_span(
            child_name,
            context=parent,
            start_time=start + offset * MS,
            attributes={"traceduck.span_type": kind, **attrs},
        )
        if failed:
            child.set_status(Status(StatusCode.ERROR, "retriever timed out"))
        child.end(end_time=start + (offset + ms) * MS)
    if error:
        root.set_status(Status(StatusCode.ERROR, error))
    root.end(end_time=start + root_ms * MS)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The README's three traces, traced into a fresh default store."""
    from traceduck import _experiment

    path = str(tmp_path_factory.mktemp("readme") / "filters.duckdb")
    before = otel_context.get_current()
    _experiment.forget()
    td.configure(db=path, service_name="shop", auto_context=False)
    provider = otel_trace.get_tracer_provider()
    generator = provider.id_generator  # type: ignore[attr-defined]
    provider.id_generator = _FixedTraceIds(list(IDS.values()))  # type: ignore[attr-defined]
    try:
        tracer = provider.get_tracer("readme")
        _trace(
            tracer, "answer", 0,
            [("answer", "CHAIN", 0, 120, False, {}),
             ("retrieve", "RETRIEVER", 5, 40, False, {}),
             ("generate", "LLM", 50, 68, False, {"model": "gpt-4o", "temperature": 0.7})],
            tags={"env": "prod", "cost": 0.02, "model": "gpt-4o", "reviewed": True,
                  "sources": ["web", "s3"], "model.version": "v2"},
            metadata={"user": "ana", "eval": {"accuracy": 0.93}},
        )  # fmt: skip
        _trace(
            tracer, "answer", 60_000,
            [("answer", "CHAIN", 0, 1500, False, {}),
             ("retrieve", "RETRIEVER", 10, 1200, True, {}),
             ("generate", "LLM", 1220, 250, False,
              {"model": "gpt-4o-mini", "temperature": 0.2})],
            tags={"env": "staging", "cost": 3, "sources": ["s3"]},
            metadata={"user": "bo", "eval": {"accuracy": 0.41}},
            error="model timed out",
        )  # fmt: skip
        _trace(
            tracer, "ingest", 120_000, [("ingest", "TOOL", 0, 15, False, {})],
            tags={"env": "prod", "cost": "free", "note": None},
            attributes={"traceduck.experiment": "nightly"},
        )  # fmt: skip
    finally:
        provider.id_generator = generator  # type: ignore[attr-defined]
    assert td.flush(30)
    yield path
    td.shutdown()
    _experiment.forget()
    if otel_context.get_current() is not before:
        otel_context.attach(before)


def test_the_store_is_the_one_the_section_describes(seeded: str) -> None:
    traces = {t.info.trace_id: t for t in td.search_traces(max_results=None, include_spans=True)}
    assert sorted(traces) == sorted(IDS.values())
    t1, t2, t3 = (traces[IDS[n]] for n in ("t1", "t2", "t3"))
    assert (t1.info.name, t1.info.status, t1.info.execution_time_ms) == ("answer", "OK", 120.0)
    assert (t2.info.status, t2.info.execution_time_ms, t2.info.span_count) == ("ERROR", 1500, 3)
    assert (t3.info.experiment, t3.info.tags) == ("nightly", {"env": "prod", "cost": "free",
                                                              "note": None})  # fmt: skip
    assert [s.span_type for s in t1.spans] == ["CHAIN", "RETRIEVER", "LLM"]
    assert t1.info.tags["model.version"] == "v2" and t2.info.metadata["user"] == "bo"


def _filter_rows() -> list[tuple[str, list[str]]]:
    rows = []
    for header, body in _tables(_section()):
        if "filter" in header and "matches" in header:
            f, m = header.index("filter"), header.index("matches")
            rows += [(_code(r[f]), _names(r[m])) for r in body]
    return rows


FILTERS = _filter_rows()


def test_the_section_has_examples_of_every_part() -> None:
    assert len(FILTERS) >= 50
    written = " ".join(f for f, _ in FILTERS)
    for word in ("trace.", "tag.", "request_metadata.", "span.attribute.", "IN (", "NOT LIKE",
                 "ILIKE", "RLIKE", "CONTAINS", "STARTSWITH", "ENDSWITH", "IS NULL", "= null",
                 "OR", "NOT (", "experiment"):  # fmt: skip
        assert word in written, word


@pytest.mark.parametrize(("filter_string", "names"), FILTERS, ids=[f for f, _ in FILTERS])
def test_filter_example(seeded: str, filter_string: str, names: list[str]) -> None:
    found = {t.info.trace_id for t in td.search_traces(filter_string, max_results=None)}
    assert found == {IDS[n] for n in names}
    assert td.TraceStore(seeded).count_traces(filter_string) == len(names)


def _order_rows() -> list[tuple[list[str], list[str]]]:
    for header, body in _tables(_section()):
        if header[:2] == ["order_by", "order"]:
            return [(json.loads(_code(r[0])), _names(r[1])) for r in body]
    raise AssertionError("the section has no order_by table")


ORDERS = _order_rows()


@pytest.mark.parametrize(("order_by", "names"), ORDERS, ids=[json.dumps(o) for o, _ in ORDERS])
def test_order_example(seeded: str, order_by: list[str], names: list[str]) -> None:
    found = [t.info.trace_id for t in td.search_traces(order_by=order_by)]
    assert found == [IDS[n] for n in names]


def test_python_examples_run(seeded: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", _section(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"td": td})


def _error_rows() -> list[tuple[str, str]]:
    for header, body in _tables(_section()):
        if header == ["problem", "filter", "error"]:
            return [(r[1], r[2]) for r in body]
    raise AssertionError("the section has no error table")


ERRORS = _error_rows()


@pytest.mark.parametrize(("given", "message"), ERRORS, ids=[g for g, _ in ERRORS])
def test_error_example(seeded: str, given: str, message: str) -> None:
    code = _code(given)
    if given.startswith("order_by"):
        call = {"order_by": json.loads(code)}
    elif given.startswith("page_token"):
        call = {"page_token": json.loads(code)}
    elif given.startswith("max_results"):
        call = {"max_results": json.loads(code)}
    else:
        call = {"filter_string": code}
    with pytest.raises(td.FilterError) as caught:
        td.search_traces(**call)
    assert caught.value.message == message
    if "filter_string" in call:
        assert caught.value.filter == code and caught.value.position is not None


def test_the_section_is_named_where_users_look() -> None:
    from click.testing import CliRunner

    from traceduck.cli import main

    assert "\n## Filter language\n" in README.read_text()
    help_text = " ".join(CliRunner().invoke(main, ["search", "-h"]).output.split())
    assert 'the "Filter language" section of the README' in help_text
    for function in (td.search_traces, td.TraceStore.search_traces):
        assert 'the "Filter language" section of the README' in " ".join(
            (function.__doc__ or "").split()
        )
