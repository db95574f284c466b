"""Log ends and positions on the real embedded broker, where ListOffsets(latest) can list fewer
records than a partition holds: a stored offset inside the log must never be taken for a log
that was reset (that would apply the partition's records twice), and one past the real end must.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer, TopicPartition

from aggregator import topic_reading
from aggregator.source import Source
from ccpulse.stack import EmbeddedBroker
from services import keys
from services.settings import Settings

BATCHES, PER_BATCH = 3, 40


async def _fill(bootstrap: str, tp: TopicPartition) -> int:
    """Several records per produce batch (what makes Tansu's listed end fall short)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50)
    await producer.start()
    try:
        for batch in range(BATCHES):
            futures = [
                await producer.send(tp.topic, f"{batch}-{i}".encode(), partition=tp.partition)
                for i in range(PER_BATCH)
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return BATCHES * PER_BATCH


def test_log_ends_are_the_fetched_high_water_marks(broker: EmbeddedBroker) -> None:
    tp = TopicPartition(keys.TOPIC_EVENTS, 0)

    async def run() -> None:
        count = await _fill(broker.bootstrap, tp)
        settings = Settings(kafka_bootstrap=broker.bootstrap)
        assert await topic_reading.log_ends(settings, {tp: count - 1}) == {tp: count}
        assert await topic_reading.log_ends(settings, {tp: count + 50}) == {tp: count}
        assert await topic_reading.log_ends(settings, {tp: 0}) == {tp: count}

    asyncio.run(run())


def test_a_stored_offset_inside_the_log_is_kept_and_one_past_it_is_reset(
    broker: EmbeddedBroker,
) -> None:
    settings = Settings(kafka_bootstrap=broker.bootstrap)
    resets: list[int] = []

    async def reset(topic: str, partition: int) -> None:
        resets.append(partition)

    async def no_state(topic: str, partitions: list[int]) -> dict[int, int]:
        return {}

    async def run() -> None:
        last = await _fill(broker.bootstrap, TopicPartition(keys.TOPIC_EVENTS, 0)) - 1
        source = Source(settings, no_state, reset)
        await source.consumer.start()  # not subscribed: the group's positions stay untouched
        try:
            kept = await source._forget_beyond_log({0: last, 1: -1})
            assert kept == {0: last, 1: -1} and resets == []
            gone = await source._forget_beyond_log({0: last + 1, 1: -1})
            assert gone == {0: -1, 1: -1} and resets == [0]
        finally:
            await source.stop()

    asyncio.run(run())
