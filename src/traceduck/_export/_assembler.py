"""Hold a trace's spans until its local root ends, then hand the whole trace on.

A trace whose spans outlive the memory budget (a very long or very wide trace) is handed on in
parts; the store merges parts into one trace, so it still ends complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import _experiment, _json
from .._autocontext import Labels
from .._constants import DEFAULT_EXPERIMENT, DEFAULT_EXPERIMENT_ID, PREVIEW_CHARS, STATUS_ERROR
from ..store._records import PlainTrace, SpanRows, TraceRow, WriteBatch
from . import _convert

_COL = {name: i for i, name in enumerate(
    ("trace_id", "span_id", "parent_id", "name", "span_type", "status", "status_message",
     "start_time_ns", "end_time_ns", "duration_ms", "kind", "service_name", "attributes",
     "inputs", "outputs", "events")
)}  # fmt: skip


_NAME, _PARENT, _SPAN_ID, _STATUS, _MESSAGE, _START, _END, _SERVICE = (
    _COL[c]
    for c in (
        "name", "parent_id", "span_id", "status", "status_message", "start_time_ns",
        "end_time_ns", "service_name",
    )
)  # fmt: skip
_ATTRS, _INPUTS, _OUTPUTS, _EVENTS = (
    _COL[c] for c in ("attributes", "inputs", "outputs", "events")
)
# What one span row costs in memory beside its text columns (tuple, ints, small strings).
SPAN_ROW_BYTES = 1_000


_NO_LABELS: Labels = ([], {})

# A whole new trace without tags in the Default experiment, as it waits for the writer: one
# flat tuple (estimated bytes, trace row, span count, *span rows, *metadata rows) of plain values.
# Python's GC stops tracking a tuple of untracked values at the first collection that sees it,
# but a tuple of tuples only at a later one, after its members: nested three deep (trace ->
# span rows -> row), the queued traces of a tight loop reached the GC's oldest generation and
# made its full collections run every few thousand traces. ``batch_of`` makes PlainTraces.
QueuedTrace = tuple[Any, ...]


class RootLabels(NamedTuple):
    """What a trace's local root carries besides its span: tags, exclusive key -> scope,
    metadata entries (key, value, unix time ns) and the experiment's name (None: Default)."""

    tags: dict[str, Any]
    exclusive: dict[str, str]
    metadata: list[tuple]
    experiment: str | None = None


# A NamedTuple's own constructor is a Python function: tuple.__new__ makes the same in C.
_new_labels = tuple.__new__


@dataclass
class Bundle:
    """One trace (or part of one) ready to write, and an estimate of the memory it holds."""

    row: TraceRow
    spans: SpanRows
    nbytes: int = 0


class Assembler:
    """Groups span rows by trace id and releases a trace when its local root arrives."""

    def __init__(self, max_pending_spans: int = 200_000, remember: int = 100_000) -> None:
        self.pending: dict[str, list[tuple[Any, ...]]] = {}
        self.pending_spans = 0
        self.max_pending_spans = max_pending_spans
        # Trace ids whose local root was written: the last ``remember`` to 2 x ``remember``
        # of them, in two generations (a set add per trace, where an ordered dict cost 3x).
        self._written: set[str] = set()
        self._written_before: set[str] = set()
        self._remember = remember

    def add(
        self,
        row: tuple[Any, ...],
        is_root: bool,
        labels: RootLabels | None = None,
    ) -> Bundle | QueuedTrace | None:
        """Add one span row; what to write when this completes (or extends) a trace."""
        trace_id = row[0]
        if is_root:
            rows = self.pending.pop(trace_id, None)
            if rows is None:  # most roots: no span of theirs ended before them here
                rows = [row]
            else:
                self.pending_spans -= len(rows)
                rows.append(row)
            self._remember_written(trace_id)
            return make_bundle(rows, root=row, labels=labels)
        if trace_id in self._written or trace_id in self._written_before:
            # a span that ended after its root: extend the trace
            return make_bundle([row], root=None, labels=None)
        self.pending.setdefault(trace_id, []).append(row)
        self.pending_spans += 1
        return None

    def add_plain_root(
        self, row: tuple[Any, ...], metadata: Sequence[tuple[str, Any, int]]
    ) -> Bundle | QueuedTrace:
        """``add(row, True, labels)`` for a true root whose labels are ``metadata`` entries
        alone (no tags, no experiment): what most roots of a traced program are. The same
        result without the labels' tuple and ``make_bundle``'s checks, a microsecond a trace
        of the thread that converts spans."""
        trace_id = row[0]
        rows = self.pending.pop(trace_id, None) if self.pending else None
        if rows is None:
            rows = [row]
        else:
            self.pending_spans -= len(rows)
            rows.append(row)
        self._remember_written(trace_id)
        try:
            return _plain(rows, row, metadata)
        except (TypeError, ValueError):  # metadata JSON cannot hold: the general path reports it
            return make_bundle(rows, root=row, labels=RootLabels({}, {}, list(metadata)))

    def overflow(self) -> list[Bundle]:
        """Release the oldest pending traces, as parts, while over the memory budget."""
        out = []
        while self.pending_spans > self.max_pending_spans and self.pending:
            trace_id = next(iter(self.pending))
            out.append(self.release(trace_id))
        return out

    def release(self, trace_id: str) -> Bundle:
        rows = self.pending.pop(trace_id)
        self.pending_spans -= len(rows)
        self._remember_written(trace_id)
        return make_bundle(rows, root=None, labels=None)

    def drain(self) -> list[Bundle]:
        """Every pending trace as a part (at shutdown: their roots never ended here)."""
        return [self.release(trace_id) for trace_id in list(self.pending)]

    def _remember_written(self, trace_id: str) -> None:
        written = self._written
        written.add(trace_id)
        if len(written) >= self._remember:
            self._written_before = written
            self._written = set()


def make_bundle(
    rows: list[tuple[Any, ...]],
    root: tuple[Any, ...] | None,
    labels: RootLabels | None,
) -> Bundle | QueuedTrace:
    """What the writer takes for ``rows``: a whole new trace without tags in the Default
    experiment (its true root is here) as a ``QueuedTrace``, anything else as a Bundle, whose
    trace row comes from ``root``, else from the earliest span."""
    if (
        root is not None
        and root[_PARENT] is None
        and (not labels or not (labels.tags or labels.exclusive or labels.experiment))
    ):
        try:
            return _plain(rows, root, labels[2] if labels else ())
        except (TypeError, ValueError):
            pass  # metadata JSON cannot hold: the writer's general path reports it
    spans = SpanRows(rows)
    head = root if root is not None else min(rows, key=lambda r: r[_COL["start_time_ns"]])
    tags, exclusive, metadata, experiment = labels or RootLabels({}, {}, [])
    inputs = head[_COL["inputs"]]
    outputs = head[_COL["outputs"]]
    trace = TraceRow(
        trace_id=head[0],
        name=head[_COL["name"]],
        status=head[_COL["status"]],
        status_message=head[_COL["status_message"]]
        if head[_COL["status"]] == STATUS_ERROR
        else None,
        start_time_ns=head[_COL["start_time_ns"]],
        end_time_ns=head[_COL["end_time_ns"]],
        span_count=len(rows),
        service_name=head[_COL["service_name"]],
        root_span_id=head[_COL["span_id"]],
        has_root=root is not None and root[_COL["parent_id"]] is None,
        from_root=root is not None,
        request_preview=inputs[:PREVIEW_CHARS] if inputs else None,
        response_preview=outputs[:PREVIEW_CHARS] if outputs else None,
        tags=tags,
        exclusive=exclusive,
        metadata=metadata,
        experiment=experiment,
    )
    return Bundle(trace, spans, _nbytes(rows))


def _plain(
    rows: list[tuple[Any, ...]], root: tuple[Any, ...], metadata: Sequence[tuple[str, Any, int]]
) -> QueuedTrace:
    trace_id = root[0]
    start, end, status = root[_START], root[_END], root[_STATUS]
    inputs, outputs = root[_INPUTS], root[_OUTPUTS]
    if len(metadata) == 1:  # most traces: the automatic context alone
        key, value, ts = metadata[0]
        text = _shared_json(value)
        logged: Sequence[tuple[Any, ...]] = ((ts, trace_id, key, text),)
        latest = _latest(((key, text),))
    elif metadata:
        logged = [(ts, trace_id, key, _shared_json(value)) for key, value, ts in metadata]
        latest = _latest(tuple(entry[2:] for entry in logged))
    else:
        logged, latest = (), "{}"
    trace = (
        trace_id,
        root[_NAME],
        status,
        root[_MESSAGE] if status == STATUS_ERROR else None,
        start // 1_000_000,
        (end - start) / 1e6,
        start,
        end,
        len(rows),
        root[_SERVICE],
        root[_SPAN_ID],
        True,
        inputs[:PREVIEW_CHARS] if inputs else None,
        outputs[:PREVIEW_CHARS] if outputs else None,
        DEFAULT_EXPERIMENT_ID,
        DEFAULT_EXPERIMENT,
        "{}",
        latest,
    )
    if len(rows) == 1:  # most traces: ``_nbytes`` of the one row, without its loop
        nbytes = (
            SPAN_ROW_BYTES + len(root[_ATTRS]) + len(root[_EVENTS])
            + (len(inputs) if inputs else 0) + (len(outputs) if outputs else 0)
        )  # fmt: skip
        return (nbytes, trace, 1, root, *logged)
    return (_nbytes(rows), trace, len(rows), *rows, *logged)


def _nbytes(rows: list[tuple[Any, ...]]) -> int:
    nbytes = SPAN_ROW_BYTES * len(rows)
    for r in rows:
        nbytes += len(r[_ATTRS]) + len(r[_EVENTS]) + len(r[_INPUTS] or "") + len(r[_OUTPUTS] or "")
    return nbytes


# JSON text of recently seen objects: the automatic context is one dict shared by every trace
# of a process, encoded once here instead of once per trace. An entry keeps its object alive,
# so its id cannot be reused by another object while it is cached.
_SHARED: dict[int, tuple[Any, str]] = {}
_KEYS: dict[str, str] = {}


def _shared_json(value: Any) -> str:
    if not isinstance(value, (dict, list)):
        return _json.dumps(value)
    hit = _SHARED.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    text = _json.dumps(value)
    if len(_SHARED) >= 64:
        _SHARED.clear()
    _SHARED[id(value)] = (value, text)
    return text


# The latest-value object of recently seen (key, JSON text) sequences: most traces of a process
# carry the same automatic context (one shared text object, whose hash Python keeps).
_LATEST: dict[tuple[tuple[str, str], ...], str] = {}


def _latest(entries: tuple[tuple[str, str], ...]) -> str:
    """The JSON object of the latest value per key of metadata (key, JSON text) entries."""
    text = _LATEST.get(entries)
    if text is None:
        last = dict(entries)  # first key order, latest value
        text = "{" + ",".join(f"{_key_json(k)}:{v}" for k, v in last.items()) + "}"
        if len(_LATEST) >= 256:
            _LATEST.clear()
        _LATEST[entries] = text
    return text


def _key_json(key: str) -> str:
    text = _KEYS.get(key)
    if text is None:
        if len(_KEYS) >= 4096:
            _KEYS.clear()
        text = _KEYS[key] = _json.dumps(key)
    return text


def batch_of(bundles: Sequence[Bundle | QueuedTrace], source: str = "live") -> WriteBatch:
    """One WriteBatch of Bundles and queued plain traces (the writer's unit)."""
    rows: list[tuple[Any, ...]] = []
    traces: list[TraceRow] = []
    plain: list[PlainTrace] = []
    for bundle in bundles:
        if type(bundle) is tuple:
            end = 3 + bundle[2]
            spans = bundle[3:end]
            rows.extend(spans)
            plain.append((spans, bundle[1], bundle[end:], bundle[0]))
        else:
            rows.extend(bundle.spans.rows)  # type: ignore[union-attr]
            traces.append(bundle.row)  # type: ignore[union-attr]
    return WriteBatch(spans=SpanRows(rows), traces=traces, source=source, plain=plain)


def span_count(bundle: Bundle | QueuedTrace) -> int:
    """How many spans a Bundle or queued plain trace carries."""
    return bundle[2] if type(bundle) is tuple else len(bundle.spans)  # type: ignore[union-attr, return-value]


def byte_size(bundle: Bundle | QueuedTrace) -> int:
    """The estimated memory a Bundle or queued plain trace holds."""
    return bundle[0] if type(bundle) is tuple else bundle.nbytes  # type: ignore[union-attr, return-value]


def automatic_only(attrs: dict[str, Any], state: Any, run_tags: dict[str, Any]) -> bool:
    """Whether a root's labels are the automatic metadata alone (no tags, no experiment): its
    attributes carry none, nothing was set live, ``traceduck run`` gives no tags and the
    process names no experiment at export. Most roots; ``add_plain_root`` takes them."""
    return not attrs and state is None and not run_tags and not _experiment.STATE.at_export


def labels_for(attrs: dict[str, Any], state: Any, auto: Labels = _NO_LABELS) -> RootLabels:
    """A root's tags/metadata: from its attributes (any SDK), then the automatic ones (context,
    ``traceduck run``), then the in-process live state; run tags only fill missing keys. Its
    experiment from its attributes (or, for the zero-code exporter, the process's)."""
    entries, run_tags = auto
    if automatic_only(attrs, state, run_tags):
        # most roots: the automatic labels alone (``for_root`` makes a new list of entries
        # per root, but its empty one is shared)
        return _new_labels(RootLabels, ({}, {}, entries or [], None))
    tags, exclusive, metadata = _convert.root_labels(attrs) if attrs else ({}, {}, [])
    if entries:
        metadata.extend(entries)
    if state is not None:
        tags.update(state.tags)
        exclusive.update(state.exclusive)
        metadata.extend(state.metadata)
    for key, value in run_tags.items():
        tags.setdefault(key, value)
    experiment = _convert.root_experiment(attrs) if attrs else None
    if experiment is None and _experiment.STATE.at_export:
        experiment = _experiment.current()
    if experiment == DEFAULT_EXPERIMENT:
        experiment = None
    return _new_labels(RootLabels, (tags, exclusive, metadata, experiment))
