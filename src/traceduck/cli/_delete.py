"""``traceduck delete`` and ``traceduck prune``: count first, ask, then delete and say so."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone
from typing import Any

import click

from ..errors import ConfigError
from ..store import TraceStore
from ._common import (
    CONTEXT,
    SOURCE,
    console,
    db_option,
    err_console,
    fail,
    friendly_errors,
    open_store,
)


def _older_than(_ctx: Any, _param: Any, value: str | None) -> float | None:
    """--older-than in seconds; a bad duration is a usage error (exit 2), not a traceback."""
    from .._duration import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value, "the age")
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _yes(func: Any) -> Any:
    return click.option("--yes", "-y", is_flag=True, help="Delete without asking.")(func)


@click.command(context_settings=CONTEXT)
@click.argument("filter_string", required=False, default=None, metavar="[FILTER]")
@click.option(
    "--id",
    "ids",
    multiple=True,
    metavar="ID",
    help="Delete this trace (id or unique prefix); repeatable.",
)
@click.option(
    "--older-than",
    default=None,
    metavar="DURATION",
    callback=_older_than,
    help="Only traces whose root started longer ago than this: 30d, 12h, 90m, 45s.",
)
@_yes
@db_option
@friendly_errors
def delete(
    filter_string: str | None,
    ids: tuple[str, ...],
    older_than: float | None,
    yes: bool,
    db: str | None,
) -> None:
    """Delete traces with their spans, tags, metadata and history.

    \b
    Example:
      traceduck delete "tags.env = 'dev'"
      traceduck delete --id 3fa2c1 --id b81c07 --yes
      traceduck delete "status = 'ERROR'" --older-than 7d --yes

    Prints how many traces match and asks before deleting them; without a terminal to ask
    on, it deletes nothing unless given --yes. FILTER, --id and --older-than combine (AND).
    Every deletion is recorded: traceduck sql "SELECT * FROM deletions".
    """
    if not (filter_string and filter_string.strip()) and not ids and older_than is None:
        raise click.UsageError(
            "give a FILTER, --id ID or --older-than DURATION (to delete every trace, say so: "
            "traceduck delete \"trace_id LIKE '%'\")"
        )
    _confirm_and_delete(open_store(db), yes, filter_string, list(ids) or None, older_than)


@click.command(context_settings=CONTEXT)
@click.option(
    "--older-than",
    required=True,
    metavar="DURATION",
    callback=_older_than,
    help="Delete the traces whose root started longer ago than this: 30d, 12h, 90m, 45s.",
)
@_yes
@db_option
@friendly_errors
def prune(older_than: float, yes: bool, db: str | None) -> None:
    """Delete every trace whose root started longer ago than --older-than.

    \b
    Example:
      traceduck prune --older-than 30d
      traceduck prune --older-than 12h --yes

    Asks first, as `traceduck delete` does. To do this continuously, give the writer a
    retention: configure(retention="30d") or traceduck collector --retention 30d.
    """
    _confirm_and_delete(open_store(db), yes, None, None, older_than)


def _confirm_and_delete(
    store: TraceStore,
    yes: bool,
    filter_string: str | None,
    ids: list[str] | None,
    older_than: float | None,
) -> None:
    # The cutoff is fixed once, so the count shown and the deletion agree.
    cutoff = None if older_than is None else int(time.time() * 1000 - older_than * 1000)
    selection: dict[str, Any] = {
        "trace_ids": ids,
        "max_timestamp_millis": cutoff,
    }
    count = store.count_deletable(filter_string, **selection)
    what = _described(filter_string, ids, cutoff)
    if count == 0:
        console.print(f"no trace {what}; nothing deleted", markup=False, highlight=False)
        return
    traces = f"{count} trace{'s' if count != 1 else ''}"
    if not yes:
        if not sys.stdin.isatty():
            fail(
                f"found {traces} {what}; not deleting them without a confirmation, and there "
                "is no terminal to ask on (add --yes to delete them)"
            )
        question = f"Delete {traces} {what}, with their spans, tags, metadata and history?"
        if not click.confirm(question, default=False, err=True):
            err_console.print("nothing was deleted", highlight=False)
            return
    size = _size(store.path)
    # Never more than the count the user agreed to, even if matching traces arrive meanwhile.
    deleted = store.delete_traces(filter_string, max_traces=count, source=SOURCE, **selection)
    message = f"deleted {deleted} trace{'s' if deleted != 1 else ''}"
    after = _size(store.path)
    if after < size:
        message += f"; the store shrank from {_mb(size)} to {_mb(after)}"
    console.print(message, markup=False, highlight=False)


def _described(filter_string: str | None, ids: list[str] | None, cutoff: int | None) -> str:
    parts = []
    if filter_string and filter_string.strip():
        parts.append(f"matching {filter_string}")
    if ids:
        parts.append(f"with id {ids[0]}" if len(ids) == 1 else f"with one of {len(ids)} ids")
    if cutoff is not None:
        try:
            stamp = datetime.fromtimestamp(cutoff / 1000, timezone.utc)
            when = stamp.strftime("%Y-%m-%d %H:%M:%S") + " UTC"
        except (OverflowError, OSError, ValueError):  # --older-than 1e13d: no date to show
            when = "the year 1"
        parts.append(f"started before {when}")
    return " and ".join(parts)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
