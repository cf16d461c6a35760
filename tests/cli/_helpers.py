"""Running the traceduck command in tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from _support import PYTHON, SRC, child_env  # noqa: F401 - shared by this folder's tests
from traceduck.cli import main

# What the seeded store holds: (question, env, cost, fails) per traced request.
REQUESTS = [
    ("what are ducks", "prod", 0.01, False),
    ("what is otel", "prod", 0.02, False),
    ("please fail", "prod", 0.03, True),
    ("why tags", "staging", 0.04, False),
    ("ducks and otel", "staging", 0.05, False),
    ("fail again", "staging", 0.06, True),
    ("last one", "dev", 0.07, False),
]


@dataclass
class Run:
    code: int
    out: str
    err: str


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Run:
    """``traceduck ARGS`` through click's runner (stdout and stderr kept apart)."""
    result = CliRunner().invoke(main, list(args), input=input, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback would have reached the user: fail loudly
    return Run(result.exit_code, result.stdout, result.stderr)


def with_trace_ids(db: str, tmp_path: Path, ids: list[str], where: str | None = None) -> str:
    """A new store holding the traces of ``db``, some renamed to the given ids.

    The renamed traces are the first ones (oldest first) matching ``where`` (any if None).
    Goes through export and import, so the copies keep spans, tags and history.
    """
    from traceduck import TraceStore

    export = tmp_path / "ids-export.jsonl"
    run("export", "--to", str(export), "--db", db)
    lines = export.read_text().splitlines()
    header, records = lines[0], [json.loads(line) for line in lines[1:]]
    chosen = {t.info.trace_id for t in TraceStore(db).search_traces(where, max_results=None)}
    for record, new_id in zip([r for r in records if r["trace_id"] in chosen], ids):
        record["trace_id"] = new_id  # spans and histories belong to their record
    export.write_text("\n".join([header, *(json.dumps(r) for r in records)]) + "\n")
    path = str(tmp_path / f"ids-{ids[0][:6]}.duckdb")
    result = run("import", str(export), "--db", path)
    assert result.code == 0, result.err
    return path
