"""`python -m aggregator` (and `ccpulse aggregator`): consume ccpulse.events into Redis, roll
history to SQL, until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import cast

from redis.asyncio import Redis, RedisCluster

from services.database import make_engine
from services.settings import Settings, load_settings

from .history import HistoryWriter
from .runner import Runner


def connect(settings: Settings) -> Redis:
    """One primary, or redis-py's cluster client (the same commands; typed as the former)."""
    url = settings.redis_url or "redis://127.0.0.1:6379/0"
    if settings.redis_cluster:
        return cast(Redis, RedisCluster.from_url(url, socket_timeout=5, socket_connect_timeout=5))
    return Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


async def main(settings: Settings) -> None:
    redis = connect(settings)
    runner = Runner(settings, redis, clock=settings.clock())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stopping.set)
    engine = make_engine(settings)
    history = asyncio.create_task(HistoryWriter(settings, redis, engine).run(runner.stopping))
    try:
        await runner.run()
    finally:
        runner.stopping.set()
        await history
        await engine.dispose()
        await redis.aclose()


if __name__ == "__main__":
    settings = load_settings()  # a refusal names the settings, never their values
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # group chatter on every rebalance
    asyncio.run(main(settings))
