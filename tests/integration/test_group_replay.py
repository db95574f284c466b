"""On a cluster, measured-FCR groups are written before their batch's own step
(aggregator/groups.lua), in their shard's slot; run here on one server through the store's
cluster path. Against a real Redis, in process (no broker): a batch whose groups applied but
whose step never did (the process died between the two) is replayed without counting its
groups twice, and a consumer that lost its partition cannot move a group back to an older
state of its contacts. Counters are compared with a run without faults, summed over
partitions."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from aggregator import engine
from aggregator.runner import OffsetConflict, Runner
from aggregator.store import Outcome, Step
from ccpulse.stack import EmbeddedRedis
from services import keys
from services import kpis as k
from services.clock import ManualClock
from services.settings import Settings
from simulator.scenario import iso
from tests.integration.test_runner_inflight import NOW_S, PARTITIONS, batches


@contextlib.asynccontextmanager
async def runner_on(
    url: str, *, cluster: bool = True, max_sheets: int = 40
) -> AsyncIterator[Runner]:
    """A runner as a fresh process starts: every partition's state loaded from Redis. By
    default on the cluster's two-phase path (groups, then the step), on one server."""
    settings = Settings(
        redis_url=url,
        fcr_measured=True,
        state_max_sheets=max_sheets,
        auth="off",
        redis_cluster=cluster,
    )
    redis = Redis.from_url(url)
    runner = Runner(settings, redis, clock=ManualClock(NOW_S))
    runner.store.partitions = PARTITIONS
    try:
        runner.source.applied.update(await runner._load(keys.TOPIC_EVENTS, list(range(PARTITIONS))))
        yield runner
    finally:
        await runner.source.stop()  # never started, but built: close them (aiokafka warns)
        await runner.dead.stop()
        await redis.aclose()


async def counters(url: str) -> dict[tuple[str, str], int]:
    """(bucket, `scope|counter`) -> value, summed over the partitions' counter hashes."""
    redis = Redis.from_url(url)
    out: dict[tuple[str, str], int] = {}
    try:
        async for key in redis.scan_iter(match=f"{keys.PREFIX}:*:c:*"):
            bucket = key.decode().split(":c:", 1)[1]
            for name, value in (await redis.hgetall(key)).items():
                cell = (bucket, name.decode())
                out[cell] = out.get(cell, 0) + int(value)
    finally:
        await redis.aclose()
    return {cell: value for cell, value in out.items() if value}


def killed_after_groups(
    runner: Runner,
) -> Callable[[Sequence[Step], float], Awaitable[asyncio.Future[list[Outcome]]]]:
    """The store's send as a process killed between a batch's groups and its steps: the
    groups written, the steps' outcomes never read."""

    async def send(steps: Sequence[Step], now_s: float) -> asyncio.Future[list[Outcome]]:
        await runner.store.apply_groups(steps, now_s)
        lost: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        lost.set_exception(ConnectionError("killed after the groups applied"))
        return lost

    return send


async def fresh(url: str) -> None:
    redis = Redis.from_url(url)
    await redis.flushall()
    await redis.aclose()


async def test_groups_applied_before_a_crash_count_once_on_replay(
    clean_redis: EmbeddedRedis,
) -> None:
    polls = batches(seed=11)
    await fresh(clean_redis.url)
    async with runner_on(clean_redis.url) as runner:
        for poll in polls:
            await runner._apply(poll)
            await runner._land()
    want = await counters(clean_redis.url)
    assert any(name.endswith(k.FCR_ELIGIBLE) for _, name in want)  # groups were written

    await fresh(clean_redis.url)
    crashes = 0
    for n, poll in enumerate(polls):
        if n % 3 == 1:  # a process dies between this poll's groups and its steps
            async with runner_on(clean_redis.url) as doomed:
                doomed.store.send = killed_after_groups(doomed)  # type: ignore[method-assign]
                await doomed._apply(poll)
                with pytest.raises(ConnectionError):
                    await doomed._land()
                crashes += 1
        async with runner_on(clean_redis.url) as runner:  # the next process replays the poll
            await runner._apply(poll)
            await runner._land()
    assert crashes > 3
    assert await counters(clean_redis.url) == want


def _event(n: int, kind: str, at_s: float, **extra: Any) -> engine.Decoded:
    body = {"id": f"lost-{n}", "type": kind, "time": iso(at_s), "contact": "c1", **extra}
    return engine.decode(0, [(n, json.dumps(body).encode())])


async def test_a_consumer_that_lost_its_partition_cannot_move_a_group_back(
    clean_redis: EmbeddedRedis,
) -> None:
    """B owns partition 0 now and applied the contact's resolution; A, which lost it, still
    plans the offer alone (from offset -1): its group write would make the contact unresolved
    again (one fewer FCR-eligible contact) before its step is refused."""
    about = {"channel": "chat", "customer": "cust", "issue": "billing"}
    first = {0: _event(0, "contact.offered", NOW_S - 600, **about)}
    second = {0: _event(1, "contact.resolved", NOW_S - 300, **about)}
    await fresh(clean_redis.url)
    async with runner_on(clean_redis.url) as reference:
        for poll in (first, second):
            await reference._apply(poll)
            assert await reference._land()
    want = await counters(clean_redis.url)
    assert any(name.endswith(k.FCR_ELIGIBLE) for _, name in want)

    await fresh(clean_redis.url)
    async with runner_on(clean_redis.url) as a, runner_on(clean_redis.url) as b:
        for poll in (first, second):
            await b._apply(poll)
            assert await b._land()
        await a._apply(first)
        with pytest.raises(OffsetConflict):
            await a._land()
    assert await counters(clean_redis.url) == want
