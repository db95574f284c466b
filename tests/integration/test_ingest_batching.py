"""The ingest's producer path (ingest/batching.py) against the embedded broker: a call returns
only once the broker acknowledged every one of its records, keeps each key's order across
batches and partitions, loses and doubles nothing, and refuses (never hangs) when the broker
cannot answer; a producer started again afterwards publishes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from ccpulse.stack import EmbeddedBroker
from ingest.batching import Batcher, Record
from ingest.publisher import BrokerUnavailable, Publisher
from services import keys
from services.settings import Settings

TOPIC = keys.TOPIC_EVENTS


@asynccontextmanager
async def publisher_of(broker: EmbeddedBroker, timeout_ms: int) -> AsyncIterator[Publisher]:
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence=False,  # the embedded broker refuses idempotent producers
        kafka_request_timeout_ms=timeout_ms,
    )
    publisher = Publisher(settings)
    try:
        await publisher.send_all(TOPIC, [(b"warm-up", b"{}")])  # connected, metadata known
        yield publisher
    finally:
        await publisher.close()


@contextmanager
def stopped(broker: EmbeddedBroker) -> Iterator[None]:
    """The broker process frozen (SIGSTOP): connected, but answering nothing."""
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(broker.pid, signal.SIGCONT)


async def read_all(bootstrap: str, expect: int, timeout_s: float = 30) -> list[ConsumerRecord]:
    """The topic from its start until `expect` records arrived (bounded by `timeout_s`)."""
    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(out) < expect:
                batch = await consumer.getmany(timeout_ms=500)
                out.extend(r for records in batch.values() for r in records)
        more = await consumer.getmany(timeout_ms=1000)  # nothing beyond: no record doubled
        out.extend(r for records in more.values() for r in records)
    finally:
        await consumer.stop()
    return out


def numbered(call: int, count: int, pad: int = 0) -> list[tuple[bytes | None, bytes]]:
    return [
        (f"contact-{n % 7}".encode(), json.dumps({"call": call, "n": n, "pad": "x" * pad}).encode())
        for n in range(count)
    ]


async def test_a_call_returns_only_once_the_broker_acknowledged_every_record(
    broker: EmbeddedBroker,
) -> None:
    async with publisher_of(broker, timeout_ms=30_000) as publisher:
        records = numbered(1, 50)
        with stopped(broker):
            call = asyncio.create_task(publisher.send_all(TOPIC, records))
            await asyncio.sleep(1.5)  # time enough to be handed over, not to be acknowledged
            answered_early = call.done()
        await call  # the broker answers now
        assert not answered_early, "send_all returned while the broker could not acknowledge"
        values = {r.value for r in await read_all(broker.bootstrap, 1 + len(records))}
        assert {v for _, v in records} <= values


async def test_concurrent_calls_keep_each_keys_order_and_lose_nothing(
    broker: EmbeddedBroker,
) -> None:
    calls, per_call = 4, 600  # ~1 KB records: a call's partition takes more than one batch
    async with publisher_of(broker, timeout_ms=30_000) as publisher:
        await asyncio.gather(
            *(publisher.send_all(TOPIC, numbered(c, per_call, pad=900)) for c in range(calls))
        )
        await publisher.send_all(TOPIC, numbered(calls, 1))  # a single record after them
    got = [r for r in await read_all(broker.bootstrap, 2 + calls * per_call) if r.key != b"warm-up"]
    seen = [(v["call"], v["n"]) for v in (json.loads(r.value or b"") for r in got)]
    assert sorted(seen) == sorted(
        {(c, n) for c in range(calls) for n in range(per_call)} | {(calls, 0)}
    )
    partitions: dict[bytes | None, set[int]] = {}
    order: dict[tuple[int, bytes | None], list[int]] = {}
    for record, (call, n) in zip(got, seen, strict=True):
        partitions.setdefault(record.key, set()).add(record.partition)
        order.setdefault((call, record.key), []).append(n)
    assert all(len(p) == 1 for p in partitions.values())  # one key, one partition
    assert len({p for ps in partitions.values() for p in ps}) > 1  # and several partitions used
    assert all(ns == sorted(ns) for ns in order.values())


async def test_a_broker_that_cannot_answer_refuses_the_call_and_a_new_producer_recovers(
    broker: EmbeddedBroker,
) -> None:
    async with publisher_of(broker, timeout_ms=2_000) as publisher:
        with stopped(broker):
            answers = await asyncio.gather(
                *(publisher.send_all(TOPIC, numbered(c, 20)) for c in range(3)),
                return_exceptions=True,
            )
        assert all(isinstance(a, BrokerUnavailable) for a in answers), answers
        await publisher.send_all(TOPIC, numbered(9, 5))  # a new producer, the broker back
        values = [json.loads(r.value or b"") for r in await read_all(broker.bootstrap, 6)]
        assert {v["n"] for v in values if v.get("call") == 9} == set(range(5))


async def test_closing_fails_records_still_waiting_for_their_turn_at_once(
    broker: EmbeddedBroker,
) -> None:
    """One batch of partition 0 in flight, one queued behind it, a third being handed over:
    closing refuses the third's callers there and then (they would otherwise wait out their
    timeout), and leaves the first two to the producer."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    batcher = Batcher(producer)
    record: list[Record] = [(b"k", b"{}", 0, [])]
    try:
        with stopped(broker):
            in_flight = batcher.add(TOPIC, 0, record)
            await asyncio.sleep(0.5)
            queued = batcher.add(TOPIC, 0, record)
            await asyncio.sleep(0.5)
            waiting = batcher.add(TOPIC, 0, record)
            await asyncio.sleep(0.5)
            await batcher.close()
            assert waiting.done() and waiting.exception() is not None
            assert not in_flight.done() and not queued.done()
        await asyncio.wait([in_flight, queued], timeout=30)
        assert in_flight.exception() is None and queued.exception() is None
    finally:
        await producer.stop()
