"""Commands that change a trace after the fact: ``tag add|update|rm|history``, ``metadata``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
from rich.table import Table

from .._context import Tag
from ..errors import TagError
from ..model import MetadataEvent, TagEvent
from ..store import TraceStore
from ..store._tagrules import check_key, encode_value
from ._common import (
    CONTEXT,
    SOURCE,
    console,
    db_option,
    echo_json,
    err_console,
    escape,
    friendly_errors,
    open_store,
    parse_assignments,
    parse_value,
)


@click.group(context_settings=CONTEXT)
def tag() -> None:
    """Add, change and remove tags of finished traces; show their history.

    Values are JSON when they parse, else strings: cost=3.2, final=true,
    flags='["a","b"]', user=rasmus. A bare KEY (no =VALUE) is the label KEY=true.

    \b
    Example:
      traceduck tag add 3fa2c1 reviewed cost=3.2 user=rasmus
      traceduck tag update 3fa2c1 cost=4
      traceduck tag rm --where "status = 'ERROR'" --yes reviewed
      traceduck tag history 3fa2c1
    """


def _bulk_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--where",
        "where",
        default=None,
        metavar="FILTER",
        help="Change every trace matching FILTER instead of one ID_PREFIX.",
    )(func)
    func = click.option("--yes", "-y", is_flag=True, help="Change them without asking.")(func)
    return func


def _split(args: tuple[str, ...], where: str | None) -> tuple[str | None, tuple[str, ...]]:
    """(trace id prefix or None, key=value arguments)."""
    if where is not None:
        if not where.strip():
            raise click.UsageError("--where needs a filter")
        return None, args
    if not args:
        raise click.UsageError("give ID_PREFIX and KEY=VALUE ..., or --where FILTER KEY=VALUE ...")
    return args[0], args[1:]


def _validated(pairs: dict[str, Any]) -> dict[str, Any]:
    for key, value in pairs.items():
        check_key(key)
        encode_value(value, key)
    return pairs


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@tag.command("add", context_settings=CONTEXT)
@click.argument("args", nargs=-1, metavar="ID_PREFIX KEY[=VALUE]...")
@click.option("--append", is_flag=True, help="Add VALUE to the key's list (started if missing).")
@click.option("--exclusive", is_flag=True, help="One trace per root name holds the key.")
@_bulk_options
@db_option
@friendly_errors
def tag_add(
    args: tuple[str, ...],
    append: bool,
    exclusive: bool,
    where: str | None,
    yes: bool,
    db: str | None,
) -> None:
    """Add new tags to a trace (or every trace matching --where).

    A key the trace already has with another value is refused (use `tag update`), unless
    --append adds the value to the key's list.

    \b
    Example:
      traceduck tag add 3fa2c1 reviewed cost=3.2 flags='["a","b"]'
      traceduck tag add 3fa2c1 --append source=web
      traceduck tag add --where "tags.env = 'prod'" --yes release=1.4
    """
    if append and exclusive:
        raise click.UsageError("--append adds to a list; it does not go with --exclusive")
    trace_id, rest = _split(args, where)
    pairs = _validated(parse_assignments(rest, bare=True))
    store = open_store(db)
    if trace_id is not None:
        tid = store.resolve_trace_id(trace_id)
        if append:
            store.append_trace_tags(_only(tid), pairs, source=SOURCE)
        else:
            _refuse_changes(tid, store.get_trace_info(tid).tags, pairs)
            store.set_trace_tags(_only(tid), _tag_items(pairs, exclusive), source=SOURCE)
        _done(f"tagged {tid[:12]}: " + _pairs_text(pairs))
        return
    assert where is not None
    rows = _matching_tags(store, where)
    if not append:
        for tid, tags in rows:
            _refuse_changes(tid, tags, pairs, bulk=len(rows))
    if not _confirm(len(rows), where, f"add {_pairs_text(pairs)} to", yes):
        return
    if append:
        count = store.append_trace_tags(where, pairs, source=SOURCE)
    else:
        count = store.set_trace_tags(where, _tag_items(pairs, exclusive), source=SOURCE)
    _done(f"tagged {count} trace{'s' if count != 1 else ''}: {_pairs_text(pairs)}")


@tag.command("update", context_settings=CONTEXT)
@click.argument("args", nargs=-1, metavar="ID_PREFIX KEY=VALUE...")
@click.option("--exclusive", is_flag=True, help="One trace per root name holds the key.")
@_bulk_options
@db_option
@friendly_errors
def tag_update(
    args: tuple[str, ...], exclusive: bool, where: str | None, yes: bool, db: str | None
) -> None:
    """Change tags a trace (or every trace matching --where) already has.

    \b
    Example:
      traceduck tag update 3fa2c1 cost=4.5 final=true
      traceduck tag update --where "tags.env = 'staging'" --yes env=prod
    """
    trace_id, rest = _split(args, where)
    pairs = _validated(parse_assignments(rest))
    store = open_store(db)
    if trace_id is not None:
        tid = store.resolve_trace_id(trace_id)
        _refuse_missing(tid, store.get_trace_info(tid).tags, pairs)
        store.set_trace_tags(_only(tid), _tag_items(pairs, exclusive), source=SOURCE)
        _done(f"updated {tid[:12]}: " + _pairs_text(pairs))
        return
    assert where is not None
    rows = _matching_tags(store, where)
    for tid, tags in rows:
        _refuse_missing(tid, tags, pairs, bulk=len(rows))
    if not _confirm(len(rows), where, f"set {_pairs_text(pairs)} on", yes):
        return
    count = store.set_trace_tags(where, _tag_items(pairs, exclusive), source=SOURCE)
    _done(f"updated {count} trace{'s' if count != 1 else ''}: {_pairs_text(pairs)}")


@tag.command("rm", context_settings=CONTEXT)
@click.argument("args", nargs=-1, metavar="ID_PREFIX KEY[=VALUE]...")
@_bulk_options
@db_option
@friendly_errors
def tag_rm(args: tuple[str, ...], where: str | None, yes: bool, db: str | None) -> None:
    """Remove tags; KEY=VALUE removes the key only where it has that value (as redun does).

    \b
    Example:
      traceduck tag rm 3fa2c1 reviewed env=staging
      traceduck tag rm --where "tags.cost > 3" --yes cost
    """
    trace_id, rest = _split(args, where)
    if not rest:
        raise click.UsageError("give at least one KEY or KEY=VALUE to remove")
    keys: list[str] = []
    values: dict[str, Any] = {}
    for item in rest:
        key, sep, value = item.partition("=")
        keys.append(check_key(key))
        if sep:
            values[key] = parse_value(value)
    store = open_store(db)
    if trace_id is not None:
        tid = store.resolve_trace_id(trace_id)
        tags = store.get_trace_info(tid).tags
        for key in keys:
            if key not in tags:
                raise TagError(f"trace {tid[:12]} has no tag {key!r}; nothing was removed")
            if key in values and _text(tags[key]) != _text(values[key]):
                raise TagError(
                    f"trace {tid[:12]} has {key}={_text(tags[key])}, not {_text(values[key])}; "
                    "nothing was removed"
                )
        store.delete_trace_tags(_only(tid), keys, values=values, source=SOURCE)
        _done(f"removed from {tid[:12]}: {', '.join(keys)}")
        return
    assert where is not None
    rows = _matching_tags(store, where)
    if not _confirm(len(rows), where, f"remove {', '.join(keys)} from", yes):
        return
    count = store.delete_trace_tags(where, keys, values=values, source=SOURCE)
    _done(f"removed tags from {count} trace{'s' if count != 1 else ''}")


@tag.command("history", context_settings=CONTEXT)
@click.argument("trace_id", metavar="ID_PREFIX")
@click.option("--json", "as_json", is_flag=True, help="Print the events as a JSON list.")
@db_option
@friendly_errors
def tag_history(trace_id: str, as_json: bool, db: str | None) -> None:
    """Every change of a trace's tags, oldest first: time, key, old and new value, source.

    \b
    Example:
      traceduck tag history 3fa2c1
    """
    events = open_store(db).tag_history(trace_id)
    if as_json:
        echo_json([_event_dict(e) for e in events])
        return
    _print_table(
        ("time (UTC)", "key", "operation", "old", "new", "source"),
        [
            (
                f"{e.time:%Y-%m-%d %H:%M:%S}",
                escape(e.key),
                e.operation,
                escape(_text(e.old_value)) if e.had_old else "",
                escape(_text(e.new_value)) if e.has_new else "",
                e.source,
            )
            for e in events
        ],
        empty="no tag changes",
    )


def _event_dict(e: TagEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"time": e.time.isoformat(), "trace_id": e.trace_id, "key": e.key}
    if e.had_old:
        out["old_value"] = e.old_value
    if e.has_new:
        out["new_value"] = e.new_value
    return out | {"operation": e.operation, "source": e.source}


@click.group(context_settings=CONTEXT)
def metadata() -> None:
    """Log metadata on finished traces (append-only) and show every entry.

    \b
    Example:
      traceduck metadata log 3fa2c1 accuracy=0.93 judge=gpt-4o
      traceduck metadata history 3fa2c1
    """


@metadata.command("log", context_settings=CONTEXT)
@click.argument("trace_id", metavar="ID_PREFIX")
@click.argument("pairs", nargs=-1, metavar="KEY=VALUE...")
@db_option
@friendly_errors
def metadata_log(trace_id: str, pairs: tuple[str, ...], db: str | None) -> None:
    """Add metadata entries to a trace; it shows the latest value per key, history keeps all.

    Values are JSON when they parse, else strings.

    \b
    Example:
      traceduck metadata log 3fa2c1 eval='{"accuracy": 0.93}' reviewer=ana
    """
    entries = parse_assignments(pairs, what="metadata entry")
    store = open_store(db)
    tid = store.resolve_trace_id(trace_id)
    store.log_metadata(tid, entries, source=SOURCE)
    _done(f"logged on {tid[:12]}: {_pairs_text(entries)}")


@metadata.command("history", context_settings=CONTEXT)
@click.argument("trace_id", metavar="ID_PREFIX")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as a JSON list.")
@db_option
@friendly_errors
def metadata_history(trace_id: str, as_json: bool, db: str | None) -> None:
    """Every metadata entry of a trace, oldest first.

    \b
    Example:
      traceduck metadata history 3fa2c1 --json
    """
    entries = open_store(db).metadata_history(trace_id)
    if as_json:
        echo_json([_entry_dict(e) for e in entries])
        return
    _print_table(
        ("time (UTC)", "key", "value", "source"),
        [
            (f"{e.time:%Y-%m-%d %H:%M:%S}", escape(e.key), escape(_text(e.value)), e.source)
            for e in entries
        ],
        empty="no metadata",
    )


def _entry_dict(e: MetadataEvent) -> dict[str, Any]:
    return {
        "time": e.time.isoformat(),
        "trace_id": e.trace_id,
        "key": e.key,
        "value": e.value,
        "source": e.source,
    }


# -- helpers ------------------------------------------------------------------------------------


def _pairs_text(pairs: dict[str, Any]) -> str:
    return " ".join(f"{k}={_text(v)}" for k, v in pairs.items())


def _done(message: str) -> None:
    console.print(message, markup=False, highlight=False)


def _only(trace_id: str) -> str:
    """A filter for one resolved trace id, so several keys change in one transaction."""
    return f"trace_id = '{trace_id}'"  # a resolved id is 32 hex characters


def _tag_items(pairs: dict[str, Any], exclusive: bool) -> list[Tag]:
    return [Tag(k, v, exclusive=exclusive) for k, v in pairs.items()]


def _print_table(columns: tuple[str, ...], rows: list[tuple[str, ...]], *, empty: str) -> None:
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if not rows:
        console.print(empty, style="dim")


def _matching_tags(store: TraceStore, where: str) -> list[tuple[str, dict[str, Any]]]:
    table = store.search_traces(where, max_results=None, return_type="arrow")
    ids = table.column("trace_id").to_pylist()
    tags = table.column("tags").to_pylist()
    return [(tid, json.loads(t) if t else {}) for tid, t in zip(ids, tags)]


def _refuse_changes(tid: str, tags: dict[str, Any], pairs: dict[str, Any], bulk: int = 0) -> None:
    for key, value in pairs.items():
        if key in tags and _text(tags[key]) != _text(value):
            where = f"{bulk} matching traces include " if bulk else ""
            raise TagError(
                f"{where}trace {tid[:12]} already has {key}={_text(tags[key])}; "
                f"use `traceduck tag update` to change it or --append to add to it "
                "(nothing was changed)"
            )


def _refuse_missing(tid: str, tags: dict[str, Any], pairs: dict[str, Any], bulk: int = 0) -> None:
    for key in pairs:
        if key not in tags:
            hint = (
                f"narrow the filter with `AND tags.{key} IS NOT NULL` or use `traceduck tag add`"
                if bulk
                else "use `traceduck tag add` for new keys"
            )
            raise TagError(f"trace {tid[:12]} has no tag {key!r}; {hint} (nothing was changed)")


def _confirm(count: int, where: str, action: str, yes: bool) -> bool:
    if count == 0:
        _done(f"no trace matches {where}; nothing to change")
        return False
    if yes:
        return True
    message = f"{action} {count} trace{'s' if count != 1 else ''} matching {where}?"
    if not click.confirm(message, default=False, err=True):
        err_console.print("nothing was changed", highlight=False)
        return False
    return True
