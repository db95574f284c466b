"""`ccpulse up --simulate` seeds demo history: weeks of simulated interval rows, marked as demo,
so the planning page has volume, a heat map and a staffing forecast on a first run.

Only into an empty history (never beside real rows), through the importer's own checks, and
removable with `ccpulse history remove-demo`.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime
from pathlib import Path

from aggregator import importer
from services.settings import Settings
from simulator.history import PEAK_PER_HOUR, demo_agents, demo_intervals

DEMO_WEEKS = 8


def seed(
    settings: Settings, weeks: int = DEMO_WEEKS, peak_per_hour: float = PEAK_PER_HOUR
) -> int | None:
    """Interval rows written up to today's local midnight (channels, queues and the demo
    agents'); None when history already holds rows."""
    if asyncio.run(importer.has_history(settings)):
        return None
    zone = settings.zone
    now = datetime.fromtimestamp(settings.clock().now(), zone)
    midnight = datetime(now.year, now.month, now.day, tzinfo=zone)
    text = demo_intervals(midnight, weeks, zone, peak_per_hour=peak_per_hour)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo-history.csv"
        path.write_text(text)
        outcome = asyncio.run(importer.main(settings, [], [path], demo=True))
    times, counters = demo_agents(text)  # their agents too: cost per case has a past
    return outcome.written + asyncio.run(importer.write_demo_agents(settings, times, counters))


def remove(settings: Settings) -> int:
    return asyncio.run(importer.remove_demo(settings))
