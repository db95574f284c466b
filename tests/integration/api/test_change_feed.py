"""The api's change feed (Broadcaster._listen) outlives any error of the Redis client: it
subscribes again and the next aggregator step's notice wakes the pushes. Against a real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from api.broadcaster import Broadcaster
from ccpulse.stack import EmbeddedRedis
from services import keys


class FlakyRedis(Redis):
    """A real client whose first pubsub fails to subscribe as redis-py's cluster client did
    while a primary restarted (KeyError from its slot map)."""

    failures = 1

    def pubsub(self, **kwargs: Any) -> PubSub:
        pubsub = super().pubsub(**kwargs)
        if FlakyRedis.failures:
            FlakyRedis.failures -= 1

            async def subscribe(*args: Any, **more: Any) -> None:
                raise KeyError(1505)

            pubsub.subscribe = subscribe  # type: ignore[method-assign]
        return pubsub


async def _nothing() -> dict[str, Any]:
    return {}


async def test_the_feed_subscribes_again_after_an_unexpected_error(
    clean_redis: EmbeddedRedis,
) -> None:
    listening = FlakyRedis.from_url(clean_redis.url)
    publisher = Redis.from_url(clean_redis.url)
    broadcaster = Broadcaster(listening, _nothing, min_interval_s=0.0)
    task = asyncio.create_task(broadcaster._listen())
    try:
        async with asyncio.timeout(10):
            while not await publisher.publish(keys.CHANGES_CHANNEL, "1"):
                assert not task.done(), task  # the listener died instead of retrying
                await asyncio.sleep(0.05)  # no subscriber yet: the retry waits 0.5 s first
            await broadcaster._dirty.wait()
        assert FlakyRedis.failures == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await listening.aclose()
        await publisher.aclose()
