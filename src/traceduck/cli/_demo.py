"""A tiny retrieval-augmented "assistant" traced with traceduck, for ``traceduck demo``."""

from __future__ import annotations

import random
import time

import click

import traceduck as td

from ._common import CONTEXT, console, db_option, friendly_errors, open_store

DOCS = {
    "ducks": "Ducks are waterfowl; DuckDB is an in-process analytical database.",
    "otel": "OpenTelemetry is a vendor-neutral standard for traces, metrics and logs.",
    "tags": "Tags label traces so you can find them again.",
}


@td.trace(span_type="RETRIEVER")
def retrieve(question: str, k: int = 2) -> list[str]:
    time.sleep(random.uniform(0.0005, 0.002))
    words = set(question.lower().split())
    hits = [text for key, text in DOCS.items() if key in words] or list(DOCS.values())
    return hits[:k]


@td.trace(span_type="LLM", attributes={"model": "duck-7b"})
def generate(question: str, context: list[str]) -> str:
    time.sleep(random.uniform(0.001, 0.004))
    if "fail" in question:
        raise TimeoutError("the model did not answer in time")
    return f"{context[0]} (answering: {question})"


@td.trace(span_type="CHAIN")
def answer(question: str, user: str) -> str:
    td.update_current_trace(
        tags={"env": random.choice(["prod", "staging"]), "cost": round(random.uniform(0, 0.05), 4)},
        metadata={"user": user},
    )
    context = retrieve(question)
    return generate(question, context)


QUESTIONS = [
    "what are ducks",
    "what is otel",
    "why use tags",
    "please fail now",
    "tell me about ducks and otel",
]


def run_demo(db: str | None, count: int) -> str:
    """Trace ``count`` requests into ``db`` (default store if None); returns the store path."""
    from .._config import current_db

    if db is not None:
        td.configure(db=db, service_name="traceduck-demo")
    else:
        td.configure(service_name="traceduck-demo")
    rng = random.Random(7)
    for i in range(count):
        question = QUESTIONS[rng.randrange(len(QUESTIONS))]
        try:
            answer(question, user=f"user_{i % 7}")
        except TimeoutError:
            pass  # the trace records the error; the demo goes on
    td.flush(timeout_s=30)
    path = current_db()
    assert path is not None
    return path


@click.command(context_settings=CONTEXT)
@click.option("--traces", "count", default=50, show_default=True, type=click.IntRange(1, 100_000))
@db_option
@friendly_errors
def demo(count: int, db: str | None) -> None:
    """Trace a small demo app into the store, then search it.

    \b
    Example:
      traceduck demo --db demo.duckdb --traces 100
    """
    from ._query import print_traces

    path = run_demo(db, count)
    console.print(f"traced {count} requests into [bold]{path}[/]")
    query, limit = "status = 'ERROR' OR tags.cost > 0.03", 10
    store = open_store(path, create=True)
    traces = store.search_traces(query, max_results=limit)
    # Run as printed, this command shows what follows (the same traces and the same count).
    command = f'traceduck search "{query}" --db {path} --limit {limit}'
    console.print(f"\n$ {command}", markup=False, highlight=False, soft_wrap=True)
    print_traces(store, traces, query, limit)
    console.print(
        f"\nnext: traceduck show {traces[0].info.trace_id[:8] if traces else '<id>'} --db {path}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
