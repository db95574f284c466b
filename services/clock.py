"""Time as a dependency: production reads the wall clock, tests set, shift and advance it.

`SystemClock(offset_s)` is the wall clock shifted by a fixed offset: every process of one run gets
the same `CCPULSE_CLOCK_OFFSET_SECONDS`, so the whole stack lives at a chosen instant (a DST night,
year end) while sleeping and timeouts stay real (`make test-clock`, docs/testing.md).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_s = offset_s

    def now(self) -> float:
        return time.time() + self.offset_s


class ManualClock:
    """A clock that moves only when told to, for windows and lateness in tests."""

    def __init__(self, start: float) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def set(self, epoch_s: float) -> None:
        self._now = epoch_s

    def advance(self, seconds: float) -> None:
        self._now += seconds


def iso_utc(epoch_s: float) -> str:
    """An instant as documents and job states write it: ISO 8601 in UTC with `Z`."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")
