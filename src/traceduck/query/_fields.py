"""The one table of filterable fields and every spelling of them (ours and MLflow 3.x's).

Keeping all spellings in one table means the parser, ``order_by`` and the "did you mean"
suggestions can never disagree about what a field is called.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal as TypingLiteral

from ..errors import FilterError
from ._ast import FieldRef

__all__ = [
    "BUILTIN_FIELDS",
    "FieldSpec",
    "Segment",
    "resolve_field",
    "spec_of",
    "suggest",
]

FieldKind = TypingLiteral["string", "number", "status", "span_status"]


@dataclass(frozen=True)
class FieldSpec:
    """A fixed (non-keyed) field: where it lives and how its values are typed."""

    canonical: str
    table: TypingLiteral["traces", "spans"]
    column: str
    kind: FieldKind
    sql_type: TypingLiteral["VARCHAR", "BIGINT", "DOUBLE"]
    aliases: tuple[str, ...] = ()


# Canonical fields and their aliases. Trace fields may also be written with MLflow's entity
# prefixes ``trace.``, ``attributes.`` and ``attribute.`` (``trace.timestamp``,
# ``attributes.request_id``); back-ticks may quote any segment (`` `timestamp` ``).
BUILTIN_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("trace_id", "traces", "trace_id", "string", "VARCHAR", ("request_id",)),
    FieldSpec("name", "traces", "name", "string", "VARCHAR"),
    FieldSpec("status", "traces", "status", "status", "VARCHAR"),
    FieldSpec("timestamp_ms", "traces", "timestamp_ms", "number", "BIGINT", ("timestamp",)),
    FieldSpec(
        "execution_time_ms", "traces", "execution_time_ms", "number", "DOUBLE",
        ("execution_time",),
    ),
    FieldSpec("span_count", "traces", "span_count", "number", "BIGINT"),
    FieldSpec("service_name", "traces", "service_name", "string", "VARCHAR"),
    FieldSpec("experiment", "traces", "experiment", "string", "VARCHAR", ("experiment_name",)),
    FieldSpec("experiment_id", "traces", "experiment_id", "string", "VARCHAR"),
    FieldSpec("span.name", "spans", "name", "string", "VARCHAR"),
    FieldSpec("span.type", "spans", "span_type", "string", "VARCHAR", ("span.span_type",)),
    FieldSpec("span.status", "spans", "status", "span_status", "VARCHAR"),
    FieldSpec(
        "span.execution_time_ms", "spans", "duration_ms", "number", "DOUBLE",
        ("span.duration_ms", "span.execution_time"),
    ),
)  # fmt: skip

TRACE_ENTITY_PREFIXES = ("trace", "attributes", "attribute")

# Keyed families: prefix spelling -> family. The whole rest after the prefix is the key.
KEYED_PREFIXES: dict[str, TypingLiteral["tag", "metadata", "span_attr"]] = {
    "tags": "tag",
    "tag": "tag",
    "metadata": "metadata",
    "request_metadata": "metadata",
    "span.attributes": "span_attr",
    "span.attribute": "span_attr",
}
_CANONICAL_PREFIX = {"tag": "tags", "metadata": "metadata", "span_attr": "span.attributes"}


def _spellings() -> dict[str, FieldSpec]:
    table: dict[str, FieldSpec] = {}
    for spec in BUILTIN_FIELDS:
        for name in (spec.canonical, *spec.aliases):
            table[name] = spec
            if spec.table == "traces":
                for prefix in TRACE_ENTITY_PREFIXES:
                    table[f"{prefix}.{name}"] = spec
    return table


SPELLINGS: dict[str, FieldSpec] = _spellings()
_BY_CANONICAL = {spec.canonical: spec for spec in BUILTIN_FIELDS}


def spec_of(field: FieldRef) -> FieldSpec:
    """The FieldSpec of a builtin or span field."""
    return _BY_CANONICAL[field.name]


@dataclass(frozen=True)
class Segment:
    """One dot-separated part of a field as written; ``quoted`` if back-ticked or "quoted"."""

    text: str
    quoted: bool
    start: int
    end: int


def resolve_field(segments: list[Segment], source: str) -> FieldRef:
    """Map the segments of a field to a FieldRef, or raise FilterError with a suggestion."""
    start, end = segments[0].start, segments[-1].end
    written = source[start:end]
    lowered = [s.text.lower() for s in segments]

    def ref(family: str, name: str, **kw: object) -> FieldRef:
        return FieldRef(family, name, written, start, end, **kw)  # type: ignore[arg-type]

    for width in (2, 1):  # "span.attributes" is a two-segment prefix
        prefix = ".".join(lowered[:width])
        family = KEYED_PREFIXES.get(prefix) if len(segments) >= width else None
        if family is None:
            continue
        rest = segments[width:]
        if not rest:
            raise FilterError(
                f"{written} needs a key: write {_CANONICAL_PREFIX[family]}.<key>", source, start
            )
        for seg in rest:
            if seg.text == "":
                raise FilterError("a key cannot be empty", source, seg.start)
        key = ".".join(s.text for s in rest)
        if family == "metadata":
            parts = [s.text for s in rest]
            candidates = tuple(
                (".".join(parts[:i]), tuple(parts[i:])) for i in range(len(parts), 0, -1)
            )
            return ref("metadata", "metadata", key=key, candidates=candidates)
        return ref(family, family, key=key)

    spec = SPELLINGS.get(".".join(lowered))
    if spec is not None:
        return ref("builtin" if spec.table == "traces" else "span", spec.canonical)
    raise FilterError(_unknown_message(written, lowered), source, start)


# Names other tools (and our own table's "latency ms" heading) use for a built-in field: better
# hints than string similarity, which would send ``latency`` to ``tags.latency``.
_WORD_HINTS = {
    **dict.fromkeys(
        ("latency", "latency_ms", "duration", "duration_ms", "elapsed", "elapsed_ms",
         "runtime", "runtime_ms", "execution_time_s"),
        "execution_time_ms",
    ),
    **dict.fromkeys(("time", "time_ms", "start_time", "start_time_ms", "created"), "timestamp_ms"),
    **dict.fromkeys(("id", "traceid"), "trace_id"),
    **dict.fromkeys(("spans", "num_spans"), "span_count"),
    **dict.fromkeys(("service", "service.name"), "service_name"),
    **dict.fromkeys(("state", "trace_status"), "status"),
    **dict.fromkeys(
        ("span.latency", "span.latency_ms", "span.duration", "span.elapsed_ms"),
        "span.execution_time_ms",
    ),
}  # fmt: skip


def _word_hint(lowered: list[str]) -> str | None:
    name = ".".join(lowered)
    if lowered[0] in TRACE_ENTITY_PREFIXES and len(lowered) > 1:
        name = ".".join(lowered[1:])  # trace.latency -> latency
    return _WORD_HINTS.get(name)


def _unknown_message(written: str, lowered: list[str]) -> str:
    hint = _word_hint(lowered)
    if hint is not None:
        return f"unknown field {written!r}; did you mean {hint!r}?"
    candidates = list(SPELLINGS)
    rest = ".".join(lowered[1:])
    if rest:
        candidates += [f"{p}.{rest}" for p in KEYED_PREFIXES]
    else:
        candidates += [f"{p}.<key>" for p in KEYED_PREFIXES]
    hint = suggest(".".join(lowered), candidates)
    if hint is None and len(lowered) == 1:
        # A bare word is most often a tag or metadata key written without its prefix.
        hint = f"tags.{written}"
    if hint is not None:
        return f"unknown field {written!r}; did you mean {hint!r}?"
    return (
        f"unknown field {written!r}; fields are trace_id, name, status, timestamp_ms, "
        "execution_time_ms, span_count, service_name, experiment, experiment_id, tags.<key>, "
        "metadata.<key>, span.name, span.type, span.status, span.execution_time_ms and "
        "span.attributes.<key>"
    )


def suggest(word: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """The closest candidate to ``word`` (difflib), or None when nothing is close."""
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None
