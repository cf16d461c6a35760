"""`traceduck export` and `import`: a round trip keeps traces, spans, tags, metadata, histories,
on both engines."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from _engines import new_store_name
from traceduck import TraceStore

from ._helpers import REQUESTS, run

JSON_COLUMNS = {"tags", "metadata", "attributes", "inputs", "outputs", "events"}


@pytest.fixture
def db(engine_db: str) -> str:
    """Every test here exports from a DuckDB file and from chdb, into a store of the same
    engine (across engines: test_cli_transfer_engines.py)."""
    return engine_db


def new_store(db: str, tmp_path: Path, name: str) -> str:
    """A new, empty store on the engine of ``db``."""
    if db.startswith("chdb://"):
        return new_store_name("chdb", tmp_path)
    return str(tmp_path / f"{name}.duckdb")


def dump(path: str) -> dict[str, Any]:
    """Everything a store holds, through names both engines share, JSON decoded, in a stable
    order: every row of traces, spans and tag_keys, and each trace's tag and metadata history
    (their row ids are renumbered on import, so they are left out)."""
    store = TraceStore(path)

    def rows(query: str) -> list[dict[str, Any]]:
        return [
            {k: json.loads(v) if k in JSON_COLUMNS and v is not None else v for k, v in r.items()}
            for r in store.sql(query).to_pylist()
        ]

    out: dict[str, Any] = {
        "traces": sorted(rows("SELECT * FROM traces"), key=lambda r: r["trace_id"]),
        "spans": sorted(rows("SELECT * FROM spans"), key=lambda r: (r["trace_id"], r["span_id"])),
        "tag_keys": sorted(rows("SELECT * FROM tag_keys"), key=lambda r: r["key"]),
    }
    ids = [t["trace_id"] for t in out["traces"]]
    out["tag_history"] = {t: store.tag_history(t) for t in ids}
    out["metadata_history"] = {t: store.metadata_history(t) for t in ids}
    return out


def _edit_history(db: str) -> None:
    """Tags and metadata changed after the fact, so histories have more than live events."""
    store = TraceStore(db)
    tid = store.search_traces("tags.env = 'dev'")[0].info.trace_id
    assert run("tag", "add", tid, "latest", "--exclusive", "--db", db).code == 0
    assert run("tag", "update", tid, "cost=1.5", "--db", db).code == 0
    assert run("tag", "add", tid, "--append", "source=web", "--db", db).code == 0
    assert run("tag", "rm", tid, "env", "--db", db).code == 0
    assert run("metadata", "log", tid, 'eval={"acc": 0.9, "notes": null}', "--db", db).code == 0
    store.set_trace_tag(tid, "odd", {"nested": [1, "two", None]})


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_round_trip_keeps_everything(db: str, tmp_path: Path, suffix: str) -> None:
    _edit_history(db)
    file = tmp_path / f"all{suffix}"
    r = run("export", "--to", str(file), "--db", db)
    assert r.code == 0 and f"exported {len(REQUESTS) + 2} traces" in r.out
    copy = new_store(db, tmp_path, "copy")
    r = run("import", str(file), "--db", copy)
    assert r.code == 0 and f"imported {len(REQUESTS) + 2} traces" in r.out
    before, after = dump(db), dump(copy)
    for part in before:
        assert after[part] == before[part], part
    # histories read back the same through the API as well
    tid = TraceStore(db).search_traces("tags.latest = true")[0].info.trace_id
    assert TraceStore(copy).tag_history(tid) == TraceStore(db).tag_history(tid)
    assert TraceStore(copy).metadata_history(tid) == TraceStore(db).metadata_history(tid)
    assert TraceStore(copy).get_trace(tid) == TraceStore(db).get_trace(tid)


def test_exclusive_holders_come_back_so_the_tag_still_moves(db: str, tmp_path: Path) -> None:
    _edit_history(db)
    file = tmp_path / "all.parquet"
    run("export", "--to", str(file), "--db", db)
    copy = new_store(db, tmp_path, "copy")
    run("import", str(file), "--db", copy)
    store = TraceStore(copy)
    holder = store.search_traces("tags.latest = true")[0].info.trace_id
    other = store.search_traces("tags.env = 'prod'")[0].info.trace_id
    assert run("tag", "add", other, "latest", "--db", copy).code == 0  # exclusive, from the file
    assert "latest" not in store.get_trace(holder).info.tags
    assert store.tag_history(holder)[-1].operation == "moved"


def test_an_imported_exclusive_tag_does_not_displace_the_stores_holder(
    db: str, tmp_path: Path
) -> None:
    _edit_history(db)
    file = tmp_path / "latest.jsonl"
    run("export", "tags.latest = true", "--to", str(file), "--db", db)
    record = json.loads(file.read_text().splitlines()[1])
    target = new_store(db, tmp_path, "target")
    # the target store has its own holder of 'latest' among its 'answer' traces
    run("export", "tags.env = 'prod'", "--to", str(tmp_path / "prod.jsonl"), "--db", db)
    run("import", str(tmp_path / "prod.jsonl"), "--db", target)
    own = TraceStore(target).search_traces(max_results=1)[0].info.trace_id
    TraceStore(target).set_trace_tag(own, "latest", True, exclusive=True)
    r = run("import", str(file), "--db", target)
    assert r.code == 0, r.err
    holders = TraceStore(target).search_traces("tags.latest = true")
    assert [t.info.trace_id for t in holders] == [own]
    events = TraceStore(target).tag_history(record["trace_id"])
    assert events[-1].operation == "moved" and events[-1].key == "latest"


def test_export_takes_a_filter_and_import_skips_traces_already_there(
    db: str, tmp_path: Path
) -> None:
    file = tmp_path / "errors.jsonl"
    r = run("export", "status = 'ERROR'", "--to", str(file), "--db", db)
    fails = sum(1 for *_, f in REQUESTS if f)
    assert r.code == 0 and f"exported {fails} traces" in r.out
    lines = file.read_text().splitlines()
    assert json.loads(lines[0])["traceduck_export"] == 1 and len(lines) == 1 + fails
    record = json.loads(lines[1])
    assert record["status"] == "ERROR" and {s["name"] for s in record["spans"]} == {
        "answer",
        "retrieve",
    }
    assert isinstance(record["tags"], dict)  # JSON values, not JSON text
    r = run("import", str(file), "--db", db)  # all already in the store
    assert r.code == 0 and "imported 0 traces" in r.out and f"skipped {fails}" in r.out
    assert TraceStore(db).sql("SELECT count(*) AS n FROM traces").to_pylist() == [
        {"n": len(REQUESTS) + 2}
    ]


def test_an_empty_export_is_a_valid_file(db: str, tmp_path: Path) -> None:
    for suffix in (".parquet", ".jsonl"):
        file = tmp_path / f"none{suffix}"
        r = run("export", "name = 'nothing'", "--to", str(file), "--db", db)
        assert r.code == 0 and "exported 0 traces" in r.out
        r = run("import", str(file), "--db", new_store(db, tmp_path, f"empty{suffix}"))
        assert r.code == 0 and "imported 0 traces" in r.out


def test_progress_is_reported_per_chunk(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import traceduck.cli._transfer as cli_transfer
    import traceduck.store._transfer as transfer

    monkeypatch.setattr(transfer, "CHUNK", 4)
    calls: list[tuple[int, int]] = []
    total = len(REQUESTS) + 2
    n = TraceStore(db).export_traces(
        tmp_path / "a.parquet", progress=lambda d, t: calls.append((d, t))
    )
    assert n == total and calls == [(4, total), (8, total), (total, total)]
    calls.clear()
    result = TraceStore(new_store(db, tmp_path, "b")).import_traces(
        tmp_path / "a.parquet", progress=lambda d, t: calls.append((d, t))
    )
    assert (result.imported, result.skipped) == (total, 0)
    assert calls[-1] == (total, total) and len(calls) == 3
    # the command shows a rich progress bar on a terminal once the run is long enough
    screen = io.StringIO()
    monkeypatch.setattr(cli_transfer, "PROGRESS_MIN_TRACES", 1)
    monkeypatch.setattr(cli_transfer, "err_console", Console(file=screen, force_terminal=True))
    assert run("export", "--to", str(tmp_path / "c.jsonl"), "--db", db).code == 0
    assert "exporting" in screen.getvalue()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "x.csv", "unknown file type"),
        (lambda p: p / "missing.jsonl", "no such file"),
        (lambda p: _write(p / "plain.jsonl", '{"a": 1}\n'), "not a traceduck export"),
        (lambda p: _write(p / "junk.parquet", "not parquet"), "not a readable Parquet"),
        (lambda p: _parquet(p / "other.parquet"), "not a traceduck export"),
    ],
)
def test_import_of_a_bad_file_is_one_line(db: str, tmp_path: Path, make: Any, message: str) -> None:
    r = run("import", str(make(tmp_path)), "--db", db)
    assert r.code == 1 and message in r.err and "Traceback" not in r.err
    assert len(r.err.splitlines()) == 1


def test_a_bad_record_imports_nothing(db: str, tmp_path: Path) -> None:
    file = tmp_path / "all.jsonl"
    run("export", "--to", str(file), "--db", db)
    text = file.read_text() + "this is not json\n"
    file.write_text(text)
    copy = new_store(db, tmp_path, "copy")
    r = run("import", str(file), "--db", copy)
    assert r.code == 1 and f"line {len(text.splitlines())}" in r.err
    assert TraceStore(copy).sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 0}]


@pytest.mark.parametrize(("column", "value"), [("tags", ["a", "b"]), ("metadata", "text")])
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_record_whose_tags_or_metadata_are_no_object_imports_nothing(
    db: str, tmp_path: Path, column: str, value: Any, suffix: str
) -> None:
    """A hand-edited file: DuckDB stored such tags as they were (a trace whose tags are a
    list), chdb failed with an AttributeError or TypeError; both now refuse it in one line."""
    file = tmp_path / f"all{suffix}"
    run("export", "--to", str(file), "--db", db)
    if suffix == ".jsonl":
        header, first, *rest = file.read_text().splitlines()
        record = json.loads(first)
        record[column] = value
        file.write_text("\n".join([header, json.dumps(record), *rest]) + "\n")
    else:  # JSON columns hold JSON text
        table = pq.read_table(file)
        texts = table.column(column).to_pylist()
        texts[0] = json.dumps(value)
        index = table.schema.get_field_index(column)
        pq.write_table(table.set_column(index, table.field(index), pa.array(texts)), file)
    copy = new_store(db, tmp_path, "copy")
    r = run("import", str(file), "--db", copy)
    assert r.code == 1, r.out
    assert f"{column} is not a JSON object" in r.err and len(r.err.splitlines()) == 1
    assert TraceStore(copy).sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 0}]


def _edit_first(file: Path, change: Callable[[dict[str, Any]], object]) -> str:
    """Hand-edit the first record of an export file: ``change`` gets it as JSON Lines hold it
    (tags and metadata as JSON values, a field left out where it is null) in either format.
    Returns the record's trace id after the change."""
    if file.suffix == ".jsonl":
        header, first, *rest = file.read_text().splitlines()
        record = json.loads(first)
        change(record)
        file.write_text("\n".join([header, json.dumps(record), *rest]) + "\n")
        return str(record["trace_id"])
    table = pq.read_table(file)  # its JSON columns hold JSON text
    rows = table.to_pylist()
    record = {k: json.loads(v) if k in ("tags", "metadata") else v for k, v in rows[0].items()}
    record = {k: v for k, v in record.items() if v is not None}
    change(record)
    rows[0] = {
        k: json.dumps(record[k]) if k in ("tags", "metadata") and k in record else record.get(k)
        for k in table.column_names
    }
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), file)
    return str(record["trace_id"])


def _drop(*fields: str) -> Callable[[dict[str, Any]], None]:
    return lambda record: [record.pop(f) for f in fields]  # type: ignore[func-returns-value]


BIG = "x" * (64 * 1024)  # one value over the 64 KiB limit once JSON-quoted


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_drop("status", "timestamp_ms", "span_count"), "lacks status, timestamp_ms, span_count"),
        (lambda r: r.update(trace_id=r["trace_id"][:8]), "trace_id is not 32 lower-case hex"),
        (lambda r: r.update(trace_id="z" * 32), "trace_id is not 32 lower-case hex"),
        (lambda r: r.update(status="FINE"), "its status is not OK or ERROR"),
        (lambda r: r["tags"].update({"": 1}), "tag key must not be empty"),
        (lambda r: r["tags"].update({"traceduck.x": 1}), "reserved prefix 'traceduck.'"),
        (lambda r: r["metadata"].update({"a\tb": 1}), "metadata key 'a\\tb' contains a control"),
        (lambda r: r["tags"].update(big=BIG), "tag 'big': value is 65538 bytes of JSON"),
        (lambda r: r["metadata"].update(big=BIG), "metadata 'big': value is 65538 bytes"),
        (lambda r: r["tag_events"][0].update(key=""), "in its tag_events, tag key must not be"),
        (lambda r: r["spans"][0].pop("start_time_ns"), "a span lacks start_time_ns"),
    ],
    ids=[
        "missing-fields", "short-id", "non-hex-id", "status", "empty-key", "reserved-key",
        "control-key", "big-tag", "big-metadata", "history-key", "span-start",
    ],
)  # fmt: skip
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_record_the_live_api_would_refuse_imports_nothing(
    db: str, tmp_path: Path, change: Callable[[dict[str, Any]], object], message: str, suffix: str
) -> None:
    """A hand-made or hand-edited record that lacks a field every trace has, or holds a value
    the live API refuses: DuckDB stored it with NULLs (get_trace then failed) and chdb with
    'OK' or 0 in their place; both stored bad ids, keys and values as they were. Now both
    refuse the file in one line naming the trace and the field."""
    file = tmp_path / f"all{suffix}"
    run("export", "--to", str(file), "--db", db)
    tid = _edit_first(file, change)
    copy = new_store(db, tmp_path, "copy")
    r = run("import", str(file), "--db", copy)
    assert r.code == 1, r.out
    assert f"the record of trace {tid}: " in r.err and message in r.err, r.err
    assert len(r.err.splitlines()) == 1
    assert TraceStore(copy).sql("SELECT count(*) AS n FROM traces").to_pylist() == [{"n": 0}]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_record_without_tags_or_metadata_has_none_on_both_engines(
    db: str, tmp_path: Path, suffix: str
) -> None:
    """No tags: ``{}`` in the SQL surface on both engines (DuckDB stored NULL there, chdb {})."""
    file = tmp_path / f"all{suffix}"
    run("export", "--to", str(file), "--db", db)
    tid = _edit_first(file, _drop("tags", "metadata", "tag_events", "metadata_entries"))
    copy = new_store(db, tmp_path, "copy")
    assert run("import", str(file), "--db", copy).code == 0
    store = TraceStore(copy)
    info = store.get_trace(tid).info
    assert (info.tags, info.metadata) == ({}, {})
    row = store.sql(f"SELECT tags, metadata FROM traces WHERE trace_id = '{tid}'").to_pylist()
    assert [{k: json.loads(v) for k, v in r.items()} for r in row] == [{"tags": {}, "metadata": {}}]


@pytest.mark.parametrize("via", ["cli", "api"])
def test_imports_own_events_have_the_callers_source(db: str, tmp_path: Path, via: str) -> None:
    """The ``moved`` event of an imported exclusive tag that gives way is the command line's
    from ``traceduck import`` and the API's from ``TraceStore.import_traces``, as every other
    edit: it was ``cli`` from Python too."""
    _edit_history(db)
    file = tmp_path / "latest.jsonl"
    run("export", "tags.latest = true", "--to", str(file), "--db", db)
    tid = json.loads(file.read_text().splitlines()[1])["trace_id"]
    target = new_store(db, tmp_path, "target")
    run("export", "tags.env = 'prod'", "--to", str(tmp_path / "prod.jsonl"), "--db", db)
    run("import", str(tmp_path / "prod.jsonl"), "--db", target)
    own = TraceStore(target).search_traces(max_results=1)[0].info.trace_id
    TraceStore(target).set_trace_tag(own, "latest", True, exclusive=True)
    if via == "cli":
        assert run("import", str(file), "--db", target).code == 0
    else:
        assert TraceStore(target).import_traces(file).imported == 1
    moved = TraceStore(target).tag_history(tid)[-1]
    assert (moved.operation, moved.source) == ("moved", via)


def test_export_errors_are_one_line_and_leave_no_file(db: str, tmp_path: Path) -> None:
    r = run("export", "--to", str(tmp_path / "no" / "dir.parquet"), "--db", db)
    assert r.code == 1 and "Traceback" not in r.err and len(r.err.splitlines()) == 1
    assert "No such file" in r.err and "dir.parquet'" in r.err  # not "dir.parquet.part"
    r = run("export", "--to", str(tmp_path / "x.txt"), "--db", db)
    assert r.code == 1 and "unknown file type" in r.err
    r = run("export", "--db", db)
    assert r.code == 2 and "--to" in r.err
    # (the store itself, and its .lock while this process has it open)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("store.duckdb")] == []


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _parquet(path: Path) -> Path:
    pq.write_table(pa.table({"a": [1, 2]}), path)
    return path
