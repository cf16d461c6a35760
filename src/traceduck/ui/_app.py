"""The ASGI app: the page shell, its static assets, the JSON API and the guards around it.

Guards (``_Guard``, on every request):

* with a token, every ``/api/`` request needs ``Authorization: Bearer <token>``; the page shell
  and assets load without it (they hold no data);
* a state-changing request (anything but GET/HEAD/OPTIONS) needs a JSON content type, and is
  refused when its ``Origin`` (or ``Sec-Fetch-Site``) says it comes from another site. With no
  cookies involved a forged cross-site request carries no token, and browsers will not send a
  JSON body cross-origin without a CORS preflight this app never answers;
* when serving on loopback, a request whose ``Host`` is not a loopback name is refused, so a
  web page cannot reach the UI by pointing its own domain at 127.0.0.1 (DNS rebinding);
* every response carries a strict Content-Security-Policy (no inline script, nothing from
  other origins) and ``Referrer-Policy: no-referrer`` so a ``?token=`` URL never leaks.
"""

from __future__ import annotations

import functools
import hmac
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import _api
from ._json import error

STATIC = Path(__file__).parent / "static"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def create_app(
    db_path: str | os.PathLike[str],
    token: str | None = None,
    *,
    hosts: tuple[str, ...] | None = LOOPBACK_HOSTS,
) -> Starlette:
    """The web app over one store file.

    >>> app = create_app("traces.duckdb", token="s3cret")   # serve with any ASGI server

    ``hosts``: the names the ``Host`` header may carry (any port); None accepts any, for a
    server bound to a non-loopback interface.
    """
    routes: list[Any] = [
        Route(r.path, _guarded(r.endpoint), methods=r.methods) for r in _api.routes()
    ]
    routes += [
        Route("/api/{rest:path}", _unknown_api),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Route("/", _shell, methods=["GET"]),
        Route("/trace/{trace_id}", _shell, methods=["GET"]),
        Route("/compare", _shell, methods=["GET"]),
        Route("/stats", _shell, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.db_path = os.fspath(db_path)
    app.add_middleware(_Guard, token=token or None, hosts=hosts)
    return app


def _shell(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "") or "error"
    if request.url.path.startswith("/api/"):
        return error(status, f"{request.method} {request.url.path}: {detail}", kind="request")
    return PlainTextResponse(detail, status_code=status)


def _unknown_api(request: Request) -> Response:
    return error(404, f"no API endpoint {request.method} {request.url.path}", kind="request")


def _guarded(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into 4xx JSON (sync handlers stay sync: they run in the pool)."""
    if inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        async def run_async(request: Request) -> Response:
            try:
                return await endpoint(request)
            except Exception as exc:
                return _api.to_response(exc)

        return run_async

    @functools.wraps(endpoint)
    def run(request: Request) -> Response:
        try:
            return endpoint(request)
        except Exception as exc:
            return _api.to_response(exc)

    return run


class _Guard:
    def __init__(self, app: ASGIApp, token: str | None, hosts: tuple[str, ...] | None) -> None:
        self.app = app
        self.token = token
        self.hosts = None if hosts is None else {h.lower() for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _HEADERS
            await send(message)

        refusal = self._wrong_host(scope)
        if refusal is None and scope["path"].startswith("/api/"):
            refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _wrong_host(self, scope: Scope) -> Response | None:
        if self.hosts is None:
            return None
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name.lower() in self.hosts:
            return None
        return error(
            403,
            f"Host {host!r} is not a loopback name; open the UI at http://127.0.0.1:<port>/ "
            "(or serve it with --host to accept other names)",
            kind="host",
        )

    def _refusal(self, scope: Scope) -> Response | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token is not None:
            given = headers.get("authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode(), self.token.encode()
            ):
                return error(
                    401,
                    "this server needs its token: send 'Authorization: Bearer <token>' "
                    "(the URL printed at startup hands it to the page)",
                    kind="auth",
                )
        if scope["method"] in _SAFE_METHODS:
            return None
        if headers.get("sec-fetch-site") == "cross-site" or not _same_origin(headers):
            return error(403, "cross-origin requests cannot change traces", kind="origin")
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return error(
                415, "state-changing requests need 'Content-Type: application/json'", kind="request"
            )
        return None


def _same_origin(headers: dict[str, str]) -> bool:
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser (curl, scripts): the token, if any, already vouched for it
    host = headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")
