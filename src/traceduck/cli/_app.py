"""The command group and its commands."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click
from rich.table import Table
from rich.tree import Tree

from ..model import Span, Trace
from ._common import console, db_option, friendly_errors, open_store

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="traceduck")
def main() -> None:
    """Trace Python apps into DuckDB and ask questions of the traces.

    \b
    Example:
      traceduck demo
      traceduck search "status = 'ERROR' AND tags.env = 'prod'"
    """


@main.command(context_settings=CONTEXT)
@click.argument("filter_string", required=False, default=None, metavar="[FILTER]")
@click.option("--order-by", "order_by", multiple=True, help="e.g. 'execution_time_ms DESC'.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for scripts.")
@click.option("--show-sql", is_flag=True, help="Print the SQL the filter compiles to.")
@db_option
@friendly_errors
def search(
    filter_string: str | None,
    order_by: tuple[str, ...],
    limit: int,
    as_json: bool,
    show_sql: bool,
    db: str | None,
) -> None:
    """Search traces with the filter language.

    \b
    Example:
      traceduck search "tags.env = 'prod' AND execution_time_ms > 500" --limit 5
    """
    store = open_store(db, read_only=False)
    if show_sql:
        from ..query import explain

        with store._db.lease() as cur:
            sql, params = explain(cur, filter_string, list(order_by) or None, limit)
        console.print(sql, markup=False, highlight=False)
        console.print(f"-- params: {params!r}", markup=False, highlight=False)
    traces = store.search_traces(filter_string, list(order_by) or None, max_results=limit)
    if as_json:
        click.echo(json.dumps([_info_dict(t) for t in traces], indent=2, default=str))
        return
    console.print(traces_table(traces))


def traces_table(traces: list[Trace]) -> Table:
    table = Table(show_lines=False)
    for column in ("trace id", "name", "status", "time (UTC)", "latency ms", "spans", "tags"):
        table.add_column(column, overflow="fold")
    for t in traces:
        i = t.info
        when = datetime.fromtimestamp(i.timestamp_ms / 1000, timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        status = "[green]OK[/]" if i.status == "OK" else f"[red]{i.status}[/]"
        tags = " ".join(f"{k}={json.dumps(v)}" for k, v in i.tags.items())
        table.add_row(
            i.trace_id[:12],
            i.name or "",
            status,
            when,
            f"{i.execution_time_ms:.1f}",
            str(i.span_count),
            tags,
        )
    return table


def _info_dict(trace: Trace) -> dict[str, object]:
    return trace.to_dict()["info"]


@main.command(context_settings=CONTEXT)
@click.argument("trace_id")
@click.option("--json", "as_json", is_flag=True, help="Print the whole trace as JSON.")
@db_option
@friendly_errors
def show(trace_id: str, as_json: bool, db: str | None) -> None:
    """Show one trace: its span tree with timings, status, errors, inputs/outputs, tags.

    \b
    Example:
      traceduck show 3fa2c1
    """
    trace = open_store(db).get_trace(trace_id)
    if as_json:
        click.echo(json.dumps(trace.to_dict(), indent=2, default=str))
        return
    info = trace.info
    title = f"[bold]{info.name}[/]  {info.trace_id}  {info.status}  {info.execution_time_ms:.1f} ms"
    tree = Tree(title)
    nodes: dict[str | None, Tree] = {}
    for span in trace.spans:
        parent = nodes.get(span.parent_id, tree)
        nodes[span.span_id] = parent.add(_span_label(span))
    console.print(tree)
    if info.tags:
        console.print("tags: " + json.dumps(info.tags), markup=False, highlight=False)
    if info.metadata:
        console.print("metadata: " + json.dumps(info.metadata), markup=False, highlight=False)


def _span_label(span: Span) -> str:
    from rich.markup import escape

    status = "[green]OK[/]" if span.status == "OK" else f"[red]{span.status}[/]"
    text = (
        f"{escape(span.name)} [dim]{escape(span.span_type)}[/] {span.duration_ms:.2f} ms {status}"
    )
    if span.status_message:
        text += f" [red]{escape(span.status_message)}[/]"
    for label, value in (("in", span.inputs), ("out", span.outputs)):
        if value is not None:
            shown = json.dumps(value, default=str)
            text += f"\n  [dim]{label}:[/] {escape(shown[:200])}{'…' if len(shown) > 200 else ''}"
    return text


@main.command(context_settings=CONTEXT)
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print rows as a JSON list.")
@db_option
@friendly_errors
def sql(query: str, as_json: bool, db: str | None) -> None:
    """Run a read-only SQL query over the documented tables.

    \b
    Example:
      traceduck sql "SELECT name, count(*), quantile_cont(execution_time_ms, 0.95)
                     FROM traces GROUP BY name"
    """
    table = open_store(db).sql(query)
    rows = table.to_pylist()
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    out = Table()
    for name in table.column_names:
        out.add_column(name, overflow="fold")
    for row in rows:
        out.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(out)


@main.command(context_settings=CONTEXT)
@click.option("--traces", "count", default=50, show_default=True, type=click.IntRange(1, 100_000))
@db_option
@friendly_errors
def demo(count: int, db: str | None) -> None:
    """Trace a small demo app into the store, then search it.

    \b
    Example:
      traceduck demo --db demo.duckdb --traces 100
    """
    from ._demo import run_demo

    path = run_demo(db, count)
    console.print(f"traced {count} requests into [bold]{path}[/]")
    query = "status = 'ERROR' OR tags.cost > 0.03"
    store = open_store(path)
    traces = store.search_traces(query, max_results=10)
    console.print(f'\n$ traceduck search "{query}" --db {path}', markup=False, highlight=False)
    console.print(traces_table(traces))
    console.print(
        f"\nnext: traceduck show {traces[0].info.trace_id[:8] if traces else '<id>'} --db {path}",
        markup=False,
        highlight=False,
    )
