"""OTLP/HTTP on ``/v1/traces``: protobuf or JSON bodies, plain or gzip, as a Starlette app.

Status codes follow the OTLP/HTTP spec: 200 (with partial_success when spans were rejected),
400 malformed, 401 no or wrong bearer token, 413 body too large, 415 content type or encoding
not OTLP, 503 (with Retry-After) when the store cannot take more now. Error bodies are a
``google.rpc.Status`` in the request's encoding.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable

import anyio
from google.protobuf import json_format
from google.rpc import status_pb2
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import _runtime
from ._decode import BadRequest, Decoded, decode_json, decode_protobuf, response
from ._ingest import Ingest, Unavailable

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_DECODERS: dict[str, Callable[[bytes], Decoded]] = {PROTOBUF: decode_protobuf, JSON: decode_json}


class TooLarge(ValueError):
    pass


def create_app(ingest: Ingest, max_body_bytes: int) -> Starlette:
    limiter = anyio.CapacityLimiter(4)  # decode+write threads; the GIL makes more pointless

    async def traces(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not ingest.authorized(request.headers.get("authorization")):
            return _error(
                content_type,
                401,
                16,
                "missing or wrong bearer token",
                {"WWW-Authenticate": "Bearer"},
            )
        decode = _DECODERS.get(content_type)
        if decode is None:
            return _error(
                JSON,
                415,
                3,
                f"content type must be {PROTOBUF} or {JSON}, not {content_type or 'missing'!r}",
            )
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", ""):
            return _error(content_type, 415, 3, f"content encoding {encoding!r}: use gzip or none")
        try:
            length = int(request.headers.get("content-length", "0") or 0)
        except ValueError:
            return _error(content_type, 400, 3, "bad Content-Length")
        if length > max_body_bytes:
            return _error(content_type, 413, 8, _too_large(max_body_bytes))
        try:
            body = await _read(request, max_body_bytes)
            if encoding == "gzip":
                body = _gunzip(body, max_body_bytes)
        except TooLarge:
            return _error(content_type, 413, 8, _too_large(max_body_bytes))
        except ClientDisconnect:
            return Response(status_code=400)
        except zlib.error as exc:
            return _error(content_type, 400, 3, f"body is not valid gzip: {exc}")
        try:
            decoded = await anyio.to_thread.run_sync(ingest.accept, decode, body, limiter=limiter)
        except BadRequest as exc:
            return _error(content_type, 400, 3, str(exc))
        except Unavailable as exc:
            return _error(content_type, 503, 14, str(exc), {"Retry-After": "1"})
        except Exception as exc:  # never crash on input: report and answer
            _runtime.report_internal_error("collector HTTP request", exc)
            return _error(content_type, 500, 13, f"internal error: {exc!r}")
        message = response(decoded)
        if content_type == JSON:
            return Response(json_format.MessageToJson(message), media_type=JSON)
        return Response(message.SerializeToString(), media_type=PROTOBUF)

    async def health(request: Request) -> Response:
        """Liveness for anyone; the counters only with the token (when one is set)."""
        if not ingest.authorized(request.headers.get("authorization")):
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "ok", **ingest.stats()})

    return Starlette(
        routes=[Route("/v1/traces", traces, methods=["POST"]), Route("/", health)],
    )


async def _read(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(body: bytes, limit: int) -> bytes:
    """Decompress with a cap, so a small gzip bomb cannot take the memory."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge
    if not inflater.eof:
        raise zlib.error("truncated gzip stream")
    return out


def _too_large(limit: int) -> str:
    return f"request body is larger than the collector's limit of {limit:,} bytes"


def _error(
    content_type: str, status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    if content_type == PROTOBUF:
        body = status_pb2.Status(code=code, message=message).SerializeToString()
        return Response(body, status_code=status, media_type=PROTOBUF, headers=headers)
    payload = json.dumps({"code": code, "message": message})
    return Response(payload, status_code=status, media_type=JSON, headers=headers)
