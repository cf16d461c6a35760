"""The export and import calls every store has, over each engine's own methods."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

from ..errors import TraceduckError

__all__ = ["TransferCalls"]


class TransferCalls(ABC):
    """``export_traces`` and ``import_traces``; a base of ``TraceStore``. The file's suffix
    (and, to import, that it exists) is checked before any work, on every engine."""

    @abstractmethod
    def _check_writable(self) -> None:
        """StorageError if the store was opened read-only."""

    def export_traces(
        self,
        path: str | os.PathLike[str],
        filter_string: str | None = None,
        *,
        progress: Any = None,
    ) -> int:
        """Write the matching traces (spans, tags, metadata, histories) to .parquet or .jsonl:
        the same file on every engine, so either imports it.

        >>> store.export_traces("errors.parquet", "status = 'ERROR'")
        12

        ``progress(done, total)`` is called after each chunk. Returns how many traces.
        """
        from ._transfer import file_format

        name = os.fspath(path)
        file_format(name)  # a bad suffix fails before any work
        return self._export_traces(name, filter_string, progress)

    @abstractmethod
    def _export_traces(self, path: str, filter_string: str | None, progress: Any) -> int:
        """``export_traces`` to a path with a known suffix (written beside it, then renamed)."""

    def import_traces(
        self, path: str | os.PathLike[str], *, progress: Any = None, source: str = "api"
    ) -> Any:
        """Add the traces of an ``export_traces`` file written by either engine.

        >>> TraceStore("copy.duckdb").import_traces("errors.parquet")
        ImportResult(imported=12, skipped=0)

        Traces already in the store are skipped (counted in ``skipped``), never overwritten.
        A record that lacks a field every trace has, or holds a value the live API refuses (a
        trace id, status, tag or metadata key or value), is a ``TraceduckError`` naming its
        trace and field, and nothing of the file is imported. The tag and metadata events the
        import itself adds (an exclusive tag that gives way, tags a hand-made file gives without
        their history) have ``source`` in the history, as every edit call's.
        """
        from ._transfer import file_format

        name = os.fspath(path)
        fmt = file_format(name)
        if not os.path.isfile(name):
            raise TraceduckError(f"{name}: no such file")
        self._check_writable()
        return self._import_traces(name, fmt, progress, source)

    @abstractmethod
    def _import_traces(self, path: str, fmt: str, progress: Any, source: str) -> Any:
        """``import_traces`` of an existing file of format ``fmt`` ("parquet" or "jsonl")."""
