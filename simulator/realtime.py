"""Post the simulated floor (floor.py) to an ingest as it happens: every tick, advance the floor
to the injected clock's now and post what happened. The shell holds no model of its own."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from services.clock import Clock, SystemClock

from .center import CenterConfig
from .floor import Floor

log = logging.getLogger("ccpulse.simulator")
TICK_S = 0.5
# The floor starts this long before now and its first post carries that past (inside the
# wallboard's 15-minute window), so the first screen shows a working floor, not an empty one.
WARM_UP_S = 600.0
BATCH = 1000  # events per request, well under the ingest's limit
RETRIES = 5


def run(
    url: str,
    rate: float,
    duration_s: float,
    seed: int = 1,
    token: str = "",
    clock: Clock | None = None,
    zone: ZoneInfo | None = None,
    warm_up_s: float = WARM_UP_S,
) -> int:
    """Post until `duration_s` has passed (0: until stopped); returns the events accepted.
    `rate` is the arrival rate (contacts a second) at the busiest hour of the day in `zone`."""
    clock = clock or SystemClock()
    config = CenterConfig(peak_rate_per_s=rate, zone=zone or ZoneInfo("UTC"))
    now = clock.now()
    floor = Floor(config, seed, now - warm_up_s, prefix=f"sim{int(now)}")
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return asyncio.run(_run(url, headers, floor, clock, duration_s))


async def _run(
    url: str, headers: dict[str, str], floor: Floor, clock: Clock, duration_s: float
) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=headers) as client:
        return await stream(floor, client, clock, duration_s)


async def stream(
    floor: Floor, client: httpx.AsyncClient, clock: Clock, duration_s: float, tick_s: float = TICK_S
) -> int:
    """Advance and post every tick until `duration_s` of the clock has passed (0: forever)."""
    started = clock.now()
    accepted = 0
    while duration_s <= 0 or clock.now() - started < duration_s:
        events = floor.advance(clock.now())
        for i in range(0, len(events), BATCH):
            accepted += await post(client, events[i : i + BATCH])
        await asyncio.sleep(tick_s)
    return accepted


async def post(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> int:
    """One batch, retried while the ingest is unreachable or busy; dropped when refused."""
    for attempt in range(RETRIES):
        try:
            response = await client.post("/v1/events", json=events)
        except httpx.HTTPError as exc:
            log.warning("ingest unreachable (%s); retrying", type(exc).__name__)
            await asyncio.sleep(min(2**attempt, 10))
            continue
        if response.status_code == 202:
            return int(response.json()["accepted"])
        if response.status_code == 503:
            await asyncio.sleep(float(response.headers.get("Retry-After", "2")))
            continue
        log.error("ingest refused a batch: %s %s", response.status_code, response.text[:300])
        return 0
    log.error("ingest unreachable: %d events dropped", len(events))
    return 0
