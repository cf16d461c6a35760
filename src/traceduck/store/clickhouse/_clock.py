"""Versions and edit ids: the order of edits without a transaction manager.

An edit's rows all carry one ``version`` (nanoseconds since the epoch, strictly increasing
within a process) and one random ``edit_id``. The current value of (trace, key) is the row with
the greatest (version, edit_id, seq): deterministic, also between processes and hosts, as long
as their clocks agree (NTP); between two hosts' edits closer than their clock skew, the one
with the later clock reading wins.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timezone

__all__ = ["Stamp", "stamp"]

_lock = threading.Lock()
_last = [0]
_random = random.SystemRandom()


class Stamp:
    """One edit's version, edit id and time."""

    __slots__ = ("edit_id", "ts", "version")

    def __init__(self, version: int, edit_id: int) -> None:
        self.version = version
        self.edit_id = edit_id
        self.ts = datetime.fromtimestamp(version / 1e9, timezone.utc)


def stamp() -> Stamp:
    with _lock:
        version = max(time.time_ns(), _last[0] + 1)
        _last[0] = version
    return Stamp(version, _random.getrandbits(63))
