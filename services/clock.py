"""Time as a dependency: production reads the wall clock, tests set and advance it."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


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
