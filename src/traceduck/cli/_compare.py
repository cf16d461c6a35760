"""``traceduck compare``: traces side by side, the rows that differ highlighted."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from .._compare import compare_infos, resolve_infos
from ._common import (
    CONTEXT,
    console,
    db_option,
    echo_json,
    friendly_errors,
    open_store,
    printable,
)

__all__ = ["compare"]

MAX_CELL = 60


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = printable(text)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


@click.command(context_settings=CONTEXT)
@click.argument("trace_ids", nargs=-1, metavar="[ID_PREFIX]...")
@click.option("--where", "where", default=None, help="Compare the traces matching this filter.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--key", "keys", multiple=True, help="Only these rows (tags.k, status, or a key).")
@click.option("--diff", "only_diff", is_flag=True, help="Only the rows that differ.")
@click.option("--json", "as_json", is_flag=True, help="Print {field: {trace_id: value}} as JSON.")
@db_option
@friendly_errors
def compare(
    trace_ids: tuple[str, ...],
    where: str | None,
    limit: int,
    keys: tuple[str, ...],
    only_diff: bool,
    as_json: bool,
    db: str | None,
) -> None:
    """Show traces side by side: status, latency, tags and metadata; differing rows in yellow.

    \b
    Example:
      traceduck compare 3fa2 b81c 77e0
      traceduck compare --where "tags.experiment = 'lr-sweep'" --limit 5 --key tags.lr
    """
    if bool(trace_ids) == bool(where):
        raise click.UsageError("give trace ids or --where FILTER (one of the two)")
    store = open_store(db)
    infos = resolve_infos(store, list(trace_ids) if trace_ids else str(where), limit)
    if not infos:
        if as_json:
            echo_json({})  # a script reads JSON whatever matched
        else:
            console.print("no traces match", style="yellow")
        return
    table_data = compare_infos(infos, list(keys) or None)
    differ = set(table_data.differing())
    rows = [
        (row, values)
        for row, values in zip(table_data.rows, table_data.values)
        if not only_diff or row in differ
    ]
    if as_json:
        out = {row: dict(zip(table_data.trace_ids, values)) for row, values in rows}
        echo_json(out)
        return
    table = Table(title=f"{len(infos)} traces, {len(differ)} rows differ")
    table.add_column("field", style="bold", no_wrap=True)
    for column in table_data.columns:
        table.add_column(column, overflow="fold")
    for row, values in rows:
        style = "yellow" if row in differ else ""
        marker = Text(("≠ " if row in differ else "  ") + printable(row), style=style)
        table.add_row(marker, *(Text(_cell(v), style=style) for v in values))
    console.print(table)
