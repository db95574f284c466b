"""`python -m aggregator` (and `ccpulse aggregator`): consume ccpulse.events into Redis, roll
history to SQL, until SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Any, cast

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.sentinel import Sentinel

from services import logs, tracing
from services.connections import redis_target
from services.database import make_engine
from services.settings import Settings, load_settings

from .import_jobs import ImportJobs
from .instance_metrics import serve_metrics
from .rollup import HistoryWriter
from .runner import Runner


def connect(settings: Settings, **timeouts: float) -> Redis:
    """The aggregator's Redis: one primary, or a cluster (typed as the former: same commands).

    A URL (redis:// or rediss://), redis-py's cluster client, or Sentinel's current primary,
    with the password and TLS files of services.connections (docs/managed-services.md).
    """
    target = redis_target(settings)
    options: dict[str, Any] = {
        **target.options,
        **({"socket_timeout": 5.0, "socket_connect_timeout": 5.0} | timeouts),
    }
    if target.sentinels:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            target.sentinels, sentinel_kwargs=target.sentinel_options, **options
        )
        return cast(Redis, sentinel.master_for(str(target.service)))
    if target.cluster:
        options.pop("health_check_interval", None)
        return cast(Redis, RedisCluster.from_url(target.url, **options))
    return Redis.from_url(target.url, **options)


async def main(settings: Settings) -> None:
    tune_gc()  # here, not under __main__: `ccpulse aggregator` (the containers) comes in here
    redis = connect(settings)
    runner = Runner(settings, redis, clock=settings.clock())
    tracing.configure("aggregator", settings.otel_endpoint, instance=runner.instance)
    server = serve_metrics(
        runner.metrics, settings.aggregator_metrics_host, settings.aggregator_metrics_port
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stopping.set)
    engine = make_engine(settings)
    writer = HistoryWriter(settings, redis, engine, live_lag=runner.source.lag)
    history = asyncio.create_task(writer.run(runner.stopping))
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
        tracing.shutdown()


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
