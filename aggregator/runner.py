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
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka.errors import KafkaError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services import keys, tracing
from services.clock import Clock, SystemClock
from services.contract import Event
from services.settings import Settings

from . import engine, repeats
from .instance_metrics import InstanceMetrics
from .repeats import GroupSheet
from .source import DeadLetters, Source
from .state import GroupCache, OwnedState, decode_facts
from .store import APPLIED, GROUP_CONFLICT, Outcome, Step, Store

log = logging.getLogger("ccpulse.aggregator")
TRACER = tracing.tracer("ccpulse.aggregator")


MISMATCH = (
    "Redis holds live state built from {stored} partitions of {t}, which now has {count}: "
    "contacts moved between partitions. Re-partition as docs/aggregation.md#re-partitioning "
    "says: stop every aggregator, delete the live keys (redis-cli --scan --pattern "
    f"'{keys.all_keys_pattern()}'), start them again to replay the topic, then "
    "`ccpulse history rebuild` for SQL history."
)
LEGACY_STATE = (
    "Redis holds live state written by an aggregator before v2 (per-contact keys, no recorded "
    "partition count). Follow docs/aggregation.md#re-partitioning: delete the live keys, "
    "restart to replay the topic, then `ccpulse history rebuild`."
)


class PartitionCountMismatch(SystemExit):
    """The recorded partition count differs from the topic's: starting would mix owners."""


class OffsetConflict(Exception):
    """Redis holds another offset than this consumer planned from: someone else applied it."""


class GroupConflict(Exception):
    """A measured-FCR group kept changing under other partitions' steps: re-read everything."""


MAX_BACKOFF_S = 5.0
GROUP_RETRIES = 5
Polled = dict[int, engine.Decoded]  # partition -> its records, decoded in the prefetch task
Epochs = dict[int, int]  # partition -> Source.epochs when its records were polled
T = TypeVar("T")


@dataclass
class Runner:
    settings: Settings
    redis: Redis
    clock: Clock = field(default_factory=SystemClock)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    metrics: InstanceMetrics = field(default_factory=InstanceMetrics)

    def __post_init__(self) -> None:
        facts_ttl = self.settings.lateness_seconds + 3600
        self.store = Store(
            self.redis,
            facts_ttl,
            self.settings.bucket_ttl_seconds,
            cluster=self.settings.redis_cluster,
        )
        self.state = OwnedState(self.settings.state_max_sheets)
        self.groups = GroupCache(self.settings.state_max_groups)
        self.source = Source(
            self.settings,
            self._load,
            self.store.reset_offset,
            on_revoked=self.state.drop,
            on_assigned=self._assigned,
        )
        self.dead = DeadLetters(self.settings)
        self._pending: set[int] = set()
        self._next: asyncio.Task[tuple[Polled, Epochs, list[str]]] | None = None
        self._inflight: _InFlight | None = None  # the batch sent to Redis, not yet settled
        self._failures = 0
        self._last_commit = 0.0
        self._apply_us = 0  # batch apply time not yet added to keys.STATS (/metrics)
        self._applies = 0
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"  # its lag report

    async def run(self) -> None:
        await self.dead.start()
        try:
            await self.check_partitions()
        except BaseException:
            await self.dead.stop()
            raise
        await self.source.start()
        try:
            while not self.stopping.is_set():
                await self.step()
        finally:
            await self._drop_prefetch()
            await self.source.stop()
            await self.dead.stop()

    async def check_partitions(self) -> None:
        """Refuse to start on state built with another partition count (contacts would move
        to other owners, and two owners could hold two sheets of one contact)."""
        topic = self.source.topic
        count = len(await self.dead.producer.partitions_for(topic))
        stored = await self.redis.get(keys.PARTITIONS)
        if stored is None:
            if await self.redis.exists(keys.legacy_offset_key(topic, 0)):
                raise PartitionCountMismatch(LEGACY_STATE)
            await self.redis.set(keys.PARTITIONS, count, nx=True)
            stored = await self.redis.get(keys.PARTITIONS)
        recorded = int(stored or 0)
        if recorded != count:
            raise PartitionCountMismatch(MISMATCH.format(stored=recorded, count=count, t=topic))
        self.store.partitions = count  # measured-FCR groups are sharded over the partitions

    async def step(self) -> int:
        """One poll and apply; returns the number of records handled."""
        if self.source.unresumed:
            self._pending |= self.source.unresumed
            self.source.unresumed.clear()
        if self._pending and not await self._resume_pending():
            return 0
        polled, epochs, parents = await self._take_polled()
        if not polled:
            if self._inflight is not None:  # idle: settle the batch still in flight
                await self._guarded(self._land(), [])
            await self._monitor()  # idle: the lag still moves (to 0, or up if fetches fail)
            return 0
        # Fetch the next batch while this one is applied (the broker works meanwhile). One turn
        # of the loop lets it take and decode what the fetcher holds (no await when it holds
        # records): done by the end of this step, its groups are read ahead of it.
        self._next = asyncio.create_task(self._poll())
        await asyncio.sleep(0)
        started = time.monotonic()
        with TRACER.start_as_current_span(  # its Redis step's notice carries it to the api
            f"{self.source.topic} process",
            kind=tracing.SpanKind.CONSUMER,
            links=tracing.links(parents) if parents else None,
        ):
            handled = await self._guarded(self._apply(polled, epochs), list(polled))
        if handled is None:
            return 0
        self._failures = 0
        elapsed = time.monotonic() - started
        self._apply_us += int(elapsed * 1e6)
        self._applies += 1
        self.metrics.batch.observe(handled)
        self.metrics.apply.observe(elapsed)
        await self._monitor()
        return handled

    async def _guarded(self, work: Awaitable[T], partitions: list[int]) -> T | None:
        """Run an apply; on failure re-seek these partitions and every one we own from what
        Redis holds (a batch in flight may or may not have applied). None: nothing handled."""
        try:
            return await work
        except (OffsetConflict, GroupConflict) as conflict:
            log.warning("offset conflict (%s); re-reading from Redis", conflict)
            await self._drop_prefetch()
            self._hold([*partitions, *self.source.applied])
            return None
        except (RedisError, OSError) as exc:
            await self._drop_prefetch()
            self._hold([*partitions, *self.source.applied])
            await self._back_off(exc)
            return None

    async def _poll(self) -> tuple[Polled, Epochs, list[str]]:
        """The next records, decoded here: as this runs in the prefetch task, decoding overlaps
        the previous batch's round trip to Redis (it needs no clock and no state)."""
        polled = await self.source.poll(500, self.settings.max_poll_records)
        epochs = {partition: self.source.epochs.get(partition, 0) for partition in polled}
        decoded = {
            partition: engine.decode_values(partition, offsets, values)
            for partition, (offsets, values) in polled.items()
        }
        return decoded, epochs, self.source.take_traceparents()

    async def _take_polled(self) -> tuple[Polled, Epochs, list[str]]:
        task, self._next = self._next, None
        return await task if task is not None else await self._poll()

    async def _drop_prefetch(self) -> None:
        """A batch failed (or the runner stops): what is prefetched or in flight must be read
        again after re-seeking, and the state reloaded from Redis."""
        task, self._next = self._next, None
        inflight, self._inflight = self._inflight, None
        if task is None and inflight is None:
            return
        if inflight is not None:  # let it finish (whether it applied is read back from Redis)
            with contextlib.suppress(Exception):
                await inflight.task
        if task is not None:
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
        except (RedisError, OSError, KafkaError) as exc:  # KafkaError: a log end unconfirmed
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

    async def _apply(self, polled: Polled, epochs: Epochs | None = None) -> int:
        """Plan each partition's records against the state in memory, as the batch in flight
        will leave it, while Redis applies that batch; then settle it and send these plans in
        one round trip (one atomic step per partition). Memory follows only accepted steps: if
        the batch in flight was not accepted whole, these plans are made again (or everything
        is re-read from Redis, `_guarded`). Records polled before their partition was revoked
        or re-seeked (another epoch) are left: they are read again from the new position."""
        now_s = self.clock.now()
        current = self.source.epochs
        epochs = epochs if epochs is not None else {p: current.get(p, 0) for p in polled}
        pending: dict[int, _Part] = {}
        dead: list[engine.DeadLetter] = []
        for partition, decoded in polled.items():
            part = _Part(partition, [], [], [], decoded.last, epochs[partition])
            if not self._current(part):
                continue  # revoked or re-seeked since it was polled
            part.events, part.dead, part.stamps = engine.check(
                decoded, now_s, self.settings.lateness_seconds
            )
            pending[partition] = part
            dead += part.dead
        if dead:
            await self.dead.send(self.source.topic, dead)
        ahead = self._inflight
        steps = await self._plans(pending, now_s, ahead)
        if ahead is not None and not await self._land():
            steps = await self._plans(pending, now_s, regroup=_by_partition(steps))
        if steps:  # Redis is idle now: the next poll's groups are read before this batch's step
            await self._read_groups_ahead(steps, now_s)
        steps = [step for step in steps if self._current(pending[step.partition])]
        if steps:
            sent = await self.store.send(steps, now_s)  # written: Redis runs it as we plan on
            self._inflight = _InFlight(sent, steps, pending, now_s)
        return sum(len(decoded) for decoded in polled.values())

    async def _read_groups_ahead(self, steps: list[Step], now_s: float) -> None:
        """Read into the group cache the groups the prefetched poll needs, before `steps` go:
        read while planning it, they queued behind these steps' scripts in Redis, and the
        runner waited (a fifth of a catch-up's time). The needed groups are those its plan
        will ask for (the sheets in memory, as `steps` leave them); groups `steps` write are
        left out (the plan takes them from the batch in flight), and so are contacts to read
        back (`_plan` reads their groups as before). Only while the cache is kept (this
        aggregator owns every partition), as a read in `_plan` would fill it."""
        task = self._next
        cache = self._group_cache() if self.settings.fcr_measured else None
        if cache is None or task is None or not task.done() or task.cancelled():
            return
        if task.exception() is not None:
            return  # `_take_polled` raises it where it is handled
        polled = task.result()[0]
        by_partition = _by_partition(steps)
        now_ms = int(now_s * 1000)
        needed: set[str] = set()
        for partition, decoded in polled.items():
            if not self.state.owns(partition):
                continue
            contacts = engine.contacts_of(decoded.events)
            facts, _ = self.state.facts(partition, contacts, now_ms)
            step = by_partition.get(partition)
            if step is not None:
                newer = step.plan.facts
                facts.update({c: newer[c] for c in contacts if c in newer})
            needed |= engine.groups_needed(decoded.events, facts)
        written = {g for step in steps for g in step.plan.groups}
        missing = [g for g in needed if g not in cache.sheets and g not in written]
        if missing:
            cache.put(await self.store.read_groups(missing))

    async def _land(self) -> bool:
        """Settle the batch in flight, applying its group retries now; False when any step
        needed one (plans made on top of the batch are then stale)."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return True
        outcomes = await inflight.task
        retry = self._settle(inflight.steps, outcomes, inflight.now_s, inflight.parts)
        if not retry:
            return True
        pending = {p: inflight.parts[p] for p in retry}
        steps = inflight.steps
        for _ in range(GROUP_RETRIES - 1):
            steps = await self._plans(pending, inflight.now_s, regroup=_by_partition(steps))
            outcomes = await self.store.apply(steps, inflight.now_s)
            retry = self._settle(steps, outcomes, inflight.now_s, pending)
            pending = {p: pending[p] for p in retry}
            if not pending:
                return False
        raise GroupConflict(f"partitions {sorted(pending)}: groups kept changing")

    def _current(self, part: _Part) -> bool:
        """Still owned, positioned, and in the epoch its records were polled in."""
        partition = part.partition
        return (
            self.state.owns(partition)
            and partition in self.source.applied
            and self.source.epochs.get(partition, 0) == part.epoch
        )

    async def _plans(
        self,
        parts: dict[int, _Part],
        now_s: float,
        ahead: _InFlight | None = None,
        regroup: Mapping[int, Step] | None = None,
    ) -> list[Step]:
        """The parts' steps; a part whose partition moved meanwhile (a rebalance runs between
        any two awaits) is dropped, its records read again by whoever holds it now. After a
        group conflict (`regroup`: the parts' steps as planned before) only the groups' part
        of each plan is made again (`_regroup`)."""
        steps: list[Step] = []
        written: dict[str, GroupSheet] = {}  # groups the steps before this one write
        for part in list(parts.values()):
            before = regroup.get(part.partition) if regroup is not None else None
            if not self._current(part):
                step = None
            elif before is not None and self.settings.fcr_measured:  # else no groups conflict
                step = await self._regroup(before, part, written)
            else:
                step = await self._plan(part, now_s, ahead, written)
            if step is None or not self._current(part):
                parts.pop(part.partition, None)
                continue
            steps.append(step)
            written.update(step.plan.groups)
        return steps

    async def _plan(
        self,
        part: _Part,
        now_s: float,
        ahead: _InFlight | None = None,
        written: dict[str, GroupSheet] | None = None,
    ) -> Step | None:
        """One partition's plan from the sheets in memory (and those read back after eviction),
        as the batch in flight (`ahead`) leaves them when given, and with the groups that the
        steps sent before it in the same round trip write (`written`): Redis runs the steps in
        order, so planning on their versions spares a group conflict and its re-plan. None when
        the partition moved while Redis was read (its state is gone or reloaded)."""
        partition, events = part.partition, part.events
        contacts = engine.contacts_of(events)
        facts, cold = self.state.facts(partition, contacts, int(now_s * 1000))
        before = ahead.steps_by_partition.get(partition) if ahead is not None else None
        if before is not None and ahead is not None and ahead.parts[partition].epoch != part.epoch:
            before = None  # planned before a re-seek: Redis's answer to it decides (`_settle`)
        if before is not None:
            newer = before.plan.facts
            facts.update({c: newer[c] for c in contacts if c in newer})
            cold = [c for c in cold if c not in newer]
        if cold:
            values = await self.store.read_facts(partition, cold, int(now_s * 1000))
            for contact, value in zip(cold, values, strict=True):
                facts[contact] = decode_facts(value) if value else None
        measured = self.settings.fcr_measured
        needed = engine.groups_needed(events, facts) if measured else set()
        groups, read = await self._groups(needed, ahead.groups if ahead else {}, written or {})
        if (cold or read) and not self._current(part):
            return None  # revoked or re-seeked during a read: a rebalance runs at any await
        agents = self.state.agents(partition, engine.agents_of(events))
        if before is not None:
            agents.update({a: before.plan.agents[a] for a in agents if a in before.plan.agents})
        part.old_facts = facts  # a group conflict makes only the groups' part again
        plan = engine.plan(
            events,
            facts,
            agents,
            groups,
            self.settings.fcr_window_seconds * 1000,
            self.settings.business_hours,
            measured,
            part.stamps,
        )
        plan.dead = part.dead
        expected = before.last if before is not None else self.source.applied[partition]
        return self._step(part, expected, plan, groups)

    def _step(
        self, part: _Part, expected: int, plan: engine.Plan, groups: dict[str, GroupSheet | None]
    ) -> Step:
        """The part's step. Groups this batch already changed (its step failed after its groups
        applied, or a consumer that lost the partition applied them) stay as they are: once
        per batch."""
        plan.groups = repeats.unapplied(plan.groups, groups, part.partition, part.last)
        plan.group_deltas = {g: d for g, d in plan.group_deltas.items() if g in plan.groups}
        return Step(self.source.topic, part.partition, expected, part.last, plan, groups)

    async def _groups(
        self, needed: set[str], *newer: Mapping[str, GroupSheet]
    ) -> tuple[dict[str, GroupSheet | None], bool]:
        """The groups a plan needs: from the cache (`_group_cache`), then the sheets steps
        before it write (in flight, or earlier in the round trip), the rest read from Redis;
        True when it read."""
        cache = self._group_cache()
        groups, missing = cache.known(needed) if cache is not None else ({}, list(needed))
        for sheets in newer:
            if sheets:
                groups.update({g: sheets[g] for g in needed if g in sheets})
                missing = [g for g in missing if g not in sheets]
        if missing:
            read = await self.store.read_groups(missing)
            if cache is not None:
                cache.put(read)
            groups.update(read)
        return groups, bool(missing)

    def _group_cache(self) -> GroupCache | None:
        """The group cache while this aggregator owns every partition (no other one writes
        groups; a zombie's write is caught by the version check). Else None, and emptied: with
        other owners, a cached version is stale for exactly the groups two partitions share,
        and half of two aggregators' steps were refused (docs/capacity.md)."""
        if len(self.state.partitions) >= self.store.partitions:
            return self.groups
        self.groups.clear()
        return None

    async def _regroup(
        self, step: Step, part: _Part, written: dict[str, GroupSheet]
    ) -> Step | None:
        """`step` after a group conflict, as `_plan` would make it again: the same facts, agents
        and counters (nothing of them depends on the groups), its groups (those it needed:
        `step.old_groups`) read again and their part of the plan made again
        (`engine.regrouped`). A whole plan again cost a second aggregator a fifth to a third of
        its CPU in a catch-up. None when the partition moved while Redis was read."""
        groups, read = await self._groups(set(step.old_groups), written)
        if read and not self._current(part):
            return None
        window_ms = self.settings.fcr_window_seconds * 1000
        plan = engine.regrouped(step.plan, part.old_facts, step.old_groups, groups, window_ms)
        return self._step(part, self.source.applied[part.partition], plan, groups)

    def _settle(
        self, steps: list[Step], outcomes: list[Outcome], now_s: float, parts: dict[int, _Part]
    ) -> list[int]:
        """Keep what Redis accepted; return the partitions whose groups changed meanwhile. A
        partition re-seeked while its step ran holds state loaded maybe before that step
        landed: it is re-read from Redis (which the offset check kept exact)."""
        expires = self.store.facts_expiry_ms(now_s)
        retry: list[int] = []
        refused: list[Outcome] = []
        for step, outcome in zip(steps, outcomes, strict=True):
            if not self._current(parts[step.partition]):
                if self.state.owns(step.partition):
                    self._hold([step.partition])
                continue
            if outcome.code == APPLIED:
                self.state.commit(step.partition, step.plan.facts, expires, step.plan.agents)
                if (cache := self._group_cache()) is not None:
                    cache.put(step.plan.groups)
                self.source.applied[step.partition] = step.last
            elif outcome.code == GROUP_CONFLICT:
                self.metrics.group_conflicts.inc()
                self.groups.forget(step.plan.groups)  # another partition's step wrote them
                retry.append(step.partition)
            else:
                refused.append(outcome)
        if refused:
            raise OffsetConflict("; ".join(f"{o.key} holds {o.stored}" for o in refused))
        return retry

    async def _load(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """On assignment or re-seek: the partitions' state from Redis, with their offsets."""
        offsets: dict[int, int] = {}
        for partition in partitions:
            loaded = await self.store.load_partition(topic, partition)
            self.state.load(partition, loaded)
            offsets[partition] = loaded.offset
        return offsets

    def _assigned(self, count: int) -> None:
        self.metrics.rebalances.inc()
        self.metrics.assigned.set(count)

    async def _monitor(self) -> None:
        self.metrics.lag.set(self.source.lag())  # cheap (one number per owned partition)
        now = time.monotonic()
        if now - self._last_commit < self.settings.lag_report_seconds:
            return
        self._last_commit = now
        now_ms = int(self.clock.now() * 1000)
        try:
            gone = keys.gone_consumers(await self.redis.hgetall(keys.CONSUMER_LAG), now_ms)
            async with self.redis.pipeline(transaction=False) as pipe:  # keys of several slots
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


@dataclass(slots=True)
class _InFlight:
    """A batch's steps sent to Redis, with what is needed to settle or retry them."""

    task: asyncio.Future[list[Outcome]]
    steps: list[Step]
    parts: dict[int, _Part]
    now_s: float
    steps_by_partition: dict[int, Step] = field(init=False)
    groups: dict[str, GroupSheet] = field(init=False)  # the groups' versions it writes

    def __post_init__(self) -> None:
        self.steps_by_partition = {step.partition: step for step in self.steps}
        self.groups = {g: s for step in self.steps for g, s in step.plan.groups.items()}


@dataclass(slots=True)
class _Part:
    """One partition's share of a polled batch."""

    partition: int
    events: list[Event]
    stamps: list[int]  # the events' times in epoch ms
    dead: list[engine.DeadLetter]
    last: int
    epoch: int  # Source.epochs[partition] when its records were polled
    old_facts: engine.FactsIn = field(default_factory=dict)  # its plan's sheets before it


def _by_partition(steps: list[Step]) -> dict[int, Step]:
    return {step.partition: step for step in steps}
