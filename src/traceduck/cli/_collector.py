"""``traceduck collector``: run the OTLP receiver until SIGTERM/SIGINT."""

from __future__ import annotations

import os
import signal
import sys

import click

from ._common import CONTEXT, _one_line, db_option


@click.command(context_settings=CONTEXT)
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--http-port",
    default=4318,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="OTLP/HTTP port (0: any free port).",
)
@click.option(
    "--grpc-port",
    default=4317,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="OTLP/gRPC port (0: any free port).",
)
@click.option("--no-http", is_flag=True, help="Do not serve OTLP/HTTP.")
@click.option("--no-grpc", is_flag=True, help="Do not serve OTLP/gRPC.")
@click.option(
    "--token",
    default=None,
    envvar="TRACEDUCK_COLLECTOR_TOKEN",
    help="Require 'Authorization: Bearer TOKEN' (or $TRACEDUCK_COLLECTOR_TOKEN).",
)
@click.option(
    "--max-body-bytes",
    default=16 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(min=1024),
    help="Largest request body, after gzip.",
)
@click.option(
    "--ack",
    type=click.Choice(["written", "queued"]),
    default="queued",
    show_default=True,
    help="Answer a request once its spans are committed ('written') or at once "
    "('queued': written within ~1 s).",
)
@click.option(
    "--retention",
    default=None,
    metavar="DURATION",
    callback=lambda _ctx, _param, value: _duration(value),
    help="Delete traces whose root started longer ago than this (30d, 12h, 90m, 45s), "
    "in the background.",
)
def collector(
    db: str | None,
    host: str,
    http_port: int,
    grpc_port: int,
    no_http: bool,
    no_grpc: bool,
    token: str | None,
    max_body_bytes: int,
    ack: str,
    retention: float | None,
) -> None:
    """Receive OTLP traces from any OpenTelemetry SDK and write them into the store.

    \b
    Example:
      traceduck collector --db traces.duckdb
      traceduck collector --db traces.duckdb --retention 30d
      OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 python app.py

    OTLP/HTTP (protobuf or JSON, gzip) on /v1/traces and OTLP/gRPC TraceService/Export.
    SIGTERM or Ctrl-C stops accepting and writes everything accepted before exiting.
    While it runs, `traceduck search --db` and TraceStore read the same file.
    """
    from .._config import default_db_path
    from ..collector import Collector, serve
    from ..errors import StorageError
    from ..ui import is_loopback

    if not is_loopback(host) and token is None:
        click.echo(
            f"traceduck collector: warning: listening on {host} without --token; anyone who "
            "can reach it can write traces",
            err=True,
        )
    path = os.fspath(db or default_db_path())
    try:
        instance = Collector(
            path,
            host=host,
            http_port=None if no_http else http_port,
            grpc_port=None if no_grpc else grpc_port,
            token=token,
            max_body_bytes=max_body_bytes,
            ack=ack,
            retention=retention,
        )
        code = serve(instance)
    except StorageError as exc:  # corrupt, foreign, unreachable: every trace would be dropped
        click.echo(f"traceduck collector: {_one_line(exc)}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"traceduck collector: cannot listen: {exc}", err=True)
        sys.exit(2)
    # Everything accepted is written and serve() put the default handlers back: a late second
    # SIGTERM or Ctrl-C while the interpreter exits must not turn exit 0 into death by signal.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def _duration(value: str | None) -> float | None:
    """--retention's seconds; a bad duration is click's usage error (exit 2), not a traceback."""
    from .._duration import parse_duration
    from ..errors import ConfigError

    if value is None:
        return None
    try:
        return parse_duration(value, "the retention")
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
