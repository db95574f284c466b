"""Where the "same hour-of-week over the last 4 weeks" abandon rate comes from.

The one definition, shared by the built-in alerter and the Prometheus rule
`channel_queue:ccpulse_abandon_rate:ratio_5m_baseline_4w` (deploy/prometheus/rules): abandons
over offered (short abandons out of both, as the abandon rate itself), **pooled** over the same
hour of each of the last WEEKS weeks that have contacts: a busy week weighs more than a quiet
one, a week without data adds nothing, and no history at all is "not known", never 0.
(Prometheus takes the trailing hour a week back, the alerter the local clock hour of the week.)

The SQL interval history answers this (`api.planning.baseline.HistoryBaseline`, wired in by the
app); `NoBaseline` says "not known", and a rule with a baseline factor then falls back to its
absolute threshold alone, as on a new install with no history for that hour.
tests/unit/deploy/test_spike_baseline.py checks that the Prometheus rule keeps this definition.
"""

from __future__ import annotations

from typing import Protocol

WEEKS = 4  # how many past weeks the baseline pools


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
