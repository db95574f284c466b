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

from services import kpis

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


AGENT_OCCUPANCY = 0.75  # demo teams are sized so agents spend this share of an interval handling
INTERVAL_MS = STEP_S * 1000


def demo_agents(
    csv_text: str,
) -> tuple[dict[tuple[int, str], dict[str, int]], dict[tuple[int, str], dict[str, int]]]:
    """Agents behind `demo_intervals`' rows, so cost per case has a past too: per interval and
    channel, a team just large enough for the handle time at AGENT_OCCUPANCY, logged in for the
    whole interval, sharing the channel's handled contacts and handle time evenly.

    Returns (interval start, agent) -> ms per state (`agent_intervals` columns), and (interval
    start, agent) -> counters of the agent's row (handled, handle_ms, `hqm:` per queue)."""
    work: dict[tuple[int, str], list[tuple[str, int, int]]] = {}
    for row in csv.DictReader(io.StringIO(csv_text)):
        start = int(datetime.fromisoformat(row["start"]).timestamp())
        handled, handle_ms = int(row["handled"]), int(row["handle_seconds"]) * 1000
        if handled > 0:
            work.setdefault((start, row["channel"]), []).append((row["queue"], handled, handle_ms))
    times: dict[tuple[int, str], dict[str, int]] = {}
    counters: dict[tuple[int, str], dict[str, int]] = {}
    for (start, channel), queues in sorted(work.items()):
        total_ms = sum(ms for _, _, ms in queues)
        contacts = sum(n for _, n, _ in queues)
        team = max(1, min(contacts, math.ceil(total_ms / (INTERVAL_MS * AGENT_OCCUPANCY))))
        agents = [f"demo-{channel}-{i + 1:02d}" for i in range(team)]
        first = 0  # contacts go round the team, on from where the last queue stopped
        for queue, handled, handle_ms in queues:
            shares = [0] * team
            for k in range(handled):
                shares[(first + k) % team] += 1
            first = (first + handled) % team
            given = [handle_ms * n // handled for n in shares]
            given[shares.index(max(shares))] += handle_ms - sum(given)  # the rounding remainder
            for agent, n, ms in zip(agents, shares, given, strict=True):
                if n == 0:
                    continue
                c = counters.setdefault((start, agent), {"handled": 0, "handle_ms": 0})
                c["handled"] += n
                c["handle_ms"] += ms
                field = kpis.queue_handle_field(channel, queue)
                c[field] = c.get(field, 0) + ms
        for agent in agents:
            busy = min(INTERVAL_MS, counters.get((start, agent), {}).get("handle_ms", 0))
            times[(start, agent)] = {
                "logged_in_ms": INTERVAL_MS,
                "on_contact_ms": busy,
                "available_ms": INTERVAL_MS - busy,
                "wrap_up_ms": 0,
                "not_ready_ms": 0,
            }
    return times, counters
