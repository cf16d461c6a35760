"""The ``traceduck`` command: search, show and query traces from a terminal."""

from __future__ import annotations

from ._app import main

__all__ = ["main"]
