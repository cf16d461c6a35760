"""Exceptions raised by traceduck's query, tag and storage calls.

The tree::

    TraceduckError
    ├── FilterError(ValueError)            a filter or order_by string that does not compile
    ├── TraceNotFoundError(LookupError)    no trace has that id or prefix
    ├── AmbiguousTraceIdError(LookupError) a prefix matches several traces (lists them)
    ├── TagError(ValueError)               bad tag key/value, missing tag, exclusive conflict
    ├── StorageError                       store locked, corrupt or unwritable (says what to do)
    └── ConfigError(ValueError)            a bad configure() argument or environment variable

Nothing on the tracing path (decorators, spans, update_current_trace, the exporter) ever raises
into user code: failures there are logged once and counted in ``traceduck.stats()``.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousTraceIdError",
    "ConfigError",
    "FilterError",
    "StorageError",
    "TagError",
    "TraceNotFoundError",
    "TraceduckError",
]


class TraceduckError(Exception):
    """Base class of every error traceduck raises on purpose."""


class FilterError(TraceduckError, ValueError):
    """A filter (or order_by) string that does not compile.

    ``position`` is the 0-based character offset of the problem in ``filter``; ``str(err)``
    shows the message, the filter and a caret under the position.
    """

    def __init__(self, message: str, filter: str = "", position: int | None = None) -> None:
        self.message = message
        self.filter = filter
        self.position = position
        super().__init__(self._render())

    def _render(self) -> str:
        if self.position is None or not self.filter:
            return self.message
        where = f"{self.message} (at position {self.position})"
        return f"{where}\n  {self.filter}\n  {' ' * self.position}^"


class TraceNotFoundError(TraceduckError, LookupError):
    """No trace has the given id or id prefix."""


class AmbiguousTraceIdError(TraceduckError, LookupError):
    """An id prefix matches more than one trace; ``candidates`` lists some of them."""

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        self.prefix = prefix
        self.candidates = candidates
        shown = ", ".join(candidates[:10])
        super().__init__(
            f"trace id prefix {prefix!r} is ambiguous: it matches {shown}"
            f"{', ...' if len(candidates) > 10 else ''}; type more characters"
        )


class TagError(TraceduckError, ValueError):
    """A bad tag key or value, a missing tag, or an exclusive-tag conflict."""


class StorageError(TraceduckError):
    """The store cannot be used: locked by another process, corrupt, or unwritable."""


class ConfigError(TraceduckError, ValueError):
    """A bad ``configure()`` argument or environment variable."""
