"""`make bench`: ingest events/s, aggregator events/s, event -> websocket latency p50/p99, then
the aggregator against the consumer ceiling on one backlog (tests/tools/bench_backlog.py).

Prints figures with the command and machine; asserts nothing (timings are not test material).
Every loop is bounded in count and time; every process started here is stopped by PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import redis
import websockets

from simulator.scenario import Day, generate, iso
from tests.clock import clock
from tests.harness import Pipeline, wait_until
from tests.kafka_tools import produce_raw
from tests.stackfixtures import embedded_pipeline
from tests.tools import bench_backlog
from tests.tools.bench_backlog import applied
from tests.wallboard_feed import Feed

INGEST_EVENTS = 100_000
AGGREGATOR_EVENTS = 200_000
LATENCY_SAMPLES = 200
LATENCY_RATE_PER_S = 20


def past_events(count: int, prefix: str) -> list[dict[str, Any]]:
    now = clock.now()
    events = generate(Day(seed=5, prefix=prefix), now - 6 * 3600, count // 9, count / 9 / 21600)
    return [e for e in events if e["time"] <= iso(now - 1)][:count]


def bench_ingest(pipeline: Pipeline) -> float:
    events = past_events(INGEST_EVENTS, "bi")
    batches = [events[i : i + 1000] for i in range(0, len(events), 1000)]
    bodies = [json.dumps(b).encode() for b in batches]

    def post(body: bytes) -> None:
        with httpx.Client(base_url=pipeline.ingest_url, timeout=60) as client:
            r = client.post(
                "/v1/events", content=body, headers={"content-type": "application/json"}
            )
            assert r.status_code == 202, r.text

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post, bodies))
    elapsed = time.perf_counter() - started
    return len(events) / elapsed


def bench_aggregator(pipeline: Pipeline, r: redis.Redis) -> float:
    """Pre-load the topic with the aggregator stopped, then time how fast it catches up."""
    aggregator = pipeline.children["aggregator"]
    aggregator.stop()
    before = applied(r)
    events = past_events(AGGREGATOR_EVENTS, "ba")
    values = [json.dumps(e).encode() for e in events]
    produce_raw(pipeline.bootstrap, values)
    aggregator.start()
    first = wait_until(lambda: applied(r) > before, 60, "start")
    started = time.perf_counter()
    base = applied(r)
    del first
    target = before + len(values)
    wait_until(lambda: applied(r) >= target, 600, "catch-up", 0.05)
    return (target - base) / (time.perf_counter() - started)


async def bench_latency(pipeline: Pipeline) -> list[float]:
    """Post one new contact at a steady rate; time until the websocket shows it counted."""
    url = pipeline.api_url.replace("http", "ws") + "/ws/wallboard"
    latencies: list[float] = []
    async with websockets.connect(url, max_size=None) as ws, httpx.AsyncClient() as client:
        feed = Feed(ws)
        await feed.next()
        for n in range(LATENCY_SAMPLES):
            event = {
                "id": f"lat{n}",
                "type": "contact.offered",
                "time": iso(clock.now()),
                "contact": f"lat{n}",
                "channel": "social",
            }
            sent = time.perf_counter()
            await client.post(f"{pipeline.ingest_url}/v1/events", json=event)
            deadline = sent + 10
            while time.perf_counter() < deadline:
                msg = await feed.next(10)
                if _social_offered(msg) > n:
                    latencies.append(time.perf_counter() - sent)
                    break
            await asyncio.sleep(max(0.0, 1 / LATENCY_RATE_PER_S - (time.perf_counter() - sent)))
    return latencies


def _social_offered(message: Any) -> int:
    """Contacts offered on `social` in a wallboard update; 0 for any other message (alerts
    carry a list as `data`)."""
    data = message.get("data") if isinstance(message, dict) else None
    if not isinstance(data, dict):
        return 0
    social = (data.get("channels") or {}).get("social") or {}
    return int(social.get("offered", 0)) if isinstance(social, dict) else 0


def main() -> None:
    print(
        f"command: make bench  (python -m tests.tools.bench)\nmachine: {platform.platform()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    env = {"CCPULSE_WS_MIN_INTERVAL_SECONDS": "0.1"}
    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_pipeline(Path(tmp), env) as (pipeline, redis_url),
    ):
        r = redis.Redis.from_url(redis_url)
        rate = bench_ingest(pipeline)
        print(
            f"ingest:     {rate:10,.0f} events/s  "
            f"({INGEST_EVENTS:,} events, batches of 1000, 4 clients)"
        )
        rate = bench_aggregator(pipeline, r)
        print(
            f"aggregator: {rate:10,.0f} events/s  ({AGGREGATOR_EVENTS:,} events "
            "pre-loaded, one atomic Redis script call per batch)"
        )
        lat = sorted(asyncio.run(bench_latency(pipeline)))
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        print(
            f"event -> websocket: p50 {p50:.0f} ms, p99 {p99:.0f} ms  "
            f"({len(lat)} events at {LATENCY_RATE_PER_S}/s, updates coalesced every 0.1 s)"
        )
        r.close()
    # Side by side on one backlog: consumer ceiling, one aggregator, two, two on a local cluster.
    bench_backlog.run(200_000, 6, None, cluster=True)
    bench_history()


def bench_history() -> None:
    """The history benchmark, when the history module is there."""
    try:
        from tests.tools import bench_history as history
    except ImportError:
        return
    history.main()


if __name__ == "__main__":
    main()
