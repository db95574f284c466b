"""Where the "same hour-of-week over the last 4 weeks" abandon rate comes from.

The SQL interval history answers this (`api.planning.baseline.HistoryBaseline`, wired in by the
app); `NoBaseline` says "not known", and a rule with a baseline factor then falls back to its
absolute threshold alone, as on a new install with no history for that hour.
"""

from __future__ import annotations

from typing import Protocol


class BaselineSource(Protocol):
    async def rate(self, channel: str, queue: str | None, at_epoch_s: float) -> float | None:
        """The abandon rate of the hour-of-week containing `at_epoch_s` (in the configured time
        zone) over the 4 weeks before it, for the channel (queue None) or one of its queues;
        None when there is not enough history to say."""
        ...


class NoBaseline:
    """No history: every baseline is unknown, only absolute thresholds apply."""

    async def rate(self, channel: str, queue: str | None, at_epoch_s: float) -> float | None:
        return None
