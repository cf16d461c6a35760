"""Benchmark suites. Add one: a module with NAME, TITLE and run(cfg) -> SuiteResult, listed here.

The order here is the order of a default run and of the sections in the report.
"""

from __future__ import annotations

from types import ModuleType

from . import collector, ingest, memory, overhead, search, transfer, ui

SUITES: dict[str, ModuleType] = {
    m.NAME: m for m in (overhead, ingest, memory, search, ui, collector, transfer)
}

__all__ = ["SUITES"]
