"""`ccpulse replay`: map the raw topic again with today's adapters and publish the events.

After a mapping fix, the raw copies of vendor payloads (`ccpulse.raw`, personal values already
hashed) are re-normalised exactly as they were at arrival (same arrival time, same query) and
published to `ccpulse.events`; ids are deterministic, so events that were right count once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from services import keys
from services.connections import kafka_security
from services.contract import ContactEvent
from services.settings import Settings
from services.sources import SourceSettings, sources_of

from .adapters.base import PayloadError
from .adapters.registry import renormalise
from .publisher import Publisher
from .state import IngestState

log = logging.getLogger("ccpulse.replay")
BATCH = 1000
MAX_SECONDS = 3600.0  # a bound on the whole replay
METADATA_TRIES = 20


async def replay(settings: Settings, since_ms: int | None = None) -> tuple[int, int]:
    """Returns (records read, events published): what the raw topic held when it started."""
    started_ms = int(settings.clock().now() * 1000)
    state = IngestState(settings, Publisher(settings))
    options = sources_of(settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",  # what assign() starts from before the seek lands
        **kafka_security(settings),
    )
    await consumer.start()
    try:
        parts = await _partitions(consumer, settings.topic(keys.TOPIC_RAW))
        consumer.assign(parts)
        end = await consumer.end_offsets(parts)
        log.info("raw topic: %d partitions, end offsets %s", len(parts), sorted(end.values()))
        await _seek(consumer, parts, since_ms)
        return await _drain(consumer, end, started_ms, state, options)
    finally:
        await consumer.stop()
        await state.publisher.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The raw topic's partitions from fresh metadata: the cache filled at start may predate the
    topic or miss it, and an empty list would end the replay at once, having read nothing."""
    for _ in range(METADATA_TRIES):
        await consumer.topics()  # asks the broker for every topic's metadata
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        await asyncio.sleep(0.5)
    raise RuntimeError(f"topic {topic} has no partitions: nothing to replay from")


async def _seek(
    consumer: AIOKafkaConsumer, parts: list[TopicPartition], since_ms: int | None
) -> None:
    """Position every partition, resolved before the first fetch: assign() starts a reset of
    its own, and one still in flight could land after seek_to_beginning and put a partition at
    its end (seen as a replay that read 0 of 5 records)."""
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


async def _caught_up(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    """Every partition is read to the end offset seen at the start and to the high-water mark
    its last fetch reported (unknown until a fetch answered: not caught up). Tansu 0.6 lists
    ends short of a batch's last records; a fetch's mark is the log end."""
    for tp, offset in end.items():
        high = consumer.highwater(tp)
        if high is None or await consumer.position(tp) < max(offset, high):
            return False
    return True


async def _drain(
    consumer: AIOKafkaConsumer,
    end: dict[TopicPartition, int],
    started_ms: int,
    state: IngestState,
    options: SourceSettings,
) -> tuple[int, int]:
    """Re-map and publish, batch by batch, every record written before the replay started.

    The end offsets seen at the start are a floor, not the stop: the embedded broker (Tansu)
    can report them short of its last records. Past them, reading goes on until two polls in a
    row bring nothing older than the start with every partition at the high-water mark its last
    fetch reported; newer records were published live by the ingest.
    """
    read = published = quiet = 0
    deadline = time.monotonic() + MAX_SECONDS
    while quiet < 2 and time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
        pending: list[ContactEvent] = []
        older = 0
        for tp, records in batches.items():
            for record in records:
                if record.timestamp is not None and record.timestamp >= started_ms:
                    continue
                older += 1
                pending.extend(_remap(record.value or b"", options, state, tp.partition))
        read += older
        if pending:
            await state.publisher.publish(pending)
            published += len(pending)
        quiet = 0 if older or not await _caught_up(consumer, end) else quiet + 1
    return read, published


def _remap(
    value: bytes, options: SourceSettings, state: IngestState, partition: int
) -> list[ContactEvent]:
    try:
        return [state.protect(e) for e in renormalise(value, options).events]
    except PayloadError as exc:
        log.warning("raw record on partition %d still unmappable: %s", partition, exc)
        return []


async def main(settings: Settings, since: datetime | None = None) -> tuple[int, int]:
    """Replay from `since` (a time without an offset is UTC), else from the topic's start."""
    since_ms = None
    if since is not None:
        aware = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
        since_ms = int(aware.timestamp() * 1000)
    read, published = await replay(settings, since_ms)
    log.info("replayed %d raw records into %d events", read, published)
    return read, published
