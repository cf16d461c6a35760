"""What redaction costs the export thread, per span and per character of text.

    PYTHONPATH=src python benchmarks/profile_redaction.py [--spans 20000] [--rounds 5]

Redaction runs in the span processor's export (``_export._redacting.RedactingExporter``), never
in the traced call: the overhead suite's table (i) shows the caller's side. This script times
the export side in one thread, on prebuilt SDK spans with the stash records ``@trace`` leaves:

- per span: ``redact_span`` with the default rules, beside ``span_row`` (the conversion to a
  store row that follows it in the DuckDB exporter), for a plain ``f(x)`` span, an
  ``ask(prompt, api_key)`` span with a new 243-character prompt each call and an ``sk-`` key, a
  span with four attributes, and a failed span (exception event with a stack trace);
- what a hook inside ``span_row`` instead of a separate exporter would save at most: the
  wrapper's own reading of the span's fields and its stash lookup (``span_row`` does both
  anyway);
- ``Redactor.text`` on prose and on JSON text of several sizes (no secret in it; a text up to
  256 characters is timed uncached), in ns per character.

Prints medians over ``--rounds``; the ratio is redact_span / span_row, median of the rounds'
ratios (both timed in each round, so a busy machine slows both alike).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from traceduck import _redact, _runtime
from traceduck._export._convert import span_row
from traceduck._export._redacting import _fields, redact_span

PROMPT = (
    "You are a support assistant. Summarise the customer's last three messages in two "
    "sentences and say whether a refund was promised. Customer #{i}: the parcel arrived "
    "damaged and I was told on the phone that I would get my money back within 5 days."
)
API_KEY = "sk-proj-" + "x7Rb2Qm9" * 5
PROSE = (
    "The quarterly report shows revenue up 4% on the year, driven by the new subscription "
    "tier; churn fell slightly. Costs rose with the second data centre. "
)


class _Collect(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def build(kind: str, n: int) -> tuple[list[ReadableSpan], Callable[[], None]]:
    """``n`` spans of ``kind`` and a function that (re)fills their stash records."""
    collect = _Collect()
    provider = TracerProvider()
    provider.add_span_processor(collect)
    tracer = provider.get_tracer("profile")
    for i in range(n):
        if kind == "attributes":
            attrs = {"http.method": "GET", "http.route": "/orders/{id}", "user.id": f"u{i % 97}",
                     "http.request.header.authorization": f"Bearer tok{i}abcdefgh"}  # fmt: skip
            with tracer.start_as_current_span("request", attributes=attrs):
                pass
        elif kind == "error":
            try:
                with tracer.start_as_current_span("call"):
                    raise ValueError(f"upstream refused request {i}: quota exceeded")
            except ValueError:
                pass
        else:
            with tracer.start_as_current_span(kind):
                pass
    spans = collect.spans

    def records() -> list[Any]:
        if kind == "f(x)":
            return [[None, None, (("x",), (i,), {}), i + 1] for i in range(n)]
        if kind == "ask":
            return [
                [None, None, (("prompt", "api_key"), (PROMPT.format(i=i), API_KEY), {}), 243]
                for i in range(n)
            ]
        return [[None, None, None, None] for _ in range(n)]

    def fill() -> None:
        for span, record in zip(spans, records()):
            _runtime.STASH[span.context.span_id] = record

    return spans, fill


def per_span(fn: Callable[[ReadableSpan], Any], spans: list[ReadableSpan]) -> float:
    t0 = time.perf_counter_ns()
    for span in spans:
        fn(span)
    return (time.perf_counter_ns() - t0) / len(spans) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rules = _redact.default()
    stash_get = _runtime.STASH.get

    def peek(span: ReadableSpan) -> Any:  # what the wrapper reads that span_row reads again
        return stash_get(_fields(span)[0].span_id)

    print(f"per span, µs (median of {args.rounds} rounds of {args.spans:,} spans)")
    print(f"{'span':<12}{'redact_span':>13}{'span_row':>10}{'ratio':>8}{'hook saves':>12}")
    for kind in ("f(x)", "ask", "attributes", "error"):
        spans, fill = build(kind, args.spans)
        red, row, read = [], [], []
        for _ in range(args.rounds):
            rules._texts.clear()  # every prompt is new anyway; the first round sees a cold cache
            fill()
            red.append(per_span(lambda s: redact_span(rules, s), spans))
            read.append(per_span(peek, spans))
            row.append(per_span(span_row, spans))  # pops the (scrubbed) records
        ratio = statistics.median(r / w for r, w in zip(red, row))  # within each round
        print(
            f"{kind:<12}{statistics.median(red):>13.2f}{statistics.median(row):>10.2f}"
            f"{ratio:>8.2f}{statistics.median(read):>12.2f}"
        )
    _runtime.STASH.clear()

    print("\nRedactor.text, ns per character (no secret in the text)")
    json_text = json.dumps({f"field_{i}": f"value number {i}" for i in range(400)})
    for label, source in (("prose", PROSE), ("JSON text", json_text)):
        for size in (250, 2_500, 25_000):
            text = (source * (size // len(source) + 1))[:size]
            reps = max(2_000_000 // size, 20)
            times = []
            for _ in range(args.rounds):
                t0 = time.perf_counter_ns()
                for _ in range(reps):
                    rules._texts.clear()
                    rules.text(text)
                times.append((time.perf_counter_ns() - t0) / reps / size)
            print(f"{label:<10}{size:>8,} chars {statistics.median(times):>8.2f}")


if __name__ == "__main__":
    sys.exit(main())
