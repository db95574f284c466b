"""Redis runs a batch's steps while the runner plans the next one: the steps are written before
`_apply` returns, and the groups the next poll needs are read before they go (read after, they
queued behind the steps' scripts and the runner waited). Real Redis, in process (no broker)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import redis as sync_redis
from redis.asyncio import Redis

from aggregator import engine
from aggregator.repeats import GroupSheet
from aggregator.runner import Runner
from ccpulse.stack import EmbeddedRedis
from services import keys
from tests.integration import test_group_replay as group_replay
from tests.integration.test_group_replay import fresh
from tests.integration.test_runner_inflight import (
    batches,
    same,
    snapshot,
)

Polled = dict[int, engine.Decoded]


@asynccontextmanager
async def runner_on(url: str) -> AsyncIterator[Runner]:
    """A runner on a flushed single Redis (the step's write is split there), every sheet kept
    in memory (no contact is read back: its groups would be read by the plan)."""
    await fresh(url)
    async with group_replay.runner_on(url, cluster=False, max_sheets=100_000) as runner:
        yield runner


def prefetched(runner: Runner, poll: Polled | None) -> None:
    """As `step` leaves it: the next poll fetched and decoded while this one is planned."""
    if poll is None:
        runner._next = None
        return
    done: asyncio.Future[tuple[Polled, dict[int, int], list[str]]]
    done = asyncio.get_running_loop().create_future()
    done.set_result((poll, {p: 0 for p in poll}, []))
    runner._next = done  # type: ignore[assignment]


def watch_group_reads(runner: Runner) -> list[tuple[bool, int]]:
    """Every group read the runner makes from now on, as (made reading ahead, groups read)."""
    reads: list[tuple[bool, int]] = []
    ahead = False
    read_groups, read_ahead = runner.store.read_groups, runner._read_groups_ahead

    async def counted(groups: list[str]) -> dict[str, GroupSheet | None]:
        reads.append((ahead, len(groups)))
        return await read_groups(groups)

    async def marked(steps: Sequence[object], now_s: float) -> None:
        nonlocal ahead
        ahead = True
        try:
            await read_ahead(steps, now_s)  # type: ignore[arg-type]
        finally:
            ahead = False

    runner.store.read_groups = counted  # type: ignore[method-assign]
    runner._read_groups_ahead = marked  # type: ignore[method-assign]
    return reads


def read_in_plans(reads: list[tuple[bool, int]]) -> list[int]:
    """The groups read by plans once groups were first read ahead (before it, no poll had been
    prefetched: the first poll's plans read theirs)."""
    first = next(n for n, (was_ahead, _) in enumerate(reads) if was_ahead)
    assert first > 0
    return [count for was_ahead, count in reads[first:] if not was_ahead]


async def apply_prefetched(runner: Runner, polls: list[Polled]) -> None:
    """Each poll applied as `step` applies it: the next one prefetched meanwhile."""
    for n, poll in enumerate(polls):
        prefetched(runner, polls[n + 1] if n + 1 < len(polls) else None)
        await runner._apply(poll)
    await runner._land()


async def test_the_steps_are_written_before_apply_returns(clean_redis: EmbeddedRedis) -> None:
    """Redis applies the batch while the event loop is blocked (the runner planning the next
    one): nothing is left for a later turn of the loop to send."""
    polls = batches(seed=3)[:6]
    async with runner_on(clean_redis.url) as runner:
        watcher = sync_redis.Redis.from_url(clean_redis.url)
        try:
            for poll in polls:
                await runner._apply(poll)
                want = {p: str(d.last).encode() for p, d in poll.items()}
                names = {p: keys.partition_offset_key(keys.TOPIC_EVENTS, p) for p in want}
                got: dict[int, bytes | None] = {}
                for _ in range(500):  # at most 5 s, the loop blocked throughout
                    got = {p: watcher.get(name) for p, name in names.items()}
                    if got == want:
                        break
                    time.sleep(0.01)  # noqa: ASYNC251 (the loop blocked, as by a plan)
                assert got == want
                assert runner._inflight is not None
                await runner._land()
        finally:
            watcher.close()


async def test_the_next_polls_groups_are_read_before_the_steps_go(
    clean_redis: EmbeddedRedis,
) -> None:
    """With the next poll prefetched, planning it reads no group from Redis: they were read
    (into the group cache) while Redis was idle, before the steps were sent."""
    polls = batches(seed=4)
    assert len(polls) > 10
    async with runner_on(clean_redis.url) as runner:
        reads = watch_group_reads(runner)
        await apply_prefetched(runner, polls)
    assert sum(count for was_ahead, count in reads if was_ahead) > 20
    assert read_in_plans(reads) == []


async def ended(url: str, polls: list[Polled], read_ahead: bool) -> dict[str, object]:
    """What Redis holds after the polls: each batch settled before the next is planned (no
    poll prefetched, nothing read ahead), or planned ahead with the next poll prefetched."""
    async with runner_on(url) as runner:
        if read_ahead:
            await apply_prefetched(runner, polls)
        else:
            for poll in polls:
                await runner._apply(poll)
                await runner._land()
    redis = Redis.from_url(url)
    try:
        return await snapshot(redis)
    finally:
        await redis.aclose()


async def test_reading_ahead_leaves_the_same_redis(clean_redis: EmbeddedRedis) -> None:
    """The groups read ahead, before the batch in flight applies, change nothing of what Redis
    ends with (the plan takes the groups that batch writes from it, as before)."""
    polls = batches(seed=5)
    started = time.monotonic()
    settled = await ended(clean_redis.url, polls, read_ahead=False)
    assert any(":g:" in key for key in settled)  # groups were written
    read_ahead = await ended(clean_redis.url, polls, read_ahead=True)
    same(read_ahead, settled, time.monotonic() - started)


async def test_a_step_reads_the_groups_of_the_poll_it_prefetched(
    clean_redis: EmbeddedRedis,
) -> None:
    """Through `step`: the poll it starts fetching takes and decodes what the fetcher holds
    at once, so it is there when the step's groups are read ahead, and the next step's plans
    read no group. The source's poll hands the batches as a fetcher holding them would."""
    polls = batches(seed=6)
    assert len(polls) > 10
    waiting = list(polls)

    async def poll(timeout_ms: int, max_records: int) -> dict[int, tuple[list[int], list[bytes]]]:
        if not waiting:
            return {}
        return {p: (d.offsets, d.values) for p, d in waiting.pop(0).items()}

    async with runner_on(clean_redis.url) as runner:
        reads = watch_group_reads(runner)
        runner.source.poll = poll  # type: ignore[method-assign]
        handled = 0
        for _ in range(len(polls) + 1):
            handled += await runner.step()
        await runner._land()
    assert handled == sum(len(d) for p in polls for d in p.values())
    assert read_in_plans(reads) == []
