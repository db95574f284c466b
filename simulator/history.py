"""Demo history: weeks of simulated 15-minute interval rows, so a first `ccpulse up --simulate`
shows a planner volume, a heat map and a staffing forecast at once.

Pure and seeded. The rows are in the interval CSV the importer reads (docs/history.md), with
the live simulator's channels, queues and answer and handle times, a working-day arrival curve
(busier mornings, a lunch dip, quiet weekends) and Poisson noise; abandons grow with the load.
"""

from __future__ import annotations

import csv
import io
import math
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from .scenario import ANSWER_MEAN_S, CHANNEL_WEIGHTS, HANDLE_MEAN_S, QUEUES

COLUMNS = (
    "start",
    "channel",
    "queue",
    "offered",
    "answered",
    "abandoned",
    "answered_within_sl",
    "handled",
    "handle_seconds",
    "answer_wait_seconds",
)
PEAK_PER_HOUR = 120  # contacts an hour over all channels at the busiest time of a weekday
WEEKEND = 0.35  # weekend arrivals as a share of a weekday's
STEP_S = 900


def arrival_share(local: datetime) -> float:
    """The share of the peak hour's arrivals at this local time: 0 at night, two humps."""
    hour = local.hour + local.minute / 60
    if not 7 <= hour < 21:
        return 0.02
    morning = math.exp(-(((hour - 10.5) / 1.8) ** 2))
    afternoon = 0.85 * math.exp(-(((hour - 15) / 2.2) ** 2))
    day = max(morning, afternoon) * (WEEKEND if local.weekday() >= 5 else 1.0)
    return max(0.05, day)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: means here stay small (tens a quarter hour)."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def demo_intervals(
    end: datetime,
    weeks: int,
    zone: ZoneInfo,
    seed: int = 1,
    peak_per_hour: float = PEAK_PER_HOUR,
) -> str:
    """CSV of every 15-minute interval, channel and queue with contacts, over `weeks` weeks up
    to `end` (an aware time on a 15-minute boundary, excluded). `peak_per_hour`: the live
    simulator's peak (its --rate x 3600), so the planner's past matches today's traffic."""
    rng = random.Random(seed)
    total = sum(CHANNEL_WEIGHTS.values())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    first = (end.replace(tzinfo=None) - timedelta(weeks=weeks)).replace(tzinfo=zone)
    t, stop = int(first.timestamp()), int(end.timestamp())
    while t < stop:  # in UTC steps: a DST night has 92 or 100 quarter hours, each once
        local = datetime.fromtimestamp(t, zone)
        start = datetime.fromtimestamp(t, UTC).isoformat()
        per_hour = peak_per_hour * arrival_share(local)
        for channel, weight in CHANNEL_WEIGHTS.items():
            for queue in QUEUES[channel]:
                mean = per_hour / 4 * weight / total / len(QUEUES[channel])
                row = _interval(rng, channel, _poisson(rng, mean), per_hour / peak_per_hour)
                if row is not None:
                    writer.writerow([start, channel, queue, *row])
        t += STEP_S
    return out.getvalue()


def _interval(rng: random.Random, channel: str, offered: int, load: float) -> list[int] | None:
    if offered == 0:
        return None
    abandon_p = 0.02 + 0.08 * load if channel in ("voice", "chat") else 0.0
    abandoned = sum(rng.random() < abandon_p for _ in range(offered))
    answered = offered - abandoned
    within = sum(rng.random() < 0.9 - 0.2 * load for _ in range(answered))
    wait = round(answered * ANSWER_MEAN_S[channel] * (0.5 + load))
    handle = round(answered * HANDLE_MEAN_S[channel] * rng.uniform(0.85, 1.15))
    return [offered, answered, abandoned, within, answered, handle, wait]
