"""The runner plans each batch while the previous one is still in flight to Redis, on the state
that batch will leave. Against a real Redis, in process (no broker): the same records in the same
batches leave Redis identical, key by key (values, scores, expiry), whether each batch
is settled before the next is planned or planned ahead of it; with few sheets in memory (so
evicted sheets are read back while a batch is in flight) and measured FCR on."""

from __future__ import annotations

import json
import random
import time
import zlib
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from aggregator import engine
from aggregator.runner import Runner
from ccpulse.stack import EmbeddedRedis
from services import keys
from services.clock import ManualClock
from services.settings import Settings
from simulator.scenario import Day, generate

NOW_S = 1_893_456_000.0 + 15 * 3600  # a fixed instant: expiries are compared exactly
PARTITIONS = 3


def batches(seed: int) -> list[dict[int, engine.Decoded]]:
    """Simulated contacts (duplicates and some reordering), split by key over partitions and
    cut into polls of random sizes."""
    rng = random.Random(seed)
    day = Day(seed=seed, agents=6, customers=40, prefix=f"rt{seed}")
    events = generate(day, NOW_S - 30 * 3600, 250, 250 / (2 * 3600))  # all of it past
    events += rng.sample(events, len(events) // 10)  # redelivered
    rng.shuffle(events)
    per: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    for e in events:
        key = str(e.get("contact") or e.get("agent") or e["id"]).encode()
        per[zlib.crc32(key) % PARTITIONS].append(json.dumps(e).encode())
    cursor = dict.fromkeys(per, 0)
    polls: list[dict[int, engine.Decoded]] = []
    while any(cursor[p] < len(per[p]) for p in per):
        poll: dict[int, engine.Decoded] = {}
        for p in per:
            take = rng.randint(0, 120)
            rows = per[p][cursor[p] : cursor[p] + take]
            if rows:
                poll[p] = engine.decode(p, [(cursor[p] + i, v) for i, v in enumerate(rows)])
                cursor[p] += len(rows)
        if poll:
            polls.append(poll)
    return polls


async def run(url: str, polls: list[dict[int, engine.Decoded]], ahead: bool) -> dict[str, Any]:
    settings = Settings(redis_url=url, fcr_measured=True, state_max_sheets=40, auth="off")
    redis = Redis.from_url(url)
    await redis.flushall()
    runner = Runner(settings, redis, clock=ManualClock(NOW_S))
    try:
        offsets = await runner._load(keys.TOPIC_EVENTS, list(range(PARTITIONS)))
        runner.source.applied.update(offsets)
        for poll in polls:
            await runner._apply(poll)
            if not ahead:
                await runner._land()  # False when a group retry ran: both modes retry alike
        await runner._land()
        return await snapshot(redis)
    finally:
        await runner.source.stop()  # never started, but built: close them (aiokafka warns)
        await runner.dead.stop()
        await redis.aclose()


async def snapshot(redis: Redis) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(await redis.keys("*")):
        kind = (await redis.type(key)).decode()
        if kind == "hash":
            value: Any = await redis.hgetall(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        else:
            value = await redis.get(key)
        out[key.decode()] = (kind, value, await redis.expiretime(key))
    return out


def same(got: dict[str, Any], want: dict[str, Any], drift_s: float) -> None:
    """Equal key by key; expiry instants too, within the time between the two runs: keys given
    a relative TTL (groups, agent logs: EXPIRE on Redis's own clock) drift by that much."""
    assert sorted(got) == sorted(want)
    for key, (kind, value, expires) in want.items():
        assert got[key][:2] == (kind, value), key
        assert (got[key][2] < 0) == (expires < 0), key
        assert abs(got[key][2] - expires) <= drift_s + 1, key


async def test_planning_ahead_of_the_batch_in_flight_leaves_the_same_redis(
    clean_redis: EmbeddedRedis,
) -> None:
    for seed in (1, 2):
        polls = batches(seed)
        assert len(polls) > 10
        started = time.monotonic()  # a duration, not an instant: the runs' expiry drift
        settled = await run(clean_redis.url, polls, ahead=False)
        planned_ahead = await run(clean_redis.url, polls, ahead=True)
        same(planned_ahead, settled, time.monotonic() - started)
        last = {p: str(max(poll[p].last for poll in polls if p in poll)) for p in range(PARTITIONS)}
        for p, offset in last.items():  # every record applied
            assert settled[keys.partition_offset_key(keys.TOPIC_EVENTS, p)][1] == offset.encode()


async def test_records_polled_before_a_re_seek_are_never_applied(
    clean_redis: EmbeddedRedis,
) -> None:
    """A rebalance can revoke and re-assign a partition between any two awaits: records polled
    before it predate the state then loaded (applying them could skip or repeat offsets), and a
    step in flight across it leaves memory behind Redis. Both wait to be read again."""
    polls = batches(3)
    settings = Settings(redis_url=clean_redis.url, fcr_measured=True, auth="off")
    redis = Redis.from_url(clean_redis.url)
    await redis.flushall()
    runner = Runner(settings, redis, clock=ManualClock(NOW_S))
    offset_keys = [keys.partition_offset_key(keys.TOPIC_EVENTS, p) for p in range(PARTITIONS)]
    try:
        runner.source.applied.update(await runner._load(keys.TOPIC_EVENTS, list(range(PARTITIONS))))
        await runner._apply(polls[0])
        await runner._land()
        stored = await redis.mget(offset_keys)
        stale = {p: runner.source.epochs.get(p, 0) for p in polls[1]}
        for p in polls[1]:
            runner.source.renew(p)  # what a re-seek does (Source.resume_from_store)
        await runner._apply(polls[1], stale)
        await runner._land()
        assert await redis.mget(offset_keys) == stored  # nothing of the stale poll applied

        await runner._apply(polls[1])  # polled in the current epoch: applied
        moved = sorted(polls[1])
        for p in moved:
            runner.source.renew(p)  # re-seeked while its step is in flight
        await runner._land()
        assert all(p not in runner.source.applied for p in moved)
        assert set(moved) <= runner._pending  # re-read from Redis before going on
        assert await redis.mget(offset_keys) != stored  # Redis took the step (offset-checked)
    finally:
        await runner.source.stop()
        await runner.dead.stop()
        await redis.aclose()


async def test_partitions_of_one_batch_sharing_a_group_apply_without_a_retry(
    clean_redis: EmbeddedRedis,
) -> None:
    """Steps of one round trip run in order: a partition's plan takes the measured-FCR groups
    the steps before it write, so two partitions with contacts of one customer x issue do not
    conflict on the group (a conflict re-plans the batch and every plan made ahead of it)."""
    settings = Settings(redis_url=clean_redis.url, fcr_measured=True, auth="off")
    redis = Redis.from_url(clean_redis.url)
    await redis.flushall()
    runner = Runner(settings, redis, clock=ManualClock(NOW_S))
    poll: dict[int, engine.Decoded] = {}
    for p in range(PARTITIONS):
        event = {
            "id": f"shared-{p}",
            "type": "contact.offered",
            "time": "2030-01-01T14:00:00Z",  # NOW_S - 1 h
            "contact": f"shared-c{p}",
            "channel": "voice",
            "customer": "one-customer",
            "issue": "billing",
        }
        poll[p] = engine.decode(p, [(0, json.dumps(event).encode())])
    try:
        runner.source.applied.update(await runner._load(keys.TOPIC_EVENTS, list(range(PARTITIONS))))
        await runner._apply(poll)
        assert await runner._land()  # False: some step needed a group retry
        group = await redis.hgetall(
            keys.group_key(f"one-customer{keys.SEP}billing", runner.store.partitions)
        )
        assert group[b"v"] == str(PARTITIONS).encode()  # one version per partition's step
        assert len(json.loads(group[b"m"])) == PARTITIONS
    finally:
        await runner.source.stop()
        await runner.dead.stop()
        await redis.aclose()


async def test_a_partition_revoked_while_its_plan_reads_redis_is_left_for_its_new_owner(
    clean_redis: EmbeddedRedis,
) -> None:
    """Planning reads evicted sheets and measured-FCR groups back from Redis; a rebalance can
    revoke the partition during that read (its state dropped). Its records are then left for
    the new owner, and the batch's other partitions still apply (it used to raise KeyError in
    `OwnedState.agents`: the aggregator died in chaos on a cluster with three of them)."""
    polls = batches(4)
    settings = Settings(
        redis_url=clean_redis.url,
        fcr_measured=True,
        state_max_sheets=1,
        state_max_groups=1,
        auth="off",
    )
    redis = Redis.from_url(clean_redis.url)
    await redis.flushall()
    runner = Runner(settings, redis, clock=ManualClock(NOW_S))
    offset_keys = [keys.partition_offset_key(keys.TOPIC_EVENTS, p) for p in range(PARTITIONS)]
    try:
        runner.source.applied.update(await runner._load(keys.TOPIC_EVENTS, list(range(PARTITIONS))))
        for poll in polls[:5]:
            await runner._apply(poll)
            await runner._land()
        poll = next(p for p in polls[5:] if len(p) == PARTITIONS)
        revoked, reads = min(poll), {"facts": 0, "groups": 0}
        read_facts, read_groups = runner.store.read_facts, runner.store.read_groups

        async def facts_then_revoke(partition: int, contacts: list[str], now_ms: int) -> Any:
            reads["facts"] += 1
            runner.state.drop(revoked)  # what the rebalance's on_revoked does
            return await read_facts(partition, contacts, now_ms)

        async def groups_then_revoke(groups: list[str]) -> Any:
            reads["groups"] += 1
            runner.state.drop(revoked)
            return await read_groups(groups)

        runner.store.read_facts = facts_then_revoke  # type: ignore[method-assign]
        runner.store.read_groups = groups_then_revoke  # type: ignore[method-assign]
        before = await redis.mget(offset_keys)
        await runner._apply(poll)
        await runner._land()
        assert reads["facts"] + reads["groups"] > 0  # the plan did read Redis
        after = await redis.mget(offset_keys)
        assert after[revoked] == before[revoked]  # nothing of the revoked partition applied
        assert all(after[p] != before[p] for p in poll if p != revoked)
    finally:
        await runner.source.stop()
        await runner.dead.stop()
        await redis.aclose()


def _about_one_group(partition: int, offset: int, contact: str, minute: int) -> engine.Decoded:
    """A contact of one customer about billing, offered and resolved: one poll of `partition`."""
    at = NOW_S - 3600 + minute * 60
    common = {"contact": contact, "customer": "one-customer", "issue": "billing"}
    rows = [
        {"id": f"{contact}-o", "type": "contact.offered", "channel": "voice", **common},
        {"id": f"{contact}-r", "type": "contact.resolved", **common},
    ]
    values = [
        json.dumps({**row, "time": iso_at(at + 30 * n)}).encode() for n, row in enumerate(rows)
    ]
    return engine.decode(partition, [(offset + n, v) for n, v in enumerate(values)])


def iso_at(at_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at_s))


@dataclass
class TwoAggregators:
    """What `_one_then_two` saw: Redis after one aggregator and after two, and the two's steps."""

    want: dict[str, Any]
    got: dict[str, Any]
    landed: list[bool]  # A's and B's `_land` after each poll: False after a group retry
    plans: int  # whole plans made (`engine.plan` calls) by A and B
    conflicts: float  # A's ccpulse_aggregator_instance_group_conflicts_total
    cached_by_one: int  # groups the lone aggregator kept in its cache
    members: list[str]  # the shared group's contacts after the two


async def _one_then_two(url: str, known_partitions: int, monkeypatch: Any) -> TwoAggregators:
    """A contact of one customer on partition 0 (aggregator A), one on partition 1 (B), then
    another on 0: first one aggregator owning every partition applies the three polls, then A
    and B, each told the partition count is `known_partitions` (as `check_partitions` does)."""
    polls = [
        (0, {0: _about_one_group(0, 0, "ga1", 1)}),
        (1, {1: _about_one_group(1, 0, "gb1", 2)}),
        (0, {0: _about_one_group(0, 2, "ga2", 3)}),
    ]
    settings = Settings(redis_url=url, fcr_measured=True, auth="off")
    redis = Redis.from_url(url)
    runners: list[Runner] = []

    async def runner_of(partitions: list[int]) -> Runner:
        runner = Runner(settings, redis, clock=ManualClock(NOW_S))
        runner.store.partitions = known_partitions
        runner.source.applied.update(await runner._load(keys.TOPIC_EVENTS, partitions))
        runners.append(runner)
        return runner

    try:
        await redis.flushall()
        one = await runner_of(list(range(PARTITIONS)))
        for _, poll in polls:
            await one._apply(poll)
            assert await one._land()  # one aggregator: no conflict
        want = await snapshot(redis)

        await redis.flushall()
        a, b = await runner_of([0]), await runner_of([1])
        plans = 0
        whole = engine.plan

        def counted(*args: Any, **kwargs: Any) -> engine.Plan:
            nonlocal plans
            plans += 1
            return whole(*args, **kwargs)

        monkeypatch.setattr(engine, "plan", counted)
        landed = []
        for owner, poll in polls:
            runner = a if owner == 0 else b
            await runner._apply(poll)
            landed.append(await runner._land())
        group = await redis.hgetall(
            keys.group_key(f"one-customer{keys.SEP}billing", a.store.partitions)
        )
        conflicts = a.metrics.registry.get_sample_value(
            "ccpulse_aggregator_instance_group_conflicts_total"
        )
        return TwoAggregators(
            want,
            await snapshot(redis),
            landed,
            plans,
            conflicts or 0.0,
            len(one.groups),
            sorted(json.loads(group[b"m"])),
        )
    finally:
        for runner in runners:
            await runner.source.stop()
            await runner.dead.stop()
        await redis.aclose()


async def test_a_group_conflict_between_two_aggregators_plans_only_the_groups_again(
    clean_redis: EmbeddedRedis, monkeypatch: Any
) -> None:
    """A believes it owns every partition (the count it knows is 1, as a zombie's can be), so
    it caches the group it wrote; B writes it after; A's next step is refused on the group's
    version, counted on A's /metrics, and retried with the group read again. Only the groups'
    part is planned again (the fold and contributions do not depend on them), and Redis ends as
    one aggregator applying the same polls in the same order leaves it, key by key."""
    seen = await _one_then_two(clean_redis.url, 1, monkeypatch)
    assert seen.landed == [True, True, False]  # A's last step met B's write: one retry
    assert seen.conflicts == 1
    assert seen.plans == 3  # the retry planned the groups only
    same(seen.got, seen.want, drift_s=5)
    assert seen.members == ["ga1", "ga2", "gb1"]


async def test_an_aggregator_sharing_the_partitions_reads_groups_instead_of_caching_them(
    clean_redis: EmbeddedRedis, monkeypatch: Any
) -> None:
    """Told the real partition count, A owns one of three: it keeps no group cache, so its
    last step plans on the version B wrote and lands without a conflict (a cached version
    was stale for exactly such shared groups: half of two aggregators' steps were refused).
    The lone aggregator owning all three still caches. Redis ends as one aggregator leaves it."""
    seen = await _one_then_two(clean_redis.url, PARTITIONS, monkeypatch)
    assert seen.cached_by_one > 0
    assert seen.landed == [True, True, True]
    assert seen.conflicts == 0
    assert seen.plans == 3
    same(seen.got, seen.want, drift_s=5)
    assert seen.members == ["ga1", "ga2", "gb1"]
