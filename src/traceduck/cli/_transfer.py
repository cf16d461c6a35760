"""``traceduck export`` and ``traceduck import``: traces with spans, tags, metadata and history."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ._common import CONTEXT, SOURCE, console, db_option, err_console, friendly_errors, open_store

# Progress bars appear when stderr is a terminal and the work is big enough to wait for.
PROGRESS_MIN_TRACES = 2000


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if total < PROGRESS_MIN_TRACES:
            return
        if task is None:
            bar.start()
            task = bar.add_task(label, total=total)
        bar.update(task, completed=done)

    try:
        yield update
    finally:
        bar.stop()


@click.command(context_settings=CONTEXT)
@click.argument("filter_string", required=False, default=None, metavar="[FILTER]")
@click.option(
    "--to",
    "path",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="FILE.parquet or FILE.jsonl (one trace per line).",
)
@db_option
@friendly_errors
def export(filter_string: str | None, path: str, db: str | None) -> None:
    """Export traces with their spans, tags, metadata and history to Parquet or JSON Lines.

    \b
    Example:
      traceduck export "status = 'ERROR'" --to errors.parquet
      traceduck export --to all.jsonl
    """
    store = open_store(db)
    with _progress("exporting") as progress:
        count = store.export_traces(path, filter_string, progress=progress)
    console.print(f"exported {count} trace{'s' if count != 1 else ''} to {path}", markup=False)


@click.command("import", context_settings=CONTEXT)
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@db_option
@friendly_errors
def import_(path: str, db: str | None) -> None:
    """Import a file written by `traceduck export` (traces already in the store are skipped).

    \b
    Example:
      traceduck import errors.parquet --db copy.duckdb
    """
    store = open_store(db, create=True)
    with _progress("importing") as progress:
        result = store.import_traces(path, progress=progress, source=SOURCE)
    skipped = f", skipped {result.skipped} already in the store" if result.skipped else ""
    console.print(
        f"imported {result.imported} trace{'s' if result.imported != 1 else ''} "
        f"into {store.path}{skipped}",
        markup=False,
    )
