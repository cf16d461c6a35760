"""``traceduck ui``: a local web app over a trace store (the page, its assets, a JSON API).

>>> from traceduck.ui import create_app, ServerThread
>>> with ServerThread(create_app("traces.duckdb")) as server:
...     print(server.url)

Everything ships in the package (hand-written HTML, CSS and JavaScript: no CDN, no build step).
"""

from __future__ import annotations

from ._app import create_app
from ._server import ServerThread, base_url, bind, is_loopback, serve

__all__ = ["ServerThread", "base_url", "bind", "create_app", "is_loopback", "serve"]
