"""How the tracing path writes into a store, whatever its engine: a ``Sink``.

The exporter's writer thread (``_export/_duckdb.py``) holds one sink and calls it between
batches: ``write`` a batch, ``release_if_idle`` when its queue has emptied, ``warm_up`` once at
start, and ``expiry`` for retention. ``open_sink(name)`` picks the engine from the store's name,
as ``TraceStore(name)`` does; each engine's sink lives in its package.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError, StorageError
from ._names import parse_store_name

if TYPE_CHECKING:
    from ._records import WriteBatch
    from ._retention import Expiry

__all__ = ["Sink", "TurnError", "check_parent", "close_all", "load_engines", "open_sink"]


class TurnError(StorageError):
    """The store asks to be tried again soon: another process's turn at a DuckDB file, a busy
    ClickHouse server. The writer waits a moment and writes the batch again."""


class Sink(Protocol):
    # Whether a write runs an engine inside this process (DuckDB, chdb): one under way at
    # shutdown must end before the interpreter does. A server's write is a network call that
    # can be left to its thread.
    in_process: bool

    def write(self, batch: WriteBatch, timeout_s: float) -> None:
        """Write every span and trace of ``batch``, or raise ``TurnError`` (later) or
        ``StorageError`` (the store cannot be used); anything else is the batch's data."""

    def release_if_idle(self) -> None:
        """Nothing to write for now: let go of what other processes may wait for."""

    def warm_up(self) -> None:
        """Pay one-time costs at the writer's start rather than in its first write."""

    def check(self) -> None:
        """Open the store as a write would, creating nothing: ``StorageError`` when it cannot
        be used (a corrupt or foreign file, a chdb directory held by another process, an
        unreachable server), ``TurnError`` when it is only busy (a DuckDB file another process
        holds: the writer gets its turn later)."""

    def expiry(self, retention_s: float | None) -> Expiry:
        """Retention for this store (inert when ``retention_s`` is None)."""


def check_parent(path: str, display: str) -> None:
    """For a store not there yet, which its first write creates: ``StorageError`` when the
    directory it would go in does not exist (``Sink.check``)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise StorageError(f"cannot create store {display}: directory {parent} does not exist")


def open_sink(name: str) -> Sink:
    """The sink for the store ``name`` denotes (a path, ``chdb:///dir``, ``clickhouse://...``)."""
    if parse_store_name(name).engine == "duckdb":
        from .duckdb._sink import DuckDBSink

        return DuckDBSink(name)
    try:
        from .clickhouse._sink import ClickHouseSink
    except ImportError as exc:
        raise ConfigError(
            f"ClickHouse stores need the clickhouse extra: pip install 'traceduck[clickhouse]'"
            f" ({exc})"
        ) from None
    return ClickHouseSink(name)


def load_engines() -> None:
    """Import the DuckDB engine now, when the exporter is imported, not at the first store.

    DuckDB registers exit hooks when imported; hooks run in the reverse order of registration,
    and once DuckDB's have run it refuses statements that read Python objects (every write). An
    OpenTelemetry provider registers its own exit hook, whose shutdown flushes the last spans
    into the exporter: DuckDB imported after that provider was made (the zero-code exporter's
    case) refused those last writes, and they were lost."""
    from .duckdb import _sink  # noqa: F401


def close_all() -> None:
    """Close every store this process holds open (at exit and before a fork: DuckDB then
    checkpoints cleanly). ClickHouse keeps nothing open that needs it."""
    from .duckdb._databases import close_all as close_duckdb

    close_duckdb()
