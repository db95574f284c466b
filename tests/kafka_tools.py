"""Direct broker access for tests: write records the ingest would refuse, read the DLQ."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services import keys


def produce_raw(bootstrap: str, values: list[bytes], topic: str = keys.TOPIC_EVENTS) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value, key=b"raw")
        finally:
            await producer.stop()

    asyncio.run(run())


def consume_all(bootstrap: str, topic: str, expect: int, timeout: float = 30) -> list[bytes]:
    """Read a topic from the beginning until `expect` records arrived (bounded by `timeout`)."""

    async def run() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        out: list[bytes] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(out) < expect and loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                out.extend(r.value or b"" for records in batch.values() for r in records)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(run())
