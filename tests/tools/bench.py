"""`make bench`: ingest events/s, aggregator events/s, event -> websocket latency p50/p99 idle and
under 5,000 events/s (tests/tools/bench_ws_latency.py), then the aggregator against the consumer
ceiling on one backlog (tests/tools/bench_backlog.py).

Prints figures with the command and machine; asserts nothing (timings are not test material).
Every loop is bounded in count and time; every process started here is stopped by PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import redis

from simulator.scenario import Day, generate, iso
from tests.clock import clock
from tests.harness import Pipeline, wait_until
from tests.stackfixtures import embedded_pipeline
from tests.tools import bench_backlog, bench_ws_latency
from tests.tools.bench_backlog import applied

INGEST_EVENTS = 100_000
AGGREGATOR_EVENTS = 200_000
LATENCY_INTERVALS_S = [bench_ws_latency.DEFAULT_INTERVAL_S, 1.0]  # the production default, and 1 s
LATENCY_PROBING_S = 40.0


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
    # Keyed as ingest keys them and sent in batches: one record per produce request (and one
    # key for all) left the embedded broker answering each fetch with a record or two.
    pairs = [(bench_backlog.key_of(e), json.dumps(e).encode()) for e in events]
    asyncio.run(bench_backlog.produce(pipeline.bootstrap, pairs))
    values = [v for _, v in pairs]
    aggregator.start()
    first = wait_until(lambda: applied(r) > before, 60, "start")
    started = time.perf_counter()
    base = applied(r)
    del first
    target = before + len(values)
    wait_until(lambda: applied(r) >= target, 600, "catch-up", 0.05)
    return (target - base) / (time.perf_counter() - started)


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
        r.close()
    # Event -> websocket on fresh stacks, idle (20/s) and under 5,000 events/s, per push interval.
    bench_ws_latency.run(LATENCY_INTERVALS_S, LATENCY_PROBING_S)
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
