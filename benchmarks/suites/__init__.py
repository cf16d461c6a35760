"""Benchmark suites. Add one: a module with NAME, TITLE and run(cfg) -> SuiteResult, listed here.

The order here is the order of a default run and of the sections in the report. ``load(name)``
imports a suite's module on demand: a worker process imports only the suite it runs (the
others pull in numpy, pyarrow, MLflow or gRPC), and the parent only needs the names.
"""

from __future__ import annotations

import importlib
from types import ModuleType

SUITES: tuple[str, ...] = (
    "overhead",
    "ingest",
    "memory",
    "busy",
    "search",
    "ui",
    "collector",
    "transfer",
    "delete",
)


def load(name: str) -> ModuleType:
    """The suite module called ``name`` (one of ``SUITES``)."""
    if name not in SUITES:
        raise KeyError(f"no benchmark suite {name!r}; one of {', '.join(SUITES)}")
    return importlib.import_module(f"{__name__}.{name}")


__all__ = ["SUITES", "load"]
