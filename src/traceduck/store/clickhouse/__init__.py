"""The ClickHouse engine: a ClickHouse server (clickhouse://) or chdb in the process (chdb://).

Only this package imports clickhouse_connect (and, through it, chdb). ``ClickHouseStore`` is
what ``TraceStore(url)`` returns; ``ClickHouseWriter`` is the exporter's handle
(``write_batch(batch, timeout_s)``).
"""

from ._store import ClickHouseStore
from ._writer import BusyError, ClickHouseWriter

__all__ = ["BusyError", "ClickHouseStore", "ClickHouseWriter"]
