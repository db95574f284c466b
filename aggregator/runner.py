"""The aggregator loop: poll a batch, dead-letter what is unusable, apply the rest atomically.

A failed apply (Redis down, offset conflict) never advances anything: the consumer is re-seeked
to what Redis holds and the batch is read again, so the result stays exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services import keys
from services.calendar import BusinessHours
from services.clock import Clock, SystemClock
from services.contract import ContactEvent
from services.settings import Settings

from . import engine
from .source import DeadLetters, Source
from .store import GroupConflict, OffsetConflict, Positions, Store

log = logging.getLogger("ccpulse.aggregator")

COMMIT_EVERY_S = 5.0
MAX_BACKOFF_S = 5.0
GROUP_RETRIES = 5
Polled = dict[int, list[tuple[int, bytes]]]


@dataclass
class Runner:
    settings: Settings
    redis: Redis
    clock: Clock = field(default_factory=SystemClock)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        facts_ttl = self.settings.lateness_seconds + 3600
        self.store = Store(self.redis, facts_ttl, self.settings.bucket_ttl_seconds)
        self.source = Source(self.settings, self.store.load_offsets, self.store.reset_offset)
        self.dead = DeadLetters(self.settings)
        self._pending: set[int] = set()
        self._next: asyncio.Task[Polled] | None = None
        self._failures = 0
        self._last_commit = 0.0
        self._apply_us = 0  # batch apply time not yet added to keys.STATS (/metrics)
        self._applies = 0
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"  # its lag report

    async def run(self) -> None:
        await self.dead.start()
        await self.source.start()
        try:
            while not self.stopping.is_set():
                await self.step()
        finally:
            await self._drop_prefetch()
            await self.source.stop()
            await self.dead.stop()

    async def step(self) -> int:
        """One poll and apply; returns the number of records handled."""
        if self.source.unresumed:
            self._pending |= self.source.unresumed
            self.source.unresumed.clear()
        if self._pending and not await self._resume_pending():
            return 0
        polled = await self._take_polled()
        if not polled:
            await self._monitor()  # idle: the lag still moves (to 0, or up if fetches fail)
            return 0
        # Fetch the next batch while this one is applied (the broker works meanwhile).
        self._next = asyncio.create_task(self._poll())
        started = time.monotonic()
        try:
            handled = await self._apply(polled)
        except (OffsetConflict, GroupConflict) as conflict:
            log.warning("offset conflict (%s); re-reading from Redis", conflict)
            await self._drop_prefetch()
            self._hold(list(polled))
            return 0
        except (RedisError, OSError) as exc:
            await self._drop_prefetch()
            self._hold(list(polled))
            await self._back_off(exc)
            return 0
        self._failures = 0
        self._apply_us += int((time.monotonic() - started) * 1e6)
        self._applies += 1
        await self._monitor()
        return handled

    async def _poll(self) -> Polled:
        return await self.source.poll(500, self.settings.max_poll_records)

    async def _take_polled(self) -> Polled:
        task, self._next = self._next, None
        return await task if task is not None else await self._poll()

    async def _drop_prefetch(self) -> None:
        """A prefetched batch follows one that failed: it must be read again after re-seeking."""
        task, self._next = self._next, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        # Whatever the cancelled fetch had consumed is unknown: re-seek every partition we own.
        self._hold(list(self.source.applied))

    def _hold(self, partitions: list[int]) -> None:
        """Stop using these partitions' records until they are re-seeked from Redis."""
        for partition in partitions:
            self.source.applied.pop(partition, None)
        self._pending.update(partitions)

    async def _resume_pending(self) -> bool:
        try:
            await self.source.resume_from_store(sorted(self._pending))
        except (RedisError, OSError) as exc:
            await self._back_off(exc)
            return False
        self._pending.clear()
        return True

    async def _back_off(self, exc: BaseException) -> None:
        self._failures += 1
        delay = min(MAX_BACKOFF_S, 0.2 * 2 ** min(self._failures, 10))
        log.warning("Redis step failed (%s); retrying in %.1fs", type(exc).__name__, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=delay)

    async def _apply(self, polled: dict[int, list[tuple[int, bytes]]]) -> int:
        records = [
            engine.Record(p, offset, value) for p, rows in polled.items() for offset, value in rows
        ]
        events, dead = engine.screen(records, self.clock.now(), self.settings.lateness_seconds)
        positions = Positions(
            topic=self.source.topic,
            expected={p: self.source.applied[p] for p in polled},
            last={p: rows[-1][0] for p, rows in polled.items()},
        )
        if dead:
            await self.dead.send(self.source.topic, dead)

        batch = _Batch(
            events, dead, self.settings.fcr_window_seconds * 1000, self.settings.business_hours
        )
        contacts = sorted(engine.contacts_of(events))
        agents = sorted(engine.agents_of(events))
        for attempt in range(GROUP_RETRIES):
            try:
                await self.store.apply(positions, contacts, agents, batch)
                break
            except GroupConflict:
                # Another partition's batch touched the same customer: re-read and re-plan.
                if attempt == GROUP_RETRIES - 1:
                    raise

        self.source.applied.update(positions.last)
        return len(records)

    async def _monitor(self) -> None:
        now = time.monotonic()
        if now - self._last_commit < COMMIT_EVERY_S:
            return
        self._last_commit = now
        now_ms = int(self.clock.now() * 1000)
        try:
            gone = keys.gone_consumers(await self.redis.hgetall(keys.CONSUMER_LAG), now_ms)
            async with self.redis.pipeline(transaction=True) as pipe:
                report = keys.lag_report(self.source.lag(), now_ms)
                pipe.hset(keys.CONSUMER_LAG, self.instance, report)
                if gone:
                    pipe.hdel(keys.CONSUMER_LAG, *gone)
                pipe.hincrby(keys.STATS, "apply_us_total", self._apply_us)
                pipe.hincrby(keys.STATS, "apply_timed_batches", self._applies)
                await pipe.execute()
        except (RedisError, OSError) as exc:  # figures for /metrics only; the next round retries
            log.debug("monitoring figures not written: %s", exc)
            return
        self._apply_us = self._applies = 0
        try:
            await self.source.commit_for_monitoring()
        except Exception as exc:  # a rebalance in progress; the next round commits
            log.debug("monitoring commit skipped: %s", exc)


@dataclass
class _Batch:
    """One polled batch, planned against whatever state the store reads for it."""

    events: list[ContactEvent]
    dead: list[engine.DeadLetter]
    fcr_window_ms: int
    calendars: Mapping[str, BusinessHours]

    def groups_needed(self, old_facts: engine.FactsIn) -> set[str]:
        return engine.groups_needed(self.events, old_facts)

    def plan(
        self, facts: engine.FactsIn, agents: engine.AgentsIn, groups: engine.GroupsIn
    ) -> engine.Plan:
        plan = engine.plan(self.events, facts, agents, groups, self.fcr_window_ms, self.calendars)
        plan.dead = self.dead
        return plan
