"""Durations as people type them: ``30d``, ``12h``, ``90m``, ``45s`` (retention, prune, delete).

>>> parse_duration("30d")
2592000.0
"""

from __future__ import annotations

import re
from datetime import timedelta

from .errors import ConfigError

__all__ = ["parse_duration"]

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def parse_duration(value: object, what: str = "duration") -> float:
    """Seconds in ``value``: a string ``<number><unit>`` with unit s, m, h or d, a
    ``timedelta``, or a number of seconds. Anything else, or a duration that is not positive,
    is a ``ConfigError`` naming ``what`` and showing the accepted forms."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * UNITS[match.group(2)]
    else:
        raise ConfigError(
            f"{what} must be a duration such as '30d', '12h', '90m' or '45s' (a number and one "
            f"of the units s, m, h, d), not {value!r}"
        )
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{what} must be a positive duration, not {value!r}")
    return seconds
