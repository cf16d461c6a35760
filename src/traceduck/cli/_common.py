"""What every command shares: the --db option, the store, and errors as one clear line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from .._config import default_db_path
from ..errors import FilterError, TraceduckError
from ..store import TraceStore

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)


def db_option(func: F) -> F:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False),
        default=None,
        help="The DuckDB store (default: $TRACEDUCK_DB, then ./traceduck.duckdb).",
    )(func)


def open_store(db: str | None, *, read_only: bool = False) -> TraceStore:
    return TraceStore(db or default_db_path(), read_only=read_only)


def friendly_errors(func: F) -> F:
    """Library errors become one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FilterError as exc:
            err_console.print(f"[red]error:[/] {exc.message}", highlight=False)
            if exc.position is not None and exc.filter:
                err_console.print(f"  {exc.filter}", markup=False, highlight=False)
                err_console.print("  " + " " * exc.position + "^", highlight=False)
            sys.exit(1)
        except (TraceduckError, ValueError) as exc:
            err_console.print(f"[red]error:[/] {exc}", highlight=False, markup=False)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
