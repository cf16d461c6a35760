"""Process-wide tracing state read on every traced call: the tracer, capture switches, stash.

Kept in one tiny module so the hot path does a couple of attribute lookups and nothing else.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from typing import Any

from ._constants import ENV_DISABLED

logger = logging.getLogger("traceduck")

# Set by _config.ensure_configured(); None until the first traced call or configure().
tracer: Any = None
capture_inputs = True
capture_outputs = True


def enabled_by_environment() -> bool:
    """False when ``$TRACEDUCK_DISABLED`` is 1, true or yes: ``@trace`` is then a plain call."""
    return os.environ.get(ENV_DISABLED, "").lower() not in ("1", "true", "yes")


def env_seconds(name: str, default: float) -> float:
    """A duration in seconds from the environment variable ``name``: ``default`` when it is
    unset, and (with a warning) when it is not a finite number of seconds, 0 or more: a typo
    in the environment never keeps ``import traceduck`` or the program from running."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        logger.warning("traceduck: %s=%r is not a number of seconds; using %g", name, text, default)
        return default
    return value


# Read at import too, not only by configure(): the process's first traced call, which is what
# configures traceduck, must already see it.
enabled = enabled_by_environment()
# True while an exporter consumes STASH and live trace state (else nothing is kept per call).
collecting = False

# span id (int) -> [span_type, static attributes or None, deferred inputs, deferred outputs].
# Filled by the decorator and start_span in the caller's thread, emptied by the exporter's
# thread, which encodes it off the caller's thread.
STASH: dict[int, list[Any]] = {}
MAX_STASH = 200_000
stash_dropped = 0

# Set while traceduck exports in a caller's thread (a flush): user code that the export runs (a
# redact callable, a __del__ the GC runs) must not wait in flush() for what it is part of.
EXPORTING = threading.local()

_reported: set[str] = set()
_reported_lock = threading.Lock()


def after_fork_in_child(reset: Callable[[], None]) -> None:
    """Run ``reset`` in a child process right after ``os.fork()`` (where the platform forks).

    Only the forking thread lives on in the child: a lock another thread held at the fork stays
    held for ever there, and the threads that would have written or released are gone."""
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=reset)


def _new_reported_lock() -> None:
    global _reported_lock
    _reported_lock = threading.Lock()


after_fork_in_child(_new_reported_lock)


def report_internal_error(where: str, exc: BaseException) -> None:
    """Log a failure inside traceduck once per place; it never reaches the user's code."""
    with _reported_lock:
        first = where not in _reported
        _reported.add(where)
    if first:
        logger.warning("traceduck: %s failed (%r); tracing continues", where, exc, exc_info=exc)


def trim_stash() -> None:
    """Bound the stash if spans were started but never exported (dropped or never ended)."""
    global stash_dropped
    excess = len(STASH) - MAX_STASH // 2
    if excess <= 0:
        return
    for key in list(STASH)[:excess]:
        STASH.pop(key, None)
    stash_dropped += excess
