"""The Kafka side of the aggregator: a consumer whose positions come from Redis, not Kafka.

Offsets are stored with the state they produced (store.py); on every assignment the consumer
seeks to the stored offset + 1, so a crash or rebalance resumes exactly where state left off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)

from services import keys, tracing
from services.connections import kafka_security
from services.settings import Settings

from .engine import DeadLetter
from .topic_reading import log_ends

log = logging.getLogger("ccpulse.aggregator")

Rows = tuple[list[int], list[bytes]]  # one partition's polled offsets and values, in order
OffsetLoader = Callable[[str, list[int]], Awaitable[dict[int, int]]]
OffsetReset = Callable[[str, int], Awaitable[None]]
Revoked = Callable[[int], None]
Assigned = Callable[[int], None]


class SeekFromStore(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, position every partition just after the offset stored in Redis."""

    def __init__(self, source: Source) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self.source.applied.pop(tp.partition, None)
            self.source.renew(tp.partition)
            self.source.on_revoked(tp.partition)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        partitions = sorted(tp.partition for tp in assigned)
        self.source.on_assigned(len(partitions))
        try:
            await self.source.resume_from_store(partitions)
        except Exception as exc:  # Redis down mid-rebalance: aiokafka would only log it
            log.warning("partitions %s not positioned (%s); the runner retries", partitions, exc)
            self.source.unresumed.update(partitions)
            return
        log.info("assigned partitions %s", partitions)


class Source:
    """Consumer plus the per-partition offset this process believes was applied last."""

    def __init__(
        self,
        settings: Settings,
        load_offsets: OffsetLoader,
        reset_offset: OffsetReset,
        on_revoked: Revoked = lambda partition: None,
        on_assigned: Assigned = lambda count: None,
    ) -> None:
        self.topic = settings.topic(keys.TOPIC_EVENTS)
        self.load_offsets = load_offsets  # loads the partitions' state with their offsets
        self.reset_offset = reset_offset
        self.on_revoked = on_revoked
        self.on_assigned = on_assigned  # each rebalance's new assignment (instance metrics)
        self.applied: dict[int, int] = {}
        # Bumped on every revoke and re-seek: records polled under an older epoch predate the
        # state now held (they are read again from the new position), so they must not be used.
        self.epochs: dict[int, int] = {}
        self.traceparents: list[str] = []
        self.unresumed: set[int] = set()  # assigned, but Redis could not be read to seek them
        self.bootstrap = settings.kafka_bootstrap or ""
        self.settings = settings
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=max(500, settings.kafka_session_timeout_ms // 4),
            max_poll_records=settings.max_poll_records,
            # Larger fetches on the embedded broker starve the consumer on a large backlog
            # (fetches time out empty): Kafka's default size; tune it on Apache Kafka.
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            max_partition_fetch_bytes=settings.kafka_max_partition_fetch_bytes,
            request_timeout_ms=max(settings.kafka_request_timeout_ms, 10_000),
            **kafka_security(settings),
        )

    async def start(self) -> None:
        self.consumer.subscribe([self.topic], listener=SeekFromStore(self))
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()

    async def resume_from_store(self, partitions: list[int]) -> None:
        """Load each partition's state and seek it to stored + 1 (the beginning when nothing was
        stored)."""
        owned = {tp.partition for tp in self.consumer.assignment()}
        stored = await self.load_offsets(self.topic, [p for p in partitions if p in owned])
        stored = await self._forget_beyond_log(stored)
        owned_now = self.consumer.assignment()  # a rebalance may have run while Redis answered
        for partition, offset in stored.items():
            tp = TopicPartition(self.topic, partition)
            if tp not in owned_now:
                continue
            if offset < 0:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset + 1)
            self.applied[partition] = offset
            self.renew(partition)

    def renew(self, partition: int) -> None:
        self.epochs[partition] = self.epochs.get(partition, 0) + 1

    async def _forget_beyond_log(self, stored: dict[int, int]) -> dict[int, int]:
        """A stored offset past the log's end means the log was reset (an embedded broker
        restarted with its memory log gone): start that partition again from its beginning.
        Only a fetch's high-water mark decides it (topic_reading.py): a false reset would
        apply the partition's records a second time."""
        tps = [TopicPartition(self.topic, p) for p, o in stored.items() if o >= 0]
        if not tps:
            return stored
        listed = await self.consumer.end_offsets(tps)
        suspects = {tp: stored[tp.partition] for tp in tps if stored[tp.partition] >= listed[tp]}
        if not suspects:
            return stored
        ends = await log_ends(self.settings, suspects)
        out = dict(stored)
        for tp, end in ends.items():
            if stored[tp.partition] >= end:
                log.warning(
                    "partition %d: stored offset %d is past the log end %d; restarting it",
                    tp.partition,
                    stored[tp.partition],
                    end,
                )
                await self.reset_offset(self.topic, tp.partition)
                out[tp.partition] = -1
        return out

    async def poll(self, timeout_ms: int, max_records: int) -> dict[int, Rows]:
        """Records of partitions we own, past what was applied, as offsets and values."""
        batches = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        out: dict[int, Rows] = {}
        traced = tracing.enabled()
        for tp, records in batches.items():
            floor = self.applied.get(tp.partition)
            if floor is None:
                continue
            fresh = past(floor, records)
            if fresh[0]:
                out[tp.partition] = fresh
            if traced:  # the webhooks' traces these records carry (services/tracing.py)
                for record in records:
                    parent = tracing.traceparent_of(record.headers)
                    if parent is not None and len(self.traceparents) < tracing.MAX_LINKS:
                        self.traceparents.append(parent)
        return out

    def take_traceparents(self) -> list[str]:
        """The `traceparent`s polled since the last call (the next batch's span links to them)."""
        taken, self.traceparents = self.traceparents, []
        return taken

    def lag(self) -> int:
        """Records behind the partitions' high-water marks, as far as this consumer knows."""
        total = 0
        owned = self.consumer.assignment()
        for partition, applied in self.applied.items():
            tp = TopicPartition(self.topic, partition)
            if tp not in owned:  # revoked meanwhile: highwater() would assert
                continue
            high = self.consumer.highwater(tp)
            if high is not None:
                total += max(0, high - (applied + 1))
        return total

    async def commit_for_monitoring(self) -> None:
        """Mirror applied offsets into Kafka so lag tools see them; Redis stays the truth."""
        owned = self.consumer.assignment()
        offsets = {TopicPartition(self.topic, p): o + 1 for p, o in self.applied.items() if o >= 0}
        offsets = {tp: o for tp, o in offsets.items() if tp in owned}
        if offsets:
            await self.consumer.commit(offsets)


def past(floor: int, records: Sequence[ConsumerRecord[Any, Any]]) -> Rows:
    """The records' offsets and values (None as empty) past `floor`, in order: two lists, not
    a tuple per record. A poll is normally all past it (one `min` says so)."""
    offsets = [r.offset for r in records]
    if offsets and min(offsets) > floor:
        return offsets, [r.value or b"" for r in records]
    kept = [r for r in records if r.offset > floor]
    return [r.offset for r in kept], [r.value or b"" for r in kept]


class DeadLetters:
    """Producer for ccpulse.events.dlq: the record, its position and the reason it was refused."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic(keys.TOPIC_DLQ)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=settings.idempotent_producer(),
            request_timeout_ms=settings.kafka_request_timeout_ms,
            **kafka_security(settings),
        )

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, topic: str, letters: list[DeadLetter]) -> None:
        futures = [await self.producer.send(self.topic, _letter(topic, d)) for d in letters]
        for future in futures:
            await future


def _letter(topic: str, dead: DeadLetter) -> bytes:
    body = {
        "reason": dead.reason,
        "topic": topic,
        "partition": dead.record.partition,
        "offset": dead.record.offset,
        "value": dead.record.value.decode("utf-8", errors="replace"),
    }
    return json.dumps(body).encode()
