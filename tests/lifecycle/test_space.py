"""Space comes back: a store that deleted most of its traces is rewritten smaller, and keeps
working (the writer, readers in other threads and other processes, the histories)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
from pathlib import Path

import traceduck as td
from _support import PYTHON, child_env
from traceduck.store.duckdb._databases import get_database

N = 2000


@td.trace
def work(n: int, blob: str) -> str:
    td.update_current_trace(tags={"n": n}, metadata={"batch": n // 100})
    return blob[:100]


def _fill(db_path: str, n: int = N) -> int:
    """``n`` traces of ~4 KB of incompressible input each; the file's size once checkpointed."""
    for i in range(n):
        work(i, secrets.token_hex(2000))
    assert td.flush(30), td.stats()
    get_database(db_path).close()  # checkpointed: the size is the data's, not the log's
    return os.path.getsize(db_path)


def test_deleting_90_percent_shrinks_the_file_below_half_and_the_store_keeps_working(
    db_path: str, tmp_path: Path
) -> None:
    size = _fill(db_path)
    store = td.TraceStore(db_path)
    store.set_trace_tag(store.search_traces("tags.n = 7")[0].info.trace_id, "best", True)
    last_event = store.sql("SELECT max(event_id) AS e FROM tag_events").to_pylist()[0]["e"]

    assert store.delete_traces("tags.n >= 200") == N - 200

    assert os.path.getsize(db_path) < size / 2
    assert [p.name for p in tmp_path.iterdir() if "compact" in p.name] == []
    assert store.count_traces() == 200
    kept = store.search_traces("tags.best = true", include_spans=True)
    assert [t.info.tags["n"] for t in kept] == [7] and len(kept[0].spans) == 1
    assert kept[0].info.metadata["batch"] == 0
    assert store.sql("SELECT trace_count FROM deletions").to_pylist() == [{"trace_count": 1800}]
    # The writer of this process goes on into the new file; sequences go on from where they were.
    work(-1, "after")
    assert td.flush(10)
    assert store.count_traces("tags.n = -1") == 1
    store.set_trace_tag(kept[0].info.trace_id, "best", False)
    events = store.sql("SELECT max(event_id) AS e FROM tag_events").to_pylist()[0]["e"]
    assert events > last_event
    # Another process opens the rewritten file as any store.
    get_database(db_path).close()
    code = "import traceduck as td, sys; print(td.TraceStore(sys.argv[1]).count_traces())"
    out = subprocess.run(
        [PYTHON, "-c", code, db_path], env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "201"


def test_a_small_deletion_leaves_the_file_for_new_traces(db_path: str) -> None:
    _fill(db_path, 400)
    inode = os.stat(db_path).st_ino
    store = td.TraceStore(db_path)
    assert store.delete_traces("tags.n < 20") == 20  # 5%: in place, no rewrite
    assert os.stat(db_path).st_ino == inode and store.count_traces() == 380
    assert store.sql("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 380}]


def test_readers_in_other_threads_keep_reading_while_the_file_is_rewritten(
    db_path: str,
) -> None:
    _fill(db_path, 600)
    store = td.TraceStore(db_path)
    inode = os.stat(db_path).st_ino
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(len(store.search_traces("tags.n < 60", max_results=None)))
            except BaseException as exc:
                errors.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        assert store.delete_traces("tags.n >= 60") == 540
    finally:
        stop.set()
        for thread in readers:
            thread.join(30)
    assert errors == []
    assert os.stat(db_path).st_ino != inode  # it was rewritten
    assert seen and set(seen) == {60}
    assert store.count_traces() == 60


def test_a_symlinked_store_is_rewritten_where_the_link_points(db_path: str, tmp_path: Path) -> None:
    _fill(db_path, 300)
    real = tmp_path / "real.duckdb"
    shutil.copyfile(db_path, real)
    link = tmp_path / "link.duckdb"
    link.symlink_to(real)
    inode = real.stat().st_ino
    store = td.TraceStore(link)  # the first to open it, by the link's name
    assert store.delete_traces("tags.n >= 30") == 270
    get_database(str(link)).close()
    assert link.is_symlink() and real.stat().st_ino != inode  # the target was rewritten
    assert td.TraceStore(real).count_traces() == 30
