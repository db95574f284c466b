"""Post a generated day over HTTP in real time: each event is sent when its time comes."""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
from typing import Any

import httpx

from services.clock import Clock, SystemClock

from .scenario import Builder, Day, contact_events, iso

log = logging.getLogger("ccpulse.simulator")
TICK_S = 0.5


def run(
    url: str,
    rate: float,
    duration_s: float,
    seed: int = 1,
    token: str = "",
    clock: Clock | None = None,
) -> int:
    """Post until `duration_s` has passed (0: until stopped); returns the events accepted."""
    clock = clock or SystemClock()
    day = Day(seed=seed, prefix=f"sim{int(clock.now())}")
    builder = Builder(day, random.Random(seed))
    pending: list[tuple[str, int, dict[str, Any]]] = []
    order = itertools.count()
    started = clock.now()
    next_arrival = started
    accepted = 0
    number = 0
    headers = {"authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, timeout=10, headers=headers) as client:
        while duration_s <= 0 or clock.now() - started < duration_s:
            now = clock.now()
            while next_arrival <= now + TICK_S:
                builder.events.clear()
                contact_events(builder, number, next_arrival)
                number += 1
                for event in builder.events:
                    heapq.heappush(pending, (event["time"], next(order), event))
                next_arrival += builder.rng.expovariate(rate)
            due = _due(pending, now)
            if due:
                accepted += _post(client, due)
            time.sleep(TICK_S)
    return accepted


def _due(pending: list[tuple[str, int, dict[str, Any]]], now: float) -> list[dict[str, Any]]:
    cutoff = iso(now)
    out = []
    while pending and pending[0][0] <= cutoff:
        out.append(heapq.heappop(pending)[2])
    return out


def _post(client: httpx.Client, events: list[dict[str, Any]]) -> int:
    for attempt in range(5):
        try:
            response = client.post("/v1/events", json=events)
        except httpx.HTTPError as exc:
            log.warning("ingest unreachable (%s); retrying", type(exc).__name__)
            time.sleep(min(2**attempt, 10))
            continue
        if response.status_code == 202:
            return int(response.json()["accepted"])
        if response.status_code == 503:
            time.sleep(float(response.headers.get("Retry-After", "2")))
            continue
        log.error("ingest refused a batch: %s %s", response.status_code, response.text[:300])
        return 0
    return 0
