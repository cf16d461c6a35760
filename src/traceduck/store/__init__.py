"""Stores: one interface, two engines (DuckDB embedded, ClickHouse at scale).

``TraceStore(name)`` opens the store a name denotes: a path is a DuckDB file (``duckdb/``),
``chdb:///dir`` and ``clickhouse://host/db`` a ClickHouse store (``clickhouse/``).
"""

from ._base import TraceStore

__all__ = ["TraceStore"]
