"""What every command shares: the --db option, the store, key=value parsing, errors as one line."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape as rich_escape
from rich.text import Text

from .._config import default_db_path
from .._constants import ENV_DB
from ..errors import FilterError, TraceduckError
from ..store import TraceStore
from ..store._names import missing_store, parse_store_name

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
SOURCE = "cli"  # the history's source for every change made from the command line


class _Console(Console):
    def on_broken_pipe(self) -> None:
        closed_pipe()  # rich's own handling exits with 1


console = _Console()
err_console = _Console(stderr=True, soft_wrap=True)  # an error stays one line


def db_option(func: F) -> F:
    return click.option(
        "--db",
        "db",
        default=None,
        metavar="PATH|URL",
        help="The store: a DuckDB file, chdb:///dir or clickhouse://[user[:password]@]host"
        "[:port]/[database] (default: $TRACEDUCK_DB, then ./traceduck.duckdb).",
    )(func)


def open_store(db: str | None, *, read_only: bool = False, create: bool = False) -> TraceStore:
    """The store named by ``--db`` (else $TRACEDUCK_DB, else ./traceduck.duckdb).

    Only commands that write traces (``create=True``: import, run, collector, demo) may start a
    new store; for every other command a store file that does not exist is a mistyped path,
    one clear error instead of an empty answer.
    """
    path = db or default_db_path()
    if not create:
        check_exists(path, given=db is not None)
    return TraceStore(path, read_only=read_only)


def check_exists(path: str, *, given: bool = True) -> None:
    """Exit with one clear line when the store file (or chdb directory) ``path`` does not
    exist; opening a chdb directory would create it."""
    why = missing_store(parse_store_name(path))
    if why is None:
        return
    named = "--db" if given else ("$TRACEDUCK_DB" if os.environ.get(ENV_DB) else "the default")
    fail(
        f"no store at {path} ({why}); check {named}, or make one with traceduck demo, "
        "traceduck run or traceduck import"
    )


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\x1b``): stored text (a
    tag value, a span name from any sender) is shown, never run by the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def escape(text: str) -> str:
    """Rich markup escaped and control characters made visible: user text in a table."""
    return rich_escape(printable(text))


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def _not_json(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):  # 1e999: JSON's grammar, but no value a tag can hold
        raise ValueError(f"{text} is out of range")
    return number


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (``3.2``, ``true``, ``["a"]``), else the text
    (also ``NaN``, ``Infinity`` and ``1e999``, which Python's json would read as floats)."""
    try:
        return json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except ValueError:
        return text


def parse_assignments(
    items: Iterable[str], *, bare: Any = None, what: str = "tag"
) -> dict[str, Any]:
    """``key=value`` arguments as a dict (values via ``parse_value``).

    A bare ``key`` means ``bare`` when that is given (``True`` for labels), else it is an error.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise click.UsageError(f"{item!r}: expected key=value (the key is empty)")
        if not sep:
            if bare is None:
                raise click.UsageError(f"{item!r}: expected key=value")
            out[key] = bare
            continue
        out[key] = parse_value(value)
    if not out:
        raise click.UsageError(f"give at least one {what} as key=value")
    return out


def friendly_errors(func: F) -> F:
    """Errors become one line on stderr and exit code 1, never a traceback.

    ``TRACEDUCK_DEBUG=1`` lets unexpected exceptions through, traceback and all.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except BrokenPipeError:
            closed_pipe()
        except FilterError as exc:
            err_console.print(Text.assemble(("error:", "red"), " ", exc.message))
            if exc.position is not None and exc.filter:
                err_console.print(f"  {exc.filter}", markup=False, highlight=False)
                err_console.print("  " + " " * exc.position + "^", highlight=False)
            sys.exit(1)
        except (TraceduckError, ValueError, OSError) as exc:
            fail(_one_line(exc))
        except Exception as exc:
            if os.environ.get("TRACEDUCK_DEBUG"):
                raise
            fail(
                f"unexpected {type(exc).__name__}: {_one_line(exc)} "
                "(TRACEDUCK_DEBUG=1 shows the traceback)"
            )

    return wrapper  # type: ignore[return-value]


def closed_pipe() -> None:
    """The reader of our output went away (``traceduck search --csv | head -2``): stop quietly
    with exit code 0, as ``git log | head`` does. Later writes, including the interpreter's own
    flush of stdout at exit, go to /dev/null instead of raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # stdout is not a file descriptor (a test runner's buffer): nothing to silence
    sys.exit(0)


def fail(message: str) -> None:
    err_console.print(Text.assemble(("error:", "red"), " ", message), highlight=False)
    sys.exit(1)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split("\n")[:1]) if "\n" in text else text
