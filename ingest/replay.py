"""`python -m ingest.replay`: map the raw topic again with today's adapters and publish the events.

After a mapping fix, the raw copies of vendor payloads (`ccpulse.raw`, personal values already
hashed) are re-normalised exactly as they were at arrival (same arrival time, same query) and
published to `ccpulse.events`; ids are deterministic, so events that were right count once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from services import keys
from services.contract import ContactEvent
from services.settings import Settings
from services.sources import SourceSettings, sources_of

from .adapters.base import PayloadError
from .adapters.registry import renormalise
from .publisher import Publisher
from .state import IngestState

log = logging.getLogger("ccpulse.replay")
BATCH = 1000


async def replay(settings: Settings, since_ms: int | None = None) -> tuple[int, int]:
    """Returns (records read, events published); stops at the end offsets seen at the start."""
    state = IngestState(settings, Publisher(settings))
    options = sources_of(settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        parts = [TopicPartition(keys.TOPIC_RAW, p)
                 for p in consumer.partitions_for_topic(keys.TOPIC_RAW) or ()]  # fmt: skip
        consumer.assign(parts)
        end = await consumer.end_offsets(parts)
        await _seek(consumer, parts, since_ms)
        return await _drain(consumer, end, state, options)
    finally:
        await consumer.stop()
        await state.publisher.close()


async def _seek(
    consumer: AIOKafkaConsumer, parts: list[TopicPartition], since_ms: int | None
) -> None:
    if since_ms is None:
        await consumer.seek_to_beginning(*parts)
        return
    found = await consumer.offsets_for_times({tp: since_ms for tp in parts})
    for tp in parts:
        hit = found.get(tp)
        if hit is None:
            await consumer.seek_to_end(tp)
        else:
            consumer.seek(tp, hit.offset)


async def _behind(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return True
    return False


async def _drain(
    consumer: AIOKafkaConsumer,
    end: dict[TopicPartition, int],
    state: IngestState,
    options: SourceSettings,
) -> tuple[int, int]:
    """Read up to the end offsets seen at the start, re-map, publish batch by batch."""
    read = published = 0
    while await _behind(consumer, end):
        batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
        pending: list[ContactEvent] = []
        for tp, records in batches.items():
            for record in records:
                if record.offset >= end[tp]:
                    continue
                read += 1
                pending.extend(_remap(record.value or b"", options, state, tp.partition))
        if pending:
            await state.publisher.publish(pending)
            published += len(pending)
    return read, published


def _remap(
    value: bytes, options: SourceSettings, state: IngestState, partition: int
) -> list[ContactEvent]:
    try:
        return [state.protect(e) for e in renormalise(value, options).events]
    except PayloadError as exc:
        log.warning("raw record on partition %d still unmappable: %s", partition, exc)
        return []


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ingest.replay")
    parser.add_argument("--since", help="ISO time; default: the whole raw topic")
    args = parser.parse_args()
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    since = None
    if args.since:
        since = int(datetime.fromisoformat(args.since).replace(tzinfo=UTC).timestamp() * 1000)
    read, published = asyncio.run(replay(settings, since))
    log.info("replayed %d raw records into %d events", read, published)


if __name__ == "__main__":
    main()
