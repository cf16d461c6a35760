"""``traceduck collector``: an OTLP receiver (HTTP and gRPC) writing into a DuckDB store.

>>> from traceduck.collector import Collector
>>> with Collector("traces.duckdb", http_port=0, grpc_port=0) as collector:
...     print(collector.http_endpoint)
"""

from __future__ import annotations

from ._decode import BadRequest, decode_json, decode_protobuf
from ._ingest import DEFAULT_MAX_BODY_BYTES
from ._server import Collector, serve

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "BadRequest",
    "Collector",
    "decode_json",
    "decode_protobuf",
    "serve",
]
