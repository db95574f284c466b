"""The ingest's producer: events keyed by contact, acknowledged by the broker before `202`."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from contextlib import AbstractContextManager

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, ProducerClosed
from aiokafka.partitioner import DefaultPartitioner, murmur2

from services import keys, tracing
from services.connections import kafka_failure, kafka_security
from services.contract import ContactEvent
from services.settings import Settings

from .batching import Batcher, Headers, Record

log = logging.getLogger("ccpulse.ingest")
TRACER = tracing.tracer("ccpulse.ingest")


class BrokerUnavailable(Exception):
    """The broker did not acknowledge in time; the client should retry (ids make that safe)."""


HASHED_KEYS = 65_536  # bound on remembered key hashes (~6 MB): cleared whole when full


class KeyPartitioner:
    """aiokafka's DefaultPartitioner (murmur2, as the Java client: the same partition for the
    same key), remembering the hash of recent keys: a contact's events repeat its key, and the
    pure-Python murmur2 cost more per event than validating the event."""

    def __init__(self) -> None:
        self._default = DefaultPartitioner()
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(self._default(key, all_partitions, available))
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= HASHED_KEYS:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


class Publisher:
    """Starts lazily and restarts after failures: ingest comes up, and recovers, without Kafka."""

    def __init__(self, settings: Settings) -> None:
        self.clock = settings.clock()
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._batcher: Batcher | None = None
        self._lock = asyncio.Lock()
        self._partitioner = KeyPartitioner()
        self.timeout_s = settings.kafka_request_timeout_ms / 1000

    def _build(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=self.settings.idempotent_producer(),
            linger_ms=2,
            request_timeout_ms=self.settings.kafka_request_timeout_ms,
            max_batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
            partitioner=self._partitioner,
            **kafka_security(self.settings),
        )

    async def _ready(self) -> AIOKafkaProducer:
        if self._producer is not None:  # the common case: no lock to take
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = self._build()
                try:
                    await asyncio.wait_for(producer.start(), self.timeout_s)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await _quiet_stop(producer)
                    raise BrokerUnavailable(kafka_failure(self.settings, exc)) from exc
                self._producer, self._batcher = producer, Batcher(producer)
            return self._producer

    async def publish(self, events: list[ContactEvent]) -> None:
        records: list[tuple[bytes | None, bytes]] = [
            (e.partition_key(), e.to_wire()) for e in events
        ]
        await self.send_all(self.settings.topic(keys.TOPIC_EVENTS), records)

    async def send_all(self, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
        """Send and wait for every acknowledgement; any failure refuses the whole call."""
        producer = await self._ready()
        batcher = self._batcher
        try:
            with _span(topic):
                headers = tracing.kafka_headers() or []  # the trace goes on with each record
                async with asyncio.timeout(self.timeout_s):
                    if batcher is None:  # reset meanwhile: refused like any broker failure
                        raise ProducerClosed()
                    stamp = int(self.clock.now() * 1000)
                    parts = await self._by_partition(producer, topic, records, stamp, headers)
                    await _acknowledged([batcher.add(topic, p, part) for p, part in parts.items()])
        except (KafkaError, OSError, TimeoutError) as exc:
            await self._reset()
            raise BrokerUnavailable(f"broker did not acknowledge: {type(exc).__name__}") from exc

    async def _by_partition(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        records: list[tuple[bytes | None, bytes]],
        stamp: int,
        headers: Headers,
    ) -> dict[int, list[Record]]:
        """Each record's partition as the producer's `send` would choose it, in order."""
        known = producer.client.cluster.partitions_for_topic(topic)  # no coroutine once known
        every = sorted(known if known is not None else await producer.partitions_for(topic))
        available = list(producer.client.cluster.available_partitions_for_topic(topic))
        parts: dict[int, list[Record]] = {}
        for key, value in records:
            partition = self._partitioner(key, every, available)
            parts.setdefault(partition, []).append((key, value, stamp, headers))
        return parts

    async def _reset(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
            batcher, self._batcher = self._batcher, None
        if batcher is not None:
            await batcher.close()
        if producer is not None:
            await _quiet_stop(producer)

    async def check(self) -> bool:
        try:
            producer = await self._ready()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), self.timeout_s)
        except (BrokerUnavailable, KafkaError, OSError, TimeoutError):
            await self._reset()
            return False
        return True

    async def close(self) -> None:
        await self._reset()


def _span(topic: str) -> AbstractContextManager[object]:
    """The publish span; none at all when tracing is off (even a no-op span cost 5 % of a
    webhook's CPU)."""
    if not tracing.enabled():
        return contextlib.nullcontext()
    return TRACER.start_as_current_span(f"{topic} publish", kind=tracing.SpanKind.PRODUCER)


async def _acknowledged(acks: list[asyncio.Future[None]]) -> None:
    """Wait for every acknowledgement; raise (a copy of) the first failure. `asyncio.wait` never
    cancels the futures, which other requests' records share."""
    if len(acks) == 1:  # a webhook's one event: cheaper than `wait`, and as safe
        await asyncio.shield(acks[0])
    elif acks:
        await asyncio.wait(acks)
    for ack in acks:
        failed = ack.exception()
        if failed is not None:
            raise copy.copy(failed)  # the original is shared: its traceback must not grow


async def _quiet_stop(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 5)
    except Exception as exc:  # stopping a half-started producer must not mask the real error
        log.debug("producer stop failed: %s", exc)
