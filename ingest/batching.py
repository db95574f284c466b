"""Records of concurrent requests, gathered per partition into the producer's batches.

`AIOKafkaProducer.send` costs a coroutine, a future and a metadata check per record: a quarter
of a batched event's CPU. Here the records bound for one partition are appended to aiokafka's
`BatchBuilder` (compiled) and handed over with `send_batch`, one batch at a time per partition:
while one waits for the broker, the records of the requests arriving meanwhile gather behind it,
so single-event webhooks share batches as they did in aiokafka's own accumulator.

What the callers rely on:
- `add` returns a future that resolves only when the broker acknowledged every record given to
  it (each batch's future is the produce request's answer, `acks=all`), or fails;
- records of one partition reach the broker in the order `add` was called (one hand-over at a
  time per partition, batches queued in order; aiokafka sends one request per partition at once);
- nothing is dropped silently: whatever is not acknowledged fails its future, and `close` fails
  what is still waiting.

Only this module hands records to the producer, so `send_batch` waits for nobody but the
previous batch of the same partition (it waits while the partition has a batch not yet sent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerClosed

Headers = list[tuple[str, bytes]]
# key, value, timestamp in ms, headers: one record as the batch builder takes it
Record = tuple[bytes | None, bytes, int, Headers]


@dataclass
class Pending:
    """Records waiting for their partition's turn, and the future of their acknowledgement."""

    records: list[Record] = field(default_factory=list)
    acked: asyncio.Future[None] = field(default_factory=lambda: _future())


def _future() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.add_done_callback(_retrieve)  # callers may time out and never look at a failure
    return future


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class Batcher:
    """One producer's partitions: records waiting per partition and the task handing them over."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._pending: dict[tuple[str, int], Pending] = {}
        self._handing: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._closed = False

    def add(self, topic: str, partition: int, records: list[Record]) -> asyncio.Future[None]:
        """Queue records for one partition; the future resolves once the broker has them all."""
        if self._closed:
            raise ProducerClosed()
        where = (topic, partition)
        pending = self._pending.get(where)
        if pending is None:
            pending = self._pending[where] = Pending()
        pending.records.extend(records)
        if where not in self._handing:
            self._handing[where] = asyncio.create_task(self._hand_over(where))
        return pending.acked

    async def _hand_over(self, where: tuple[str, int]) -> None:
        """Hand the partition's records over until none wait (no await between the last check
        and leaving, so a record added meanwhile always finds a task or starts one)."""
        try:
            while (pending := self._pending.pop(where, None)) is not None:
                await self._send(where, pending)
        finally:
            del self._handing[where]

    async def _send(self, where: tuple[str, int], pending: Pending) -> None:
        topic, partition = where
        try:
            answers = [
                await self._producer.send_batch(batch, topic, partition=partition)
                for batch in self._batches(pending.records)
            ]
        except asyncio.CancelledError:  # `close`: these records' callers hear it at once
            _fail(pending.acked, ProducerClosed())
            raise
        except Exception as exc:  # whatever stopped the hand-over, the callers hear it
            _fail(pending.acked, exc)
            return
        # The broker answers later: the next batch of this partition need not wait for it.
        for answer in answers:
            answer.add_done_callback(_retrieve)
        gathered = asyncio.gather(*answers)
        gathered.add_done_callback(lambda done: _settle(pending.acked, done))

    def _batches(self, records: list[Record]) -> Iterator[object]:
        """Closed builders (no linger: the records have waited their turn already), each within
        the producer's batch size; a batch always takes its first record."""
        batch = self._producer.create_batch()
        for key, value, stamp, headers in records:
            if batch.append(key=key, value=value, timestamp=stamp, headers=headers) is None:
                yield batch
                batch = self._producer.create_batch()
                batch.append(key=key, value=value, timestamp=stamp, headers=headers)
        batch.close()
        yield batch

    async def close(self) -> None:
        """Refuse new records, fail those still waiting, stop the hand-overs (a batch already
        queued in the producer is the producer's to deliver or fail when it stops)."""
        self._closed = True
        tasks = list(self._handing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for pending in self._pending.values():
            _fail(pending.acked, ProducerClosed())
        self._pending.clear()


def _fail(acked: asyncio.Future[None], exc: Exception) -> None:
    if not acked.done():
        acked.set_exception(exc)


def _settle(acked: asyncio.Future[None], gathered: asyncio.Future[list[object]]) -> None:
    if acked.done():
        return
    if gathered.cancelled():
        acked.set_exception(ProducerClosed())
    elif (exc := gathered.exception()) is not None:
        acked.set_exception(exc)
    else:
        acked.set_result(None)
