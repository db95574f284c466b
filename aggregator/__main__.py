"""`python -m aggregator` (and `ccpulse aggregator`): consume ccpulse.events into Redis, roll
history to SQL, until SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import cast

from redis.asyncio import Redis, RedisCluster

from services import logs
from services.database import make_engine
from services.settings import Settings, load_settings

from .import_jobs import ImportJobs
from .instance_metrics import serve_metrics
from .rollup import HistoryWriter
from .runner import Runner


def connect(settings: Settings) -> Redis:
    """One primary, or redis-py's cluster client (the same commands; typed as the former)."""
    url = settings.redis_url or "redis://127.0.0.1:6379/0"
    if settings.redis_cluster:
        return cast(Redis, RedisCluster.from_url(url, socket_timeout=5, socket_connect_timeout=5))
    return Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


async def main(settings: Settings) -> None:
    tune_gc()  # here, not under __main__: `ccpulse aggregator` (the containers) comes in here
    redis = connect(settings)
    runner = Runner(settings, redis, clock=settings.clock())
    server = serve_metrics(
        runner.metrics, settings.aggregator_metrics_host, settings.aggregator_metrics_port
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stopping.set)
    engine = make_engine(settings)
    history = asyncio.create_task(HistoryWriter(settings, redis, engine).run(runner.stopping))
    imports = asyncio.create_task(ImportJobs(settings, redis, runner.clock).run(runner.stopping))
    try:
        await runner.run()
    finally:
        runner.stopping.set()
        await history
        await imports
        await engine.dispose()
        await redis.aclose()
        if server is not None:
            server.stop()


# The aggregator keeps every hot fact sheet (dicts and registers) in memory and allocates a few
# dicts per event: with CPython's default thresholds (700, 10, 10) the collector ran about once
# per millisecond and its older generations re-walked the sheets, ~30 % of the process's CPU
# (docs/capacity.md). Its own objects form few cycles; collect the young ones every 50,000
# allocations instead, and leave what was loaded at start out of every collection.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


if __name__ == "__main__":
    settings = load_settings()  # a refusal names the settings, never their values
    logs.configure(settings.log_level, settings.log_format)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # group chatter on every rebalance
    asyncio.run(main(settings))
