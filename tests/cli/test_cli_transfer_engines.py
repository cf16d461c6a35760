"""Export from one engine, import into the other: the migration from a DuckDB file to ClickHouse
(and back) keeps traces, spans, tags, metadata, both histories and the exclusive tag keys."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from _engines import new_store_name
from traceduck import TraceStore

from ._helpers import REQUESTS, run
from .test_cli_transfer import _edit_history, dump

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def duck(template_db: str, tmp_path: Path) -> str:
    """A DuckDB copy of the seeded store with a history of edits after the fact."""
    path = str(tmp_path / "source.duckdb")
    shutil.copyfile(template_db, path)
    _edit_history(path)
    store = TraceStore(path)
    store.register_tag("note", exclusive=False)
    store.register_tag("champion", exclusive=True, scope="global")
    for trace in store.search_traces("status = 'ERROR'"):  # the second takes it: "moved"
        store.set_trace_tag(trace.info.trace_id, "champion")
    return path


def test_duckdb_to_chdb_to_duckdb_keeps_everything(duck: str, tmp_path: Path) -> None:
    n = len(REQUESTS) + 2
    chdb = new_store_name("chdb", tmp_path)
    r = run("export", "--to", str(tmp_path / "from-duckdb.parquet"), "--db", duck)
    assert r.code == 0, r.err
    r = run("import", str(tmp_path / "from-duckdb.parquet"), "--db", chdb)
    assert r.code == 0 and f"imported {n} traces" in r.out, r.err
    r = run("export", "--to", str(tmp_path / "from-chdb.jsonl"), "--db", chdb)
    assert r.code == 0 and f"exported {n} traces" in r.out, r.err
    back = str(tmp_path / "back.duckdb")
    r = run("import", str(tmp_path / "from-chdb.jsonl"), "--db", back)
    assert r.code == 0 and f"imported {n} traces" in r.out, r.err

    source = dump(duck)
    assert sum(len(h) for h in source["tag_history"].values()) > 2 * n  # edits, not only live
    assert any(e.operation == "moved" for h in source["tag_history"].values() for e in h)
    for copy in (chdb, back):
        copied = dump(copy)
        for part in source:
            assert copied[part] == source[part], (copy, part)


def test_the_imported_store_answers_and_edits_like_the_source(duck: str, tmp_path: Path) -> None:
    file = tmp_path / "all.parquet"
    TraceStore(duck).export_traces(file)
    chdb = TraceStore(new_store_name("chdb", tmp_path))
    chdb.import_traces(file)
    source = TraceStore(duck)
    for flt in (
        "tags.cost > 0.035",
        "tags.source CONTAINS 'web'",
        "tags.latest = true",
        "metadata.eval.acc >= 0.9",
        "status = 'ERROR' AND span.name = 'retrieve'",
        "tags.env IS NULL",
    ):
        expected = [t.info.trace_id for t in source.search_traces(flt, max_results=None)]
        assert [t.info.trace_id for t in chdb.search_traces(flt, max_results=None)] == expected
    # the exclusive keys came along: tagging another trace moves the tag there
    holder = chdb.search_traces("tags.latest = true")[0].info.trace_id
    other = chdb.search_traces("tags.env = 'prod'")[0].info.trace_id
    chdb.set_trace_tag(other, "latest")
    assert [t.info.trace_id for t in chdb.search_traces("tags.latest = true")] == [other]
    assert chdb.tag_history(holder)[-1].operation == "moved"
    assert chdb.exclusive_tag_keys() == source.exclusive_tag_keys()


def test_both_engines_write_the_same_file_layout(duck: str, tmp_path: Path) -> None:
    chdb = TraceStore(new_store_name("chdb", tmp_path))
    TraceStore(duck).export_traces(tmp_path / "a.parquet")
    chdb.import_traces(tmp_path / "a.parquet")
    chdb.export_traces(tmp_path / "b.parquet")
    a, b = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "b.parquet")
    assert b.schema.remove_metadata() == a.schema.remove_metadata()
    assert b.schema.metadata == a.schema.metadata  # the header: format and tag keys
    assert b.column("trace_id").to_pylist() == a.column("trace_id").to_pylist()  # oldest first


def test_an_import_cut_short_and_run_again_adds_nothing_twice(
    duck: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import that fails after a chunk's spans, history and metadata went in, but before
    its trace rows, leaves traces no reader sees; running it again completes them, once."""
    import traceduck.store.clickhouse._import as transfer

    file = tmp_path / "all.parquet"
    TraceStore(duck).export_traces(file)
    name = new_store_name("chdb", tmp_path)

    def cut(*args: object) -> None:
        raise OSError("the connection dropped")

    with monkeypatch.context() as patch:
        patch.setattr(transfer, "_trace_rows", cut)
        r = run("import", str(file), "--db", name)
    assert r.code == 1 and "connection dropped" in r.err
    assert TraceStore(name).count_traces() == 0
    r = run("import", str(file), "--db", name)
    assert r.code == 0 and f"imported {len(REQUESTS) + 2} traces" in r.out
    copied, source = dump(name), dump(duck)
    for part in source:
        assert copied[part] == source[part], part


def test_the_readmes_migration_example_runs(
    duck: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Stores section's commands, with its server swapped for chdb (the suite's
    ClickHouse) and its file for the seeded store."""
    text = README.read_text()
    section = text[text.index("**Moving a DuckDB file to ClickHouse.**") :]
    start = section.index("```bash\n") + 8
    block = section[start : section.index("```", start)]
    server = "clickhouse://ana:secret@ch-1:8123/traceduck"
    chdb = new_store_name("chdb", tmp_path)
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(duck, tmp_path / "traces.duckdb")
    outputs = []
    assert len(block.strip().splitlines()) == 3
    for line in block.strip().splitlines():
        words = shlex.split(line.replace(server, chdb))
        assert (words[0] == "traceduck" and server in line) or "export" in line
        r = run(*words[1:])
        assert r.code == 0, (line, r.err)
        outputs.append(r.out)
    assert f"imported {len(REQUESTS) + 2} traces" in outputs[1]
    prod = [t.info.trace_id[:8] for t in TraceStore(duck).search_traces("tags.env = 'prod'")]
    assert len(prod) == 3 and all(p in outputs[2] for p in prod)  # (ids shown by prefix)
    assert outputs[2].count('env="prod"') == 3
