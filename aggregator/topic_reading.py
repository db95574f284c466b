"""Reading a topic to its end with a consumer outside any group: the rules that hold on Apache
Kafka and on the embedded broker alike.

Tansu 0.6 answers ListOffsets(latest) with the last batch's base offset + 1, short of the
batch's other records; only a fetch's high-water mark is the log end. And `assign()` starts a
position reset of its own, which can land after a later seek unless the seek is resolved first.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaTimeoutError

from services.connections import kafka_security
from services.settings import Settings

PROBE_WAIT_S = 10.0  # a bound on confirming log ends by fetch
METADATA_TRIES = 20


async def partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions from fresh metadata: the cache filled at start may predate the
    topic or miss it, and an empty list would end a read at once, having read nothing."""
    for _ in range(METADATA_TRIES):
        await consumer.topics()  # asks the broker for every topic's metadata
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        await asyncio.sleep(0.5)
    raise RuntimeError(f"topic {topic} has no partitions: nothing to read")


async def seek(
    consumer: AIOKafkaConsumer, parts: list[TopicPartition], since_ms: int | None = None
) -> None:
    """Position every partition at its first record written at or after `since_ms` (its
    beginning when None; its end when nothing is that recent), resolved before any fetch.

    Build the consumer with `auto_offset_reset="earliest"`: assign() starts a reset with that
    strategy, and one still in flight can land after this seek (with "latest", a partition
    whose records came in one batch was read from its second record: seen in CI)."""
    if since_ms is None:
        await consumer.seek_to_beginning(*parts)
    else:
        found = await consumer.offsets_for_times({tp: since_ms for tp in parts})
        for tp in parts:
            hit = found.get(tp)
            if hit is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, hit.offset)
    for tp in parts:
        await consumer.position(tp)


async def caught_up(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    """Every partition is read to the end offset listed at the start and to the high-water mark
    its last fetch reported (unknown until a fetch answered: not caught up)."""
    for tp, offset in end.items():
        high = consumer.highwater(tp)
        if high is None or await consumer.position(tp) < max(offset, high):
            return False
    return True


async def log_ends(settings: Settings, at: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Each partition's log end as a fetch from offset `at[tp]` reports it (its high-water mark),
    by a throwaway consumer that leaves every group's positions alone. Raises KafkaTimeoutError
    when a partition's fetch never answers (the caller retries later)."""
    probe = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # Apache Kafka: out of range -> fetch from the start
        fetch_max_wait_ms=100,
        **kafka_security(settings),
    )
    await probe.start()
    try:
        probe.assign(list(at))
        for tp, offset in at.items():
            probe.seek(tp, offset)
        deadline = time.monotonic() + PROBE_WAIT_S
        while time.monotonic() < deadline:
            found = {tp: probe.highwater(tp) for tp in at}
            if all(end is not None for end in found.values()):
                return {tp: end for tp, end in found.items() if end is not None}
            await probe.getmany(timeout_ms=200, max_records=1)
        raise KafkaTimeoutError(f"no fetch answered for {sorted(tp.partition for tp in at)}")
    finally:
        await probe.stop()
