"""``traceduck run``: run a Python program with tracing configured, no code change (redun's run).

The program runs as a child process (its own interpreter, signals, exit code, stdout and stderr
untouched) with two environment variables that ``traceduck.configure()``'s defaults read:
``TRACEDUCK_DB`` (the store) and ``TRACEDUCK_RUN`` (JSON: run id, ``--tag``s, ``--metadata``),
which the exporter adds to every trace (``metadata.context.run_id``). A child process rather
than ``runpy`` in this interpreter: ``sys.argv``, ``__main__``, ``sys.exit`` and atexit
handlers behave as without traceduck, and ``-- python -m pkg`` or a script's subprocesses
work the same way (they inherit the variables, so their traces belong to the run too).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from typing import Any

import click

from .._autocontext import ENV_RUN
from .._config import default_db_path
from .._constants import ENV_DB
from .._context import normalize_tags
from ..errors import TagError
from ..store import _tagrules
from . import _common
from ._common import db_option, err_console, friendly_errors, parse_value

__all__ = ["run"]

CONTEXT = {**_common.CONTEXT, "ignore_unknown_options": True, "allow_interspersed_args": False}


def _pairs(items: tuple[str, ...], what: str, bare: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not key or (not sep and bare is None):
            raise click.BadParameter(f"{item!r}: expected key=value", param_hint=f"--{what}")
        out[key] = parse_value(text) if sep else bare
    return out


def _command(args: tuple[str, ...]) -> list[str]:
    """``app.py ...`` runs with this interpreter; anything else runs as given."""
    if args and args[0].endswith(".py") and not os.access(args[0], os.X_OK):
        return [sys.executable, *args]
    return list(args)


def _wait(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the child. Ctrl-C reaches it directly (same process group), so this process
    ignores SIGINT meanwhile, as ``os.system`` does: a KeyboardInterrupt raised after the child
    was reaped but before its status was recorded would lose its exit code (waiting again says
    0). SIGTERM/SIGHUP sent to this process are passed on to it."""

    def forward(signum: int, _frame: Any) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {}
    handlers = (("SIGTERM", forward), ("SIGHUP", forward), ("SIGINT", signal.SIG_IGN))
    for name, handler in handlers:
        signum = getattr(signal, name, None)
        if signum is not None:
            try:
                previous[signum] = signal.signal(signum, handler)
            except (ValueError, OSError):  # not the main thread
                pass
    try:
        return proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _count(db: str, run_id: str) -> int | None:
    from ..store import TraceStore

    table = TraceStore(db).search_traces(
        f"metadata.context.run_id = '{run_id}'", max_results=None, return_type="arrow"
    )
    return table.num_rows


@click.command(context_settings=CONTEXT)
@click.option("--tag", "tags", multiple=True, metavar="K=V", help="A tag on every trace.")
@click.option("--metadata", "metadata", multiple=True, metavar="K=V", help="Metadata entry.")
@click.option("--run-id", default=None, help="The run's id (default: a new random one).")
@db_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@friendly_errors
def run(
    tags: tuple[str, ...],
    metadata: tuple[str, ...],
    run_id: str | None,
    db: str | None,
    command: tuple[str, ...],
) -> None:
    """Run a Python program with tracing on; every trace gets the run's tags and run id.

    \b
    Example:
      traceduck run --tag experiment=lr-sweep --metadata lr=0.01 -- python train.py --epochs 3
      traceduck run -- app.py        # a .py file runs with this Python

    The program's exit code, stdout and stderr pass through unchanged; the summary (how many
    traces the run recorded, and the search that lists them) goes to stderr at the end.
    Traces go to --db unless the program calls traceduck.configure(db=...) itself.
    """
    tag_values = _pairs(tags, "tag", bare=True)
    meta_values = _pairs(metadata, "metadata")
    try:
        normalize_tags(tag_values)
        for key, value in meta_values.items():
            _tagrules.check_key(key, "metadata")
            _tagrules.encode_value(value, key, "metadata")
    except TagError as exc:
        raise click.BadParameter(str(exc)) from None
    run_id = run_id or uuid.uuid4().hex[:16]
    path = _absolute(db or default_db_path())
    fd, report = tempfile.mkstemp(prefix=f"traceduck-run-{run_id}-", suffix=".jsonl")
    os.close(fd)
    env = dict(os.environ)
    env[ENV_DB] = path
    env[ENV_RUN] = json.dumps(
        {"run_id": run_id, "tags": tag_values, "metadata": meta_values, "report": report}
    )
    args = _command(command)
    try:
        try:
            proc = subprocess.Popen(args, env=env)
        except OSError as exc:
            err_console.print(f"traceduck run: cannot start {args[0]!r}: {exc}", highlight=False)
            sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)
        code = _wait(proc)
        _summary(path, run_id)
        _losses(run_id, report)
    finally:
        os.unlink(report)
    sys.exit(128 - code if code < 0 else code)  # killed by signal N: 128+N, as shells say


def _absolute(name: str) -> str:
    """A DuckDB path made absolute (the program may change directory); a URL as it is."""
    from ..store._names import parse_store_name

    return os.path.abspath(name) if parse_store_name(name).engine == "duckdb" else name


def _losses(run_id: str, report: str) -> None:
    """Say what the run's processes dropped (each appended its counters to ``report``)."""
    traces = spans = otlp = 0
    errors: list[str] = []
    try:
        with open(report, encoding="utf-8") as fh:
            for line in fh:
                try:
                    counts = json.loads(line)
                    traces += int(counts.get("dropped_traces") or 0)
                    spans += int(counts.get("dropped_spans") or 0)
                    otlp += int(counts.get("otlp_dropped_spans") or 0)
                except (ValueError, TypeError, AttributeError):
                    continue
                if counts.get("last_error"):
                    errors.append(str(counts["last_error"]))
    except OSError:
        return
    if otlp:
        err_console.print(
            f"traceduck run {run_id}: {otlp} {'span' if otlp == 1 else 'spans'} not sent over "
            "OTLP (the endpoint did not take them, or not by exit)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if traces or spans:
        why = f": {errors[-1]}" if errors else ""
        err_console.print(
            f"traceduck run {run_id}: {traces} {'trace' if traces == 1 else 'traces'} "
            f"({spans} {'span' if spans == 1 else 'spans'}) dropped, the store could not take "
            f"them{why}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def _summary(path: str, run_id: str) -> None:
    search = f"traceduck search \"metadata.context.run_id = '{run_id}'\""
    if path != _absolute(default_db_path()):
        search += f" --db {_quote(path)}"
    try:
        count = _count(path, run_id)
    except Exception as exc:  # the run's outcome is the program's, whatever the store says
        err_console.print(
            f"traceduck run {run_id}: could not count its traces in {path} ({exc})",
            highlight=False,
            markup=False,
        )
        return
    noun = "trace" if count == 1 else "traces"
    err_console.print(
        f"traceduck run {run_id}: {count} {noun} recorded in {path}\n  list them: {search}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def _quote(path: str) -> str:
    import shlex

    return shlex.quote(path)
