"""Running the traceduck command in tests."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from traceduck.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")
PYTHON = sys.executable


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


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python that imports traceduck from this checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRACEDUCK_", "OTEL_")) and k != "PYTHONPATH"
    }
    env["PYTHONPATH"] = SRC
    env.update(extra)
    return env
