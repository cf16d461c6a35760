"""Counting what is dropped, and saying so once per episode.

An episode starts with the first drop and ends when the place that dropped works again (a write
succeeds, the exporter takes spans) or at shutdown. Its first drop logs one warning with the
cause; its end logs one with the totals. Nothing in between: a dead store that drops a million
traces says so twice, not a million times. The ``traceduck`` logger reaches stderr through
logging's last-resort handler when the application set up no logging.
"""

from __future__ import annotations

import threading
import time

from .. import _runtime


class Losses:
    """Drop counters of one queue (``traces``, ``spans``) and its episode warnings."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero everything (a forked child starts afresh)."""
        self._lock = threading.Lock()
        self.traces = 0
        self.spans = 0
        self._episode: list[int] | None = None  # traces, spans dropped in the open episode
        self._cause = ""
        self._since = 0.0
        self._reported = (0, 0)

    def dropped(self, traces: int, spans: int, cause: str) -> None:
        """Count a drop; the first of an episode logs a warning with its cause."""
        with self._lock:
            self.traces += traces
            self.spans += spans
            first = self._episode is None
            if first:
                self._episode = [0, 0]
                self._cause = cause.rstrip(". ")
                self._since = time.time()
            self._episode[0] += traces
            self._episode[1] += spans
        if first:
            _runtime.logger.warning(
                "traceduck: dropping traces at %s: %s. They are counted in "
                "traceduck.stats(); a summary follows when this ends",
                self.where,
                self._cause,
            )

    @property
    def open(self) -> bool:
        """Whether an episode is under way (the last attempt dropped)."""
        return self._episode is not None

    def end_episode(self) -> None:
        """The place works again (or stops): log what the open episode dropped, if any."""
        if self._episode is None:
            return
        with self._lock:
            episode, self._episode = self._episode, None
        if episode is None:
            return
        traces, spans = episode
        _runtime.logger.warning(
            "traceduck: %d %s (%d %s) %s dropped at %s over %.1f s: %s",
            traces,
            "trace" if traces == 1 else "traces",
            spans,
            "span" if spans == 1 else "spans",
            "was" if traces == 1 else "were",
            self.where,
            time.time() - self._since,
            self._cause,
        )

    def unreported(self) -> bool:
        """Whether anything was dropped since the last call (``flush()``'s answer)."""
        with self._lock:
            now = (self.traces, self.spans)
            new, self._reported = now != self._reported, now
        return new
