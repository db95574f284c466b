"""What the volume figures need, summed in SQL, and the figures of one bucket from those sums.

Rates are computed after summing, from raw counters (kpis), so an hour is never an average of
quarter hours.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, case

from services import intervals, kpis
from services.settings import Settings

from ..live_reader import read_options

VOLUME_COLUMNS = (
    "start",
    "end",
    "channel",
    "queue",
    "offered",
    "answered",
    "abandoned",
    "abandon_rate",
    "service_level",
    "asa_seconds",
    "aht_seconds",
    "handled",
    "logged_in_hours",
    "labour_cost",
    "cost_per_handled",
    "handled_per_logged_in_hour",
    "partial",
)


SUMMED = (
    kpis.OFFERED,
    kpis.QUEUED,
    kpis.ANSWERED,
    kpis.ANSWERED_UNTIMED,
    kpis.ANSWER_WAIT_MS,
    kpis.ABANDONED,
    kpis.ABANDONED_QUEUE,
    kpis.HANDLED,
    kpis.HANDLE_MS,
    *(f"{f}{i}" for f in intervals.HISTOGRAMS for i in range(intervals.BUCKETS)),
)


_PLAIN = (*kpis.COUNTS, kpis.ANSWER_WAIT_MS, kpis.HANDLED, kpis.HANDLE_MS)


Sums = list[tuple[str, ColumnElement[Any]]]


def _within(family: str, threshold_s: int) -> ColumnElement[Any]:
    """family_0 + ... + family_k: observations at or under the threshold (an edge)."""
    last = kpis.WAIT_EDGES_S.index(kpis.require_edge(threshold_s))
    t = intervals.interval_counters
    total: ColumnElement[Any] = t.c[intervals.column_name(f"{family}0")]
    for i in range(1, last + 1):
        total = total + t.c[intervals.column_name(f"{family}{i}")]
    return total


def _per_threshold(family: str, settings: Settings) -> ColumnElement[Any]:
    """Within each row's own threshold: queue override, else its channel's, else 20 s."""
    t = intervals.interval_counters
    whens = [
        (t.c.queue == q, _within(family, s))
        for q, s in settings.queue_sl_thresholds_seconds.items()
    ]
    whens += [
        (t.c.channel == c, _within(family, s)) for c, s in settings.sl_thresholds_seconds.items()
    ]
    return case(*whens, else_=_within(family, 20)) if whens else _within(family, 20)


def volume_sums(settings: Settings) -> Sums:
    """What the volume figures need, reduced in SQL: a dozen sums instead of 80 columns."""
    t = intervals.interval_counters
    short = settings.short_abandon_seconds
    return [
        *((name, t.c[name]) for name in _PLAIN),
        (kpis.MET, _per_threshold(kpis.ANSWER_HIST, settings)),
        (kpis.ABANDONED_WITHIN, _per_threshold(kpis.QUEUE_ABANDON_HIST, settings)),
        (kpis.SHORT_QUEUE, _within(kpis.QUEUE_ABANDON_HIST, short)),
        (kpis.SHORT_IVR, _within(kpis.IVR_ABANDON_HIST, short)),
    ]


def reduce_live(c: dict[str, int], opts: kpis.ReadOptions) -> dict[str, int]:
    """Full live counters into the same reduced form as `volume_sums`."""
    out = kpis.within_counts(c, opts)
    for name in (kpis.ANSWER_WAIT_MS, kpis.HANDLED, kpis.HANDLE_MS):
        out[name] = c.get(name, 0)
    return out


@dataclass(slots=True)
class Cell:
    """Summed counters of one output bucket, kept per channel and queue for exact rates."""

    start_s: int
    end_s: int
    parts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def add(self, channel: str, queue: str, counters: dict[str, int]) -> None:
        part = self.parts.get((channel, queue))
        if part is None:  # the common case: one SQL row per part (a copy, never the caller's)
            self.parts[(channel, queue)] = dict(counters)
        else:
            kpis.add_counters(part, counters)


Options = Callable[[str, str], kpis.ReadOptions]


def options_for(settings: Settings) -> Options:
    """read_options per (channel, queue), memoised: it runs for every part of every bucket."""

    @functools.cache
    def options(channel: str, queue: str) -> kpis.ReadOptions:
        return read_options(settings, channel, queue or None)

    return options


_TOTALS = (
    kpis.OFFERED,
    kpis.ANSWERED,
    kpis.ANSWERED_UNTIMED,
    kpis.ABANDONED,
    kpis.ANSWER_WAIT_MS,
    kpis.HANDLE_MS,
    kpis.HANDLED,
)


def figures(cell: Cell, options: Options) -> dict[str, Any]:
    """The volume columns of one bucket, from its reduced parts (thresholds per scope)."""
    total = dict.fromkeys(_TOTALS, 0)
    met = sl_den = ab = ab_den = 0
    for (channel, queue), counts in cell.parts.items():
        for name in _TOTALS:
            total[name] += counts.get(name, 0)
        opts = options(channel, queue)
        m, d = kpis.sl_from_counts(counts, opts)
        a, ad = kpis.abandon_from_counts(counts, opts)
        met, sl_den, ab, ab_den = met + m, sl_den + d, ab + a, ab_den + ad
    return {
        "offered": total.get(kpis.OFFERED, 0),
        "answered": kpis.answered(total),  # with the answers of unknown wait (not in ASA)
        "abandoned": total.get(kpis.ABANDONED, 0),
        "abandon_rate": kpis.ratio(ab, ab_den),
        "service_level": kpis.ratio(met, sl_den),
        "asa_seconds": kpis.mean_seconds(
            total.get(kpis.ANSWER_WAIT_MS, 0), total.get(kpis.ANSWERED, 0)
        ),
        "aht_seconds": kpis.mean_seconds(total.get(kpis.HANDLE_MS, 0), total.get(kpis.HANDLED, 0)),
        "handled": total.get(kpis.HANDLED, 0),
    }
