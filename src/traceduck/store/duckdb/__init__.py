"""The DuckDB engine: one embedded file. Only this package imports duckdb.

Schema and migrations, connection handling (released when idle), the batch writer (NumPy columns),
readers, tag edits in transactions; ``DuckDBStore`` is what ``TraceStore(path)`` returns.
"""

from ._store import DuckDBStore

__all__ = ["DuckDBStore"]
