"""The export file, the same for every engine: one record per trace, with its spans, tag history
and metadata entries as nested lists, and the store's exclusive tag keys in the header (Parquet
key-value metadata, or the first JSON line). Either engine imports what either exported.

Each engine reads its rows for ``export_traces`` and writes them back for ``import_traces``
(``duckdb/_transfer.py``, ``clickhouse/_transfer.py``); chunks of ``CHUNK`` traces keep memory
bounded on big stores.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .. import _json
from ..errors import TraceduckError
from ._transfer_check import checked

__all__ = [
    "CHUNK",
    "FORMAT_VERSION",
    "ImportResult",
    "JsonlOut",
    "Layout",
    "ParquetOut",
    "check_header",
    "file_format",
    "read_jsonl",
    "read_parquet",
]

FORMAT_VERSION = 1
HEADER_KEY = b"traceduck"
CHUNK = 2000  # traces per chunk: bounded memory, few scans of the span table
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}

# nested list column -> (source table, columns left out, order within a trace)
NESTED = {
    "spans": ("spans", ("trace_id",), "start_time_ns, span_id"),
    "tag_events": ("tag_events", ("trace_id", "event_id"), "event_id"),
    "metadata_entries": ("trace_metadata", ("trace_id", "entry_id"), "entry_id"),
}

Progress = Callable[[int, int], None]  # (traces done so far, total)


@dataclass(frozen=True)
class ImportResult:
    """How many traces an import added, and how many it skipped (already in the store)."""

    imported: int
    skipped: int


def file_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise TraceduckError(
            f"{path}: unknown file type {ext or '(none)'!r}; use a .parquet or .jsonl file"
        )
    return FORMATS[ext]


@dataclass(frozen=True)
class Layout:
    """The store's columns, and which hold JSON (written as JSON text in the records)."""

    columns: dict[str, list[str]]  # table -> columns in order
    json: dict[str, set[str]]  # table -> JSON columns

    def nested_fields(self, name: str) -> list[str]:
        source, left_out, _ = NESTED[name]
        return [c for c in self.columns[source] if c not in left_out]

    def json_fields(self, name: str) -> set[str]:
        return self.json[NESTED[name][0]] if name in NESTED else self.json["traces"]


class ParquetOut:
    def __init__(self, out: Any, header: dict[str, Any]) -> None:
        self.out = out
        self.header = header
        self.writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table, layout: Layout) -> None:
        if self.writer is None:
            schema = table.schema.with_metadata({HEADER_KEY: json.dumps(self.header).encode()})
            self.writer = pq.ParquetWriter(self.out, schema, compression="zstd")
        self.writer.write_table(table.cast(self.writer.schema))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class JsonlOut:
    """JSON Lines: JSON columns as JSON values; a key is left out where SQL has NULL."""

    def __init__(self, out: Any, header: dict[str, Any]) -> None:
        self.out = out
        self.out.write((json.dumps(header) + "\n").encode())

    def write(self, table: pa.Table, layout: Layout) -> None:
        lines = []
        for row in table.to_pylist():
            record = _decoded(row, layout.json_fields("traces"))
            for name in NESTED:
                items = row.get(name) or []
                record[name] = [_decoded(item, layout.json_fields(name)) for item in items]
            lines.append(_json.dumps_lenient(record))
        if lines:
            self.out.write(("\n".join(lines) + "\n").encode())

    def close(self) -> None:
        pass


def write_export(
    path: str,
    header: dict[str, Any],
    ids: list[str],
    records: Callable[[list[str]], Any],
    layout: Any,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the export file ``path`` (its format by suffix): ``header``, then the traces
    ``ids`` in chunks of ``CHUNK``, each chunk's rows from ``records(chunk)``. The file appears
    whole or not at all (written beside it, then renamed). Returns how many traces."""
    fmt = file_format(path)
    part = f"{path}.part"
    try:
        out = open(part, "wb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:  # name the user's file, not the temporary one beside it
        raise OSError(exc.errno, exc.strerror, path) from None
    try:
        with out:
            writer = ParquetOut(out, header) if fmt == "parquet" else JsonlOut(out, header)
            done = 0
            for start in range(0, max(len(ids), 1), CHUNK):
                chunk = ids[start : start + CHUNK]
                writer.write(records(chunk), layout)
                done += len(chunk)
                if progress is not None:
                    progress(done, len(ids))
            writer.close()
        os.replace(part, path)
    except BaseException:
        if os.path.exists(part):
            os.remove(part)
        raise
    return len(ids)


def _decoded(row: dict[str, Any], json_fields: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or key in NESTED:
            continue
        if key in json_fields:
            value = json.loads(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[key] = value
    return out


def read_parquet(path: str) -> tuple[dict[str, Any], int, Iterator[pa.Table]]:
    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TraceduckError(f"{path} is not a readable Parquet file: {exc}") from None
    raw = (file.schema_arrow.metadata or {}).get(HEADER_KEY)
    header = check_header(path, json.loads(raw) if raw else None)
    batches = (
        checked(pa.Table.from_batches([b]), path) for b in file.iter_batches(batch_size=CHUNK)
    )
    return header, file.metadata.num_rows, batches


def read_jsonl(
    path: str, schema: pa.Schema, layout: Layout
) -> tuple[dict[str, Any], int, Iterator[pa.Table]]:
    with open(path, "rb") as f:
        first = f.readline()
        total = sum(1 for line in f if line.strip())
    try:
        header = json.loads(first) if first.strip() else None
    except ValueError:
        header = None
    header = check_header(path, header)

    def chunks() -> Iterator[pa.Table]:
        records: list[dict[str, Any]] = []
        with open(path, "rb") as f:
            f.readline()
            for number, line in enumerate(f, start=2):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    records.append(_encoded_record(record, layout))
                except (ValueError, TypeError, AttributeError) as exc:
                    raise TraceduckError(
                        f"{path}, line {number}: not a trace record ({exc})"
                    ) from None
                if len(records) >= CHUNK:
                    yield _table(records, schema, path)
                    records = []
        if records:
            yield _table(records, schema, path)

    return header, total, chunks()


def _table(records: list[dict[str, Any]], schema: pa.Schema, path: str) -> pa.Table:
    try:
        table = pa.Table.from_pylist(records, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise TraceduckError(f"{path}: a record does not fit the trace layout ({exc})") from None
    return checked(table, path)


def _encoded_record(record: dict[str, Any], layout: Layout) -> dict[str, Any]:
    if not isinstance(record, dict) or not isinstance(record.get("trace_id"), str):
        raise ValueError("a JSON object with a trace_id is expected")
    out = _encoded(record, layout.json_fields("traces"), set())
    for name in NESTED:
        out[name] = [
            _encoded(item, layout.json_fields(name), {"ts"}) for item in record.get(name) or []
        ]
    return out


def _encoded(item: dict[str, Any], json_fields: set[str], times: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key in NESTED:
            continue
        if key in json_fields:
            value = _json.dumps(value)
        elif key in times and isinstance(value, str):
            value = datetime.fromisoformat(value)
        out[key] = value
    return out


def check_header(path: str, header: Any) -> dict[str, Any]:
    if not isinstance(header, dict) or "traceduck_export" not in header:
        raise TraceduckError(f"{path} is not a traceduck export (no traceduck header)")
    if header["traceduck_export"] > FORMAT_VERSION:
        raise TraceduckError(
            f"{path} has export format {header['traceduck_export']}, newer than this traceduck "
            f"reads ({FORMAT_VERSION}); upgrade traceduck"
        )
    return header
