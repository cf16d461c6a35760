"""The tracing path's sink into ClickHouse (a server or a chdb directory): batched inserts.
Many processes and hosts write at once: there is no file to let go of."""

from __future__ import annotations

import os

import pyarrow as pa

from ..._selection import Selection
from .._records import WriteBatch
from .._retention import Expiry
from .._sink import check_parent
from . import _delete
from ._writer import ClickHouseWriter

__all__ = ["ClickHouseSink"]


class ClickHouseSink:
    """Writes batches into the ClickHouse store ``name`` (``store._sink.Sink``)."""

    db = None  # no file handle: nothing to open, release or close
    # The exporter writes early from this many queued spans (DuckDB: 8,192). Every insert is a
    # part that ClickHouse merges later, with a fixed cost besides its rows (the lookup of
    # what is stored, the INSERTs, the merge): in the ingest suite 8,192 and 16,384 were
    # slower than this (benchmarks/README.md, "Exporter spans/s into chdb").
    early_write_spans = 32_768

    def __init__(self, name: str) -> None:
        self._writer = ClickHouseWriter(name)
        self.in_process = self._writer.name.engine == "chdb"  # else a server's, over HTTP

    def write(self, batch: WriteBatch, timeout_s: float) -> None:
        self._writer.write_batch(batch, timeout_s)  # BusyError is a TurnError: later

    def release_if_idle(self) -> None:
        pass

    def warm_up(self) -> None:
        """pyarrow imports pandas (when installed) on its first conversion of Python values:
        that second is paid here, at start, not in the first write."""
        pa.array(["warm-up"])

    def check(self) -> None:
        """Connect and bring the tables up to date, as the first write would; a chdb
        directory not there yet is left for the first write to create."""
        name = self._writer.name
        if name.engine == "chdb" and not os.path.exists(name.path or ""):
            check_parent(name.path or "", name.display)
            return
        self._writer.connection()

    def expiry(self, retention_s: float | None) -> Expiry:
        return Expiry(retention_s, delete=self._expire, ready=self._exists)

    def _expire(self, selection: Selection) -> int:
        return _delete.delete_selected(self._writer.connection(), selection, source="retention")

    def _exists(self) -> bool:
        """A chdb directory not there yet is left alone (creating it is a write's job)."""
        name = self._writer.name
        return name.engine != "chdb" or os.path.isdir(name.path or "")
