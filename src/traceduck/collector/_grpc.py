"""OTLP/gRPC ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

The handler takes the raw request bytes and decodes them itself, so a malformed message is
INVALID_ARGUMENT (gRPC's own deserializer would answer INTERNAL). grpc enforces the size limit
(RESOURCE_EXHAUSTED) and handles gzip.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from .. import _runtime
from ._decode import BadRequest, decode_protobuf, response
from ._ingest import Ingest, Unavailable

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


def create_server(ingest: Ingest, host: str, port: int, max_body_bytes: int) -> tuple[Any, int]:
    """A started-later grpc server bound to (host, port); returns it and the bound port."""

    def export(request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = dict(context.invocation_metadata() or ())
        if not ingest.authorized(metadata.get("authorization")):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        try:
            decoded = ingest.accept(decode_protobuf, request)
        except BadRequest as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Unavailable as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except Exception as exc:  # never crash on input
            _runtime.report_internal_error("collector gRPC request", exc)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {exc!r}")
        return response(decoded).SerializeToString()

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Export": grpc.unary_unary_rpc_method_handler(
                export, request_deserializer=None, response_serializer=None
            )
        },
    )
    server = grpc.server(
        ThreadPoolExecutor(max_workers=8, thread_name_prefix="traceduck-grpc"),
        handlers=[handler],
        options=[
            ("grpc.max_receive_message_length", max_body_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    try:
        bound = server.add_insecure_port(f"{url_host(host)}:{port}")
    except RuntimeError:  # grpcio >= 1.5x raises where older ones returned 0
        bound = 0
    if bound == 0:
        raise OSError(f"cannot bind OTLP/gRPC to {host}:{port} (in use, or not an address here)")
    return server, bound


def url_host(host: str) -> str:
    """``host`` as it goes before ``:port`` in an address: IPv6 in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
