"""Reading commands: search, show, sql and stats."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

import click
from rich.table import Table
from rich.tree import Tree

from ..model import PagedList, Span, Trace
from ..store import TraceStore
from ._common import (
    CONTEXT,
    console,
    db_option,
    echo_json,
    err_console,
    escape,
    friendly_errors,
    open_store,
    parse_assignments,
)
from ._table import status_markup, traces_table, when

CSV_COLUMNS = (
    "trace_id", "name", "status", "timestamp_ms", "execution_time_ms", "span_count",
    "service_name", "tags", "metadata",
)  # fmt: skip


@click.command(context_settings=CONTEXT)
@click.argument("filter_string", required=False, default=None, metavar="[FILTER]")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only traces with this tag value (repeatable); short for tags.KEY = VALUE.",
)
@click.option("--order-by", "order_by", multiple=True, help="e.g. 'execution_time_ms DESC'.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for scripts.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (tags and metadata as JSON).")
@click.option("--show-sql", is_flag=True, help="Print the SQL the filter compiles to.")
@db_option
@friendly_errors
def search(
    filter_string: str | None,
    tags: tuple[str, ...],
    order_by: tuple[str, ...],
    limit: int,
    as_json: bool,
    as_csv: bool,
    show_sql: bool,
    db: str | None,
) -> None:
    """Search traces with the filter language, newest first.

    \b
    Example:
      traceduck search "tags.env = 'prod' AND execution_time_ms > 500" --limit 5
      traceduck search --tag env=prod --tag cost=0.02 --json

    Filters compare tags, metadata, status, latency and spans. Every field (with MLflow's
    spellings), operator and error, with examples: the "Filter language" section of the README.
    """
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    store = open_store(db)
    filter_string = combine_filters(filter_string, tags, store)
    orders = list(order_by) or None
    if show_sql:
        query, params = store.explain_search(filter_string, orders, limit)
        click.echo(query, err=as_json or as_csv)
        click.echo(f"-- params: {params!r}", err=as_json or as_csv)
    traces = store.search_traces(filter_string, orders, max_results=limit)
    if as_json:
        echo_json([t.to_dict()["info"] for t in traces])
    elif as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for t in traces:
            info = t.to_dict()["info"]
            writer.writerow(
                json.dumps(info[c], ensure_ascii=False) if c in ("tags", "metadata") else info[c]
                for c in CSV_COLUMNS
            )
    else:
        print_traces(store, traces, filter_string, limit)
        return
    hint = more_hint(store, traces, filter_string, limit)
    if hint:  # the JSON or CSV on stdout stays what it was; the note goes to the terminal
        err_console.print(hint, style="dim", markup=False, highlight=False)


def combine_filters(
    filter_string: str | None, tags: tuple[str, ...], store: TraceStore
) -> str | None:
    """The filter AND ``tags.KEY = VALUE`` for each ``--tag KEY=VALUE``.

    Where the key holds lists (``tag add --append``, redun's repeated tags) a list containing
    VALUE matches too.
    """
    if not tags:
        return filter_string
    parts = [f"({filter_string})"] if filter_string and filter_string.strip() else []
    for key, value in parse_assignments(tags, bare=True).items():
        field, lit = f"tags.{quote_key(key)}", literal(value)
        kinds = store.tag_value_types(key)
        if "array" not in kinds:
            parts.append(f"{field} = {lit}")
        elif kinds == {"array"}:
            parts.append(f"{field} CONTAINS {lit}")
        else:
            parts.append(f"({field} = {lit} OR {field} CONTAINS {lit})")
    return " AND ".join(parts)


def quote_key(key: str) -> str:
    if "`" not in key:
        return f"`{key}`"
    if '"' not in key:
        return f'"{key}"'
    raise click.UsageError(f'--tag key {key!r} has both ` and " in it; write a filter instead')


def literal(value: Any) -> str:
    """A filter literal for a JSON scalar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise click.UsageError(
        f"--tag takes a string, number, true, false or null, not {json.dumps(value)}; "
        "for lists write a filter such as \"tags.KEY CONTAINS 'x'\""
    )


def print_traces(
    store: TraceStore, traces: PagedList[Trace], filter_string: str | None, limit: int
) -> None:
    """The trace table, and a line saying how many more match when the page is not all."""
    console.print(traces_table(traces, console.width, store))
    if not traces:
        console.print("no trace matches", style="dim")
    hint = more_hint(store, traces, filter_string, limit)
    if hint:
        console.print(hint, style="dim", markup=False, highlight=False)


def more_hint(
    store: TraceStore, traces: PagedList[Trace], filter_string: str | None, limit: int
) -> str | None:
    """ "20 of 24 shown; --limit N for more" when the page stopped at ``limit``; None if not."""
    if traces.token is None:
        return None
    total = store.count_traces(filter_string)
    return f"{len(traces)} of {total:,} shown; --limit N for more"


@click.command(context_settings=CONTEXT)
@click.argument("trace_id", metavar="ID_PREFIX")
@click.option("--json", "as_json", is_flag=True, help="Print the whole trace as JSON.")
@click.option(
    "--width",
    default=200,
    show_default=True,
    type=click.IntRange(min=10),
    help="Characters of each input/output shown.",
)
@db_option
@friendly_errors
def show(trace_id: str, as_json: bool, width: int, db: str | None) -> None:
    """Show one trace: span tree with timings, status, errors, inputs/outputs, tags, metadata.

    \b
    Example:
      traceduck show 3fa2c1
    """
    trace = open_store(db).get_trace(trace_id)
    if as_json:
        echo_json(trace.to_dict())
        return
    info = trace.info
    title = (
        f"[bold]{escape(info.name or '')}[/]  {info.trace_id}  {status_markup(info.status)}  "
        f"{info.execution_time_ms:.1f} ms  {when(info.timestamp_ms)} UTC"
    )
    tree = Tree(title)
    nodes: dict[str | None, Tree] = {}
    for span in trace.spans:
        parent = nodes.get(span.parent_id, tree)
        nodes[span.span_id] = parent.add(_span_label(span, width))
    console.print(tree)
    for label, values in (("tags", info.tags), ("metadata", info.metadata)):
        if values:
            table = Table(title=label, title_justify="left", show_header=False)
            table.add_column("key", style="bold")
            table.add_column("value", overflow="fold")
            for key, value in values.items():
                table.add_row(escape(key), escape(_clip(value, width * 2)))
            console.print(table)


def _clip(value: Any, width: int) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return shown if len(shown) <= width else shown[:width] + "…"


def _span_label(span: Span, width: int) -> str:
    text = (
        f"{escape(span.name)} [dim]{escape(span.span_type)}[/] {span.duration_ms:.2f} ms "
        f"{status_markup(span.status)}"
    )
    if span.status_message:
        text += f" [red]{escape(span.status_message)}[/]"
    for event in span.events:
        attrs = event.get("attributes") or {}
        if event.get("name") == "exception":
            kind = attrs.get("exception.type", "exception")
            message = attrs.get("exception.message", "")
            shown = f"{kind}: {message}"
            if shown != span.status_message:
                text += f"\n  [red]{escape(_clip(shown, width))}[/]"
    for label, value in (("in", span.inputs), ("out", span.outputs)):
        if value is not None:
            shown = json.dumps(value, default=str, ensure_ascii=False)
            text += f"\n  [dim]{label}:[/] {escape(_clip(shown, width))}"
    return text


@click.command(context_settings=CONTEXT)
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print rows as a JSON list.")
@click.option("--csv", "as_csv", is_flag=True, help="Print rows as CSV.")
@db_option
@friendly_errors
def sql(query: str, as_json: bool, as_csv: bool, db: str | None) -> None:
    """Run one read-only SQL query over traces, spans, trace_tags, trace_metadata, tag_events.

    \b
    Example:
      traceduck sql "SELECT name, count(*) AS n, quantile_cont(execution_time_ms, 0.95) AS p95
                     FROM traces GROUP BY name"
    """
    table = open_store(db).sql(query)
    rows = table.to_pylist()
    if as_json:
        echo_json(rows)
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(table.column_names)
        writer.writerows([list(r.values()) for r in rows])
        return
    out = Table()
    for name in table.column_names:
        out.add_column(escape(name), overflow="fold")
    for row in rows:
        out.add_row(*("" if v is None else escape(str(v)) for v in row.values()))
    console.print(out)


@click.command(context_settings=CONTEXT)
@click.argument("filter_string", required=False, default=None, metavar="[FILTER]")
@click.option(
    "--by",
    default=None,
    metavar="FIELD",
    help="Group by name, status, service_name, tags.KEY or metadata.KEY.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the groups as a JSON list.")
@db_option
@friendly_errors
def stats(filter_string: str | None, by: str | None, as_json: bool, db: str | None) -> None:
    """Count traces, error rate and latency p50/p95/p99 per group.

    \b
    Example:
      traceduck stats "name = 'answer'" --by tags.env
    """
    groups = open_store(db).stats(filter_string, by)
    if as_json:
        echo_json(groups)
        return
    table = Table()
    table.add_column(by or "traces")
    for column in ("count", "errors", "error rate", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    for g in groups:
        label = g["group"]
        shown = "(none)" if label is None and by else ("all" if label is None else label)
        if not isinstance(shown, str):
            shown = json.dumps(shown, ensure_ascii=False)
        table.add_row(
            escape(shown),
            str(g["count"]),
            str(g["errors"]),
            f"{g['error_rate']:.1%}",
            *(f"{g[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
        )
    console.print(table)
    if not groups:
        console.print("no trace matches", style="dim")
