"""Traces side by side (ZenML's comparison view): one column per trace, one row per field.

Rows: ``name``, ``status``, ``execution_time_ms``, ``timestamp``, ``span_count``,
``service_name``, then ``tags.<key>`` for every tag key of any of the traces, then
``metadata.<path>`` for every metadata value, nested objects flattened to dotted paths
(``metadata.context.git.commit``). A trace without a field has ``None`` there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._pandas import require_pandas
from .errors import TraceduckError
from .model import TraceInfo

if TYPE_CHECKING:
    import pandas as pd

    from .store import TraceStore

__all__ = ["Comparison", "compare_infos", "compare_traces", "differing_rows", "resolve_infos"]

BASE_ROWS = ("name", "status", "execution_time_ms", "timestamp", "span_count", "service_name")
_ID_PREFIX = re.compile(r"[0-9a-fA-F]{1,32}")
DEFAULT_LIMIT = 20


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out)
    else:
        out[prefix] = value


def fields(info: TraceInfo) -> dict[str, Any]:
    """One trace's fields as flat ``row name -> value``."""
    out: dict[str, Any] = {
        "name": info.name,
        "status": info.status,
        "execution_time_ms": info.execution_time_ms,
        "timestamp": datetime.fromtimestamp(info.timestamp_ms / 1000, timezone.utc).isoformat(
            timespec="milliseconds"
        ),
        "span_count": info.span_count,
        "service_name": info.service_name,
    }
    for key, value in sorted((info.tags or {}).items()):
        out[f"tags.{key}"] = value
    meta: dict[str, Any] = {}
    for key, value in sorted((info.metadata or {}).items()):
        _flatten(f"metadata.{key}", value, meta)
    out.update(sorted(meta.items()))
    return out


def _short_ids(ids: list[str]) -> list[str]:
    """The shortest prefixes (at least 8 chars) that tell these ids apart."""
    for width in range(8, 33):
        short = [i[:width] for i in ids]
        if len(set(short)) == len(set(ids)):
            return short
    return ids


def _wanted(row: str, keys: Iterable[str]) -> bool:
    for key in keys:
        if row == key or row.startswith(key + "."):
            return True
        # a bare key: a tag or metadata key of that name (and its nested paths)
        for prefix in ("tags.", "metadata."):
            full = prefix + key
            if row == full or row.startswith(full + "."):
                return True
    return False


def resolve_infos(
    store: TraceStore, ids_or_filter: str | Iterable[str], limit: int | None = DEFAULT_LIMIT
) -> list[TraceInfo]:
    """The traces to compare: ids / unique prefixes (in that order), or a filter's matches."""
    if isinstance(ids_or_filter, str):
        if _ID_PREFIX.fullmatch(ids_or_filter.strip()):
            ids = [ids_or_filter.strip()]
        else:
            return [t.info for t in store.search_traces(ids_or_filter, max_results=limit)]
    elif isinstance(ids_or_filter, Iterable):
        ids = [str(i) for i in ids_or_filter]
    else:
        raise TraceduckError(f"compare takes trace ids or a filter string, not {ids_or_filter!r}")
    if not ids:
        raise TraceduckError("give at least one trace id (or a filter) to compare")
    full = list(dict.fromkeys(store.resolve_trace_id(i) for i in ids))
    found: dict[str, TraceInfo] = {}
    for start in range(0, len(full), 500):
        chunk = full[start : start + 500]
        quoted = ", ".join("'" + i + "'" for i in chunk)  # resolved ids: 32 hex chars
        for trace in store.search_traces(f"trace_id IN ({quoted})", max_results=None):
            found[trace.info.trace_id] = trace.info
    return [found[i] for i in full if i in found]


@dataclass
class Comparison:
    """The comparison as plain data: ``values[r][c]`` is row ``rows[r]`` of trace ``c``."""

    rows: list[str]
    columns: list[str]  # short ids
    trace_ids: list[str]
    values: list[list[Any]]

    def differing(self) -> list[str]:
        """The rows whose values are not all the same (missing differs from any value)."""
        return [row for row, values in zip(self.rows, self.values) if _differs(values)]

    def to_pandas(self) -> pd.DataFrame:
        pd = require_pandas("compare_traces")
        frame = pd.DataFrame(
            self.values,
            index=pd.Index(self.rows, name="field"),
            columns=self.columns,
            dtype=object,
        )
        frame.attrs["trace_ids"] = list(self.trace_ids)
        return frame


def compare_infos(infos: list[TraceInfo], keys: Iterable[str] | None = None) -> Comparison:
    """The comparison of already loaded traces."""
    per_trace = [fields(info) for info in infos]
    tag_rows = sorted({r for f in per_trace for r in f if r.startswith("tags.")})
    meta_rows = sorted({r for f in per_trace for r in f if r.startswith("metadata.")})
    rows = [*BASE_ROWS, *tag_rows, *meta_rows]
    if keys is not None:
        keys = [keys] if isinstance(keys, str) else list(keys)
        rows = [r for r in rows if _wanted(r, keys)]
    ids = [info.trace_id for info in infos]
    values = [[f.get(r) for f in per_trace] for r in rows]
    return Comparison(rows, _short_ids(ids), ids, values)


def differing_rows(frame: pd.DataFrame) -> list[str]:
    """The rows of a ``compare_traces`` DataFrame whose values are not all the same."""
    return [str(row) for row, values in frame.iterrows() if _differs(values.tolist())]


def _differs(values: Iterable[Any]) -> bool:
    """Whether the values are not all the same (missing differs from any value)."""
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1


def compare_traces(
    ids_or_filter: str | Iterable[str],
    keys: Iterable[str] | None = None,
    *,
    limit: int | None = DEFAULT_LIMIT,
    store: TraceStore | None = None,
) -> pd.DataFrame:
    """Traces side by side: a pandas DataFrame with one column per trace, one row per field.

    >>> td.compare_traces(["3fa2", "b81c", "77e0"])           # ids or unique prefixes
    >>> td.compare_traces("tags.experiment = 'lr-sweep'", keys=["tags.lr", "eval"])

    ``ids_or_filter``: a list of ids (columns in that order), one id, or a filter string (its
    first ``limit`` matches, newest first). Rows: name, status, execution_time_ms, timestamp,
    span_count, service_name, every ``tags.<key>`` and every ``metadata.<path>`` (nested objects
    flattened). ``keys`` keeps only the rows named (``"tags.lr"``, ``"status"``), or, for a bare
    key, the tag and metadata rows of that key (``"eval"`` keeps ``metadata.eval.*``).
    Columns are short trace ids; ``frame.attrs["trace_ids"]`` has the full ones.
    """
    if store is None:
        from ._config import current_db
        from .errors import ConfigError
        from .store import TraceStore

        path = current_db()
        if path is None:
            raise ConfigError("no local store is configured (configure(db=None)); pass store=")
        store = TraceStore(path)
    return compare_infos(resolve_infos(store, ids_or_filter, limit), keys).to_pandas()
