"""The partition count is recorded with the state; an aggregator finding another one refuses to
start (contacts would have moved to other owners) and says what to do."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from aggregator.runner import PartitionCountMismatch, Runner
from ccpulse.stack import EmbeddedBroker, EmbeddedRedis
from services import keys
from services.settings import Settings
from tests.stackfixtures import TEST_PARTITIONS


@pytest.fixture
async def runner(
    embedded_broker: EmbeddedBroker, clean_redis: EmbeddedRedis
) -> AsyncIterator[Runner]:
    settings = Settings(
        kafka_bootstrap=embedded_broker.bootstrap,
        kafka_idempotence=False,
        redis_url=clean_redis.url,
        auth="off",
    )
    redis = Redis.from_url(clean_redis.url)
    runner = Runner(settings, redis, clock=settings.clock())
    await runner.dead.start()
    try:
        yield runner
    finally:
        await runner.dead.stop()
        await redis.aclose()


async def test_the_first_aggregator_records_the_count(runner: Runner) -> None:
    await runner.check_partitions()
    assert await runner.redis.get(keys.PARTITIONS) == str(TEST_PARTITIONS).encode()
    await runner.check_partitions()  # the same count again: starts


async def test_another_count_is_refused_naming_the_procedure(runner: Runner) -> None:
    await runner.redis.set(keys.PARTITIONS, TEST_PARTITIONS + 18)
    with pytest.raises(PartitionCountMismatch) as refused:
        await runner.check_partitions()
    message = str(refused.value)
    assert (
        f"{TEST_PARTITIONS + 18} partitions" in message and f"now has {TEST_PARTITIONS}" in message
    )
    assert "ccpulse history rebuild" in message and "#re-partitioning" in message


async def test_state_of_an_aggregator_before_v2_is_refused(runner: Runner) -> None:
    await runner.redis.set(keys.legacy_offset_key(keys.TOPIC_EVENTS, 0), 41)
    with pytest.raises(PartitionCountMismatch, match="before v2"):
        await runner.check_partitions()
    assert await runner.redis.get(keys.PARTITIONS) is None
