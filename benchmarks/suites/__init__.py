"""Benchmark suites. Add one: a module with NAME, TITLE and run(cfg) -> SuiteResult, listed here.

The order here is the order of a default run and of the sections in the report.
"""

from __future__ import annotations

from types import ModuleType

from . import ingest, memory, overhead

SUITES: dict[str, ModuleType] = {m.NAME: m for m in (overhead, ingest, memory)}

__all__ = ["SUITES"]
