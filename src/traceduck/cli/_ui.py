"""``traceduck ui``: serve the web app over a store."""

from __future__ import annotations

import os
import urllib.parse

import click

from .._config import default_db_path
from ._common import CONTEXT, console, db_option, err_console, friendly_errors


@click.command(context_settings=CONTEXT)
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535),
              help="Port (0: any free port).")  # fmt: skip
@click.option("--token", default=None, envvar="TRACEDUCK_UI_TOKEN",
              help="Require 'Authorization: Bearer TOKEN' on every /api/ request "
                   "(also $TRACEDUCK_UI_TOKEN).")  # fmt: skip
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@friendly_errors
def ui(db: str | None, host: str, port: int, token: str | None, open_browser: bool) -> None:
    """Browse, filter, tag and compare traces in a local web app.

    \b
    Example:
      traceduck ui --db traces.duckdb --port 5000
      traceduck ui --host 0.0.0.0 --token "$(openssl rand -hex 16)"

    Works while an app or `traceduck collector` writes to the same store: the UI opens the
    file per request and lets go of it when idle, and new traces show on refresh.
    """
    from ..store._names import parse_store_name
    from ..ui import base_url, bind, create_app, is_loopback, serve

    path = db or default_db_path()
    shown = parse_store_name(path).display  # a bad URL stops here, before the port is taken
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    url = base_url(sock) + "/"
    if host in ("0.0.0.0", "::"):
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    if token:
        url += "?" + urllib.parse.urlencode({"token": token})
    if not is_loopback(host) and not token:
        err_console.print(
            f"[yellow]warning:[/] serving {shown} on {host} without --token: anyone who can "
            "reach this port can read and tag your traces",
            highlight=False,
        )
    console.print(f"traceduck ui: serving {shown} at {url}  (Ctrl-C to stop)", markup=False,
                  highlight=False, soft_wrap=True)  # fmt: skip
    if "://" not in path and not os.path.exists(path):
        # Not an error: the UI may be started before the app or collector that fills the store.
        err_console.print(
            f"[yellow]warning:[/] no store at {path} yet (check --db); traces show once "
            "something writes there",
            highlight=False,
        )
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        hosts = None if not is_loopback(host) else ("127.0.0.1", "localhost", "[::1]", host)
        serve(create_app(path, token=token, hosts=hosts), sock)
    except KeyboardInterrupt:
        pass
