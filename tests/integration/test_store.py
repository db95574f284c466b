"""The store's atomic step against a real Redis, in process: offsets, state, keys, clock, memory.

Each test builds its events around a fixed instant handed to the store (the store reads no
clock), so they pass at any wall-clock time.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from redis.asyncio import Redis, RedisCluster

from aggregator import contributions, engine, repeats
from aggregator.repeats import GroupSheet
from aggregator.state import OwnedState, decode_facts
from aggregator.store import APPLIED, GROUP_CONFLICT, OFFSET_CONFLICT, KeyList, Step, Store
from services import keys, kpis
from simulator.scenario import iso
from tests.stackfixtures import redis_single_and_cluster  # noqa: F401 (fixture `redis`)

NOW_S = 1_893_456_000.0  # 2030-01-01T00:00:00Z: the store must use this, not the wall clock
TOPIC = keys.TOPIC_EVENTS
FACTS_TTL_S = 3600


def event(n: int, contact: str, kind: str, at_s: float, **extra: Any) -> dict[str, Any]:
    return {"id": f"e{n}", "type": kind, "time": iso(at_s), "contact": contact, **extra}


def step(
    events: list[dict[str, Any]],
    expected: int,
    partition: int = 3,
    state: OwnedState | None = None,
    groups: dict[str, GroupSheet | None] | None = None,
) -> Step:
    records = [engine.Record(partition, i, json.dumps(e).encode()) for i, e in enumerate(events)]
    parsed, dead = engine.screen(records, NOW_S, 48 * 3600)
    assert not dead
    old: dict[str, Any] = {}
    if state is not None:
        old, cold = state.facts(partition, engine.contacts_of(parsed), int(NOW_S * 1000))
        assert not cold
    plan = engine.plan(parsed, old, {}, groups or {})
    last = expected + len(events)
    plan.groups = repeats.unapplied(plan.groups, groups or {}, partition, last)  # as the runner
    return Step(TOPIC, partition, expected, last, plan, groups or {})


def offered(n: int, contact: str, at_s: float = NOW_S - 120) -> dict[str, Any]:
    return event(n, contact, "contact.offered", at_s, channel="chat", queue="sales")


async def test_a_step_writes_state_offset_and_counters_and_loads_back(redis: Redis) -> None:
    store = Store(redis, FACTS_TTL_S, 48 * 3600)
    first = step([offered(1, "c1"), offered(2, "c2")], expected=-1)
    (outcome,) = await store.apply([first], NOW_S)
    assert outcome.code == APPLIED
    loaded = await store.load_partition(TOPIC, 3)
    assert loaded.offset == 1
    assert decode_facts(loaded.facts[b"c1"]).offered_ms == int((NOW_S - 120) * 1000)
    assert [(m, s) for m, s in loaded.expiry] == [
        (b"c1", (NOW_S + FACTS_TTL_S) * 1000),
        (b"c2", (NOW_S + FACTS_TTL_S) * 1000),
    ]  # expiry from the injected clock, not Redis's or the wall clock
    minute = keys.bucket_start_s(NOW_S - 120, "m")
    counter = await redis.hgetall(keys.partition_counter_key(3, "m", minute))
    assert counter[keys.counter_field(keys.channel_scope("chat"), "offered").encode()] == b"2"
    assert await store.load_offsets(TOPIC, [3, 4]) == {3: 1, 4: -1}


async def test_a_counter_hash_new_to_a_step_is_written_whole_and_an_existing_one_added_to(
    redis: Redis,
) -> None:
    """counter_write.lua: a hash that does not exist gets the step's deltas in one HSET; one
    that exists (an earlier step's, or a group shard's fields on a cluster) is added to, field
    by field, keeping what it holds. Deltas near 2^53 pass both ways exactly."""
    store = Store(redis, FACTS_TTL_S, 48 * 3600)
    minute = keys.bucket_start_s(NOW_S - 120, "m")
    fresh, held = minute - 60, minute
    scope = keys.channel_scope("chat")
    big = 2**53 - 1
    held_key = keys.partition_counter_key(3, "m", held)
    await redis.hset(held_key, keys.counter_field(scope, kpis.FCR_MET), 5)  # another writer's
    await redis.hset(held_key, keys.counter_field(scope, "offered"), 7)

    def deltas(offered: int) -> engine.Plan:
        return engine.Plan(
            deltas={
                (fresh, scope): {"offered": offered, "handled": big},
                (held, scope): {"offered": offered},
            }
        )

    first = Step(TOPIC, 3, -1, 0, deltas(2))
    second = Step(TOPIC, 3, 0, 1, deltas(3))
    assert [o.code for o in await store.apply([first], NOW_S)] == [APPLIED]
    assert [o.code for o in await store.apply([second], NOW_S)] == [APPLIED]
    new = await redis.hgetall(keys.partition_counter_key(3, "m", fresh))
    assert new == {
        keys.counter_field(scope, "offered").encode(): b"5",
        keys.counter_field(scope, "handled").encode(): str(2 * big).encode(),
    }
    old = await redis.hgetall(held_key)
    assert old == {
        keys.counter_field(scope, kpis.FCR_MET).encode(): b"5",
        keys.counter_field(scope, "offered").encode(): b"12",
    }


async def test_a_step_planned_from_a_stale_offset_is_refused_whole(redis: Redis) -> None:
    """A consumer that lost its partition, or a replay, can never apply twice."""
    store = Store(redis, FACTS_TTL_S, 48 * 3600)
    batch = step([offered(1, "c1")], expected=-1)
    assert (await store.apply([batch], NOW_S))[0].code == APPLIED
    before = {k: await redis.dump(k) for k in await redis.keys("*") if b"stats" not in k}
    again = await store.apply([batch], NOW_S)
    assert again[0].code == OFFSET_CONFLICT
    assert again[0].key == keys.partition_offset_key(TOPIC, 3) and again[0].stored == "0"
    after = {k: await redis.dump(k) for k in await redis.keys("*") if b"stats" not in k}
    assert after == before


def group_store(redis: Redis) -> Store:
    """A store sharding groups over 8 partitions, one group script per shard on a cluster."""
    store = Store(redis, FACTS_TTL_S, 48 * 3600, cluster=isinstance(redis, RedisCluster))
    store.partitions = 8
    return store


def resolved_about(n: int, contact: str, customer: str, issue: str) -> dict[str, Any]:
    return event(n, contact, "contact.resolved", NOW_S - 60, customer=customer, issue=issue)


async def test_a_group_changed_since_it_was_read_refuses_the_step(redis: Redis) -> None:
    store = group_store(redis)
    group = f"cust{keys.SEP}billing"
    await redis.hset(keys.group_key(group, 8), mapping={"v": "4", "m": "{}"})
    resolved = resolved_about(2, "c1", "cust", "billing")
    stale = step([offered(1, "c1", NOW_S - 90), resolved], -1, groups={group: GroupSheet(3)})
    (outcome,) = await store.apply([stale], NOW_S)
    assert outcome.code == GROUP_CONFLICT and outcome.stored == "4"
    assert await store.load_offsets(TOPIC, [3]) == {3: -1}
    assert not await redis.exists(keys.partition_facts_key(3))


async def test_groups_apply_in_their_shards_before_the_step(redis: Redis) -> None:
    """On a cluster each group and the FCR counters it changes live in its shard's slot (not
    the step's partition), with the shard's version moved, one script per shard, then the
    partition's own step. On a single Redis they are all in the partition's one step."""
    cluster = isinstance(redis, RedisCluster)
    store = group_store(redis)
    customers = [f"cust{n}" for n in range(12)]
    shards = {keys.group_shard(f"{c}{keys.SEP}billing", 8) for c in customers}
    assert len(shards) > 2  # the batch spans several shards
    events = []
    for n, customer in enumerate(customers):
        events += [
            offered(2 * n, f"c{n}", NOW_S - 90),
            resolved_about(2 * n + 1, f"c{n}", customer, "billing"),
        ]
    batch = step(events, -1, groups={})
    assert len(batch.plan.groups) == 12
    assert len(store.group_payloads(batch, NOW_S)) == len(shards)  # the cluster's scripts
    _, payload, _ = store.payload(batch, NOW_S)
    assert len(payload.groups) == (0 if cluster else 12)  # a single Redis: in the step
    (outcome,) = await store.apply([batch], NOW_S)
    assert outcome.code == APPLIED
    minute = keys.bucket_start_s(NOW_S - 60, "m")
    met = keys.counter_field(keys.channel_scope("chat"), kpis.FCR_MET)
    total = 0
    for shard in range(8):
        counter = await redis.hgetall(keys.partition_counter_key(shard, "m", minute))
        total += int(counter.get(met.encode(), 0))
        if cluster and shard in shards:
            assert await redis.get(keys.partition_group_version_key(shard)) == b"1"
            assert counter[met.encode()]  # the shard's own hash holds its groups' counts
        elif not cluster:
            assert not await redis.exists(keys.partition_group_version_key(shard))
            assert bool(counter.get(met.encode())) == (shard == 3)  # the step's partition
    assert total == 12
    sheet = await redis.hgetall(keys.group_key(f"cust0{keys.SEP}billing", 8))
    assert json.loads(sheet[b"s"]) == {"3": batch.last}  # written by this batch of partition 3
    assert await store.load_offsets(TOPIC, [3]) == {3: batch.last}


async def test_a_conflict_in_one_shard_sends_no_step_and_a_retry_finds_the_rest_applied(
    redis: Redis,
) -> None:
    store = group_store(redis)
    a, b = f"ann{keys.SEP}billing", ""
    for n in range(100):  # a customer whose group is in another shard than ann's
        b = f"bob{n}{keys.SEP}billing"
        if keys.group_shard(b, 8) != keys.group_shard(a, 8):
            break
    await redis.hset(keys.group_key(b, 8), mapping={"v": "7", "m": "{}"})
    events = [
        offered(1, "c1", NOW_S - 90),
        resolved_about(2, "c1", "ann", "billing"),
        offered(3, "c2", NOW_S - 90),
        resolved_about(4, "c2", b.split(keys.SEP)[0], "billing"),
    ]
    batch = step(events, -1, groups={a: None, b: GroupSheet(6)})
    (outcome,) = await store.apply([batch], NOW_S)
    assert outcome.code == GROUP_CONFLICT
    assert await store.load_offsets(TOPIC, [3]) == {3: -1}  # the step was not sent
    applied = await store.read_groups([a, b])
    if isinstance(redis, RedisCluster):  # ann's shard applied in its own script
        sheet = applied[a]
        assert sheet is not None and sheet.applied(3, batch.last)
    else:  # one script for the batch: nothing of it applied
        assert applied[a] is None
    assert applied[b] is not None and applied[b].version == 7


async def test_every_key_a_step_writes_is_declared_in_keys(redis: Redis) -> None:
    """What Redis Cluster needs: the script computes no key name."""
    store = Store(redis, FACTS_TTL_S, 48 * 3600)
    events = [
        offered(1, "c1"),
        event(2, "c1", "contact.queued", NOW_S - 110, queue="sales"),
        event(3, "c1", "contact.answered", NOW_S - 100, agent="ann", queue="sales"),
        {
            "id": "e4",
            "type": "agent.state",
            "time": iso(NOW_S - 100),
            "agent": "ann",
            "state": "on_contact",
        },
    ]
    batch = step(events, expected=-1)
    names, _, _ = store.payload(batch, NOW_S)
    assert (await store.apply([batch], NOW_S))[0].code == APPLIED
    written = {_text(k) for k in await redis.keys("*")}
    assert written and written <= set(names)
    assert all(keys.partition_tag(3) in name for name in names)
    assert KeyList(TOPIC, 3).names[4:] == [
        keys.partition_stats_key(3),
        keys.partition_scopes_key(3),
        keys.partition_dirty_key(3),
    ]


async def test_expired_sheets_are_pruned_by_the_clock_handed_in(redis: Redis) -> None:
    store = Store(redis, FACTS_TTL_S, 48 * 3600)
    assert (await store.apply([step([offered(1, "old")], -1)], NOW_S))[0].code == APPLIED
    later = NOW_S + FACTS_TTL_S + 1
    fresh = engine.screen(
        [engine.Record(3, 1, json.dumps(offered(2, "new", later)).encode())], later, 48 * 3600
    )[0]
    plan = engine.plan(fresh, {}, {})
    assert (await store.apply([Step(TOPIC, 3, 0, 1, plan)], later))[0].code == APPLIED
    assert await redis.hkeys(keys.partition_facts_key(3)) == [b"new"]
    assert await redis.zrange(keys.partition_facts_expiry_key(3), 0, -1) == [b"new"]


async def test_evicted_sheets_stay_in_redis_and_are_read_back(redis: Redis) -> None:
    store = Store(redis, FACTS_TTL_S, 48 * 3600)
    state = OwnedState(max_sheets=2)
    state.load(3, await store.load_partition(TOPIC, 3))
    for n, contact in enumerate(("a", "b", "c")):
        batch = step([offered(n, contact)], expected=n - 1, state=state)
        assert (await store.apply([batch], NOW_S))[0].code == APPLIED
        state.commit(3, batch.plan.facts, store.facts_expiry_ms(NOW_S), batch.plan.agents)
    assert state.size == 2
    found, cold = state.facts(3, ["a", "b", "c", "d"], int(NOW_S * 1000))
    assert cold == ["a"] and set(found) == {"b", "c", "d"} and found["d"] is None
    (value,) = await store.read_facts(3, cold, int(NOW_S * 1000))
    assert value is not None and decode_facts(value).contact == "a"
    expired = int(NOW_S * 1000) + FACTS_TTL_S * 1000 + 1
    assert await store.read_facts(3, ["a", "zz"], expired) == [None, None]  # as if never seen
    reloaded = OwnedState(max_sheets=2)
    reloaded.load(3, await store.load_partition(TOPIC, 3))
    assert list(reloaded.partitions[3].hot) == ["b", "c"]
    never = [f"never-{n}" for n in range(400)]
    _, cold = reloaded.facts(3, ["a", "b", *never], int(NOW_S * 1000))
    assert cold[0] == "a" and "b" not in cold
    assert len(cold) < 1 + 40  # contacts never seen are not read back (1 % false positives)
    _, cold = reloaded.facts(3, ["a"], int(NOW_S * 1000) + FACTS_TTL_S * 1000 + 1)
    assert cold == []  # once every sheet of the index has expired, nothing is read back


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def test_read_groups_is_one_hmget_per_group(redis: Redis) -> None:
    """The read script (one call per shard on a cluster) gives what an HMGET of each group's
    hash gives, decoded, in the order asked: absent groups and fields included."""
    store = group_store(redis)
    groups = [f"cust{n}{keys.SEP}issue{n % 3}" for n in range(24)]
    for n, group in enumerate(groups[:16]):
        sheet = GroupSheet(n + 1, {f"c{n}": (1_000 + n, None if n % 2 else 2_000, "chat", None)})
        sheet.seen = {n % 4: 10 * n} if n % 5 else {}
        fields = {"v": str(sheet.version), "m": orjson.dumps(sheet.members)}
        if n % 3:
            fields["s"] = orjson.dumps(sheet.seen_json())
        await redis.hset(keys.group_key(group, 8), mapping=fields)
    await redis.hset(keys.group_key(groups[16], 8), mapping={"m": "{}"})  # no version: no sheet
    asked = groups[::-1]
    read = await store.read_groups(asked)
    assert list(read) == asked
    for group in asked:
        version, members, seen = await redis.hmget(keys.group_key(group, 8), ["v", "m", "s"])
        plain = None
        if version is not None:
            data = {"v": int(version), "m": orjson.loads(members or b"{}")}
            plain = GroupSheet.from_json({**data, "s": orjson.loads(seen or b"{}")})
        got = read[group]
        assert (got is None) == (plain is None)
        if got is not None and plain is not None:
            assert (got.version, got.members, got.seen) == (
                plain.version,
                plain.members,
                plain.seen,
            )
    assert await store.read_groups([]) == {}


async def test_sheets_and_slices_are_stored_as_their_json_text(redis: Redis) -> None:
    """apply.lua cuts each sheet and slice out of ARGV[2] by its length in bytes: every one
    stored whole, in its contact's or agent's field, multi-byte names included; each contact
    marked with the step's offset and expiry."""
    store = Store(redis, FACTS_TTL_S, 48 * 3600)
    events = [offered(n, f"c{n}") for n in range(5)]
    events += [
        event(5, "c1", "contact.queued", NOW_S - 110, queue="ventas-españa"),
        event(6, "c2", "contact.answered", NOW_S - 100, agent="zoë", queue="sales"),
        {"id": "e7", "type": "agent.state", "time": iso(NOW_S - 90), "agent": "zoë"}
        | {"state": "not_ready", "reason": "café"},
        {"id": "e8", "type": "agent.state", "time": iso(NOW_S - 90), "agent": "ann"}
        | {"state": "available"},
    ]
    batch = step(events, expected=-1)
    assert (await store.apply([batch], NOW_S))[0].code == APPLIED
    sheets = await redis.hgetall(keys.partition_facts_key(3))
    stored = {contact: orjson.loads(text) for contact, text in sheets.items()}
    assert stored == {c.encode(): s.to_json() for c, s in batch.plan.facts.items()}
    assert b"espa\xc3\xb1a" in sheets[b"c1"] and len(sheets) == 5
    slices = await redis.hgetall(keys.partition_agents_key(3))
    assert slices == {a.encode(): orjson.dumps(s.to_json()) for a, s in batch.plan.agents.items()}
    assert set(slices) == {"zoë".encode(), b"ann"}
    expiry = await redis.zrange(keys.partition_facts_expiry_key(3), 0, -1, withscores=True)
    assert expiry == [(f"c{n}".encode(), store.facts_expiry_ms(NOW_S)) for n in range(5)]
    marks = await redis.zrange(keys.partition_contacts_dirty_key(3), 0, -1, withscores=True)
    assert marks == [(f"c{n}".encode(), batch.last) for n in range(5)]


async def test_an_agents_changes_in_a_step_are_logged_together(redis: Redis) -> None:
    """apply.lua adds each agent's changes of a step in one ZADD, then trims, expires and
    versions its log once: every change logged at its time, the version the step's."""
    store = Store(redis, FACTS_TTL_S, 48 * 3600)
    changes = [("ann", "available", 100), ("bo", "available", 95), ("ann", "on_contact", 80)]
    changes += [("ann", "wrap_up", 60)]
    events = [
        {"id": f"e{n}", "type": "agent.state", "time": iso(NOW_S - ago), "agent": agent}
        | {"state": state}
        for n, (agent, state, ago) in enumerate(changes)
    ]
    batch = step(events, expected=-1)
    assert (await store.apply([batch], NOW_S))[0].code == APPLIED
    for agent in ("ann", "bo"):
        log = keys.partition_agent_log_key(3, agent)
        want = [
            (f"e{n}|{state}".encode(), float(int((NOW_S - ago) * 1000)))
            for n, (name, state, ago) in enumerate(changes)
            if name == agent
        ]
        assert await redis.zrange(log, 0, -1, withscores=True) == sorted(want, key=lambda e: e[1])
        assert 0 < await redis.ttl(log) <= keys.AGENT_LOG_KEEP_S
        version = keys.partition_agent_log_version_key(3, agent)
        assert (await redis.get(version)).endswith(f":{batch.last}".encode())
        assert 0 < await redis.ttl(version) <= keys.AGENT_LOG_KEEP_S


async def test_gauge_sets_hold_each_contact_where_its_sheet_stands(redis: Redis) -> None:
    """apply.lua's one ZREM and one ZADD per gauge set: after each step every contact is in the
    waiting and open sets of its scopes, scored since when, and in no other."""
    store = Store(redis, FACTS_TTL_S, 48 * 3600)
    state = OwnedState(max_sheets=100)
    state.load(3, await store.load_partition(TOPIC, 3))
    queued = [
        event(10 + n, f"c{n}", "contact.queued", NOW_S - 110, queue="sales") for n in range(3)
    ]
    batches = [
        [offered(n, f"c{n}") for n in range(3)] + queued,
        [
            event(20, "c0", "contact.answered", NOW_S - 100, agent="ann", queue="sales"),
            event(21, "c1", "contact.abandoned", NOW_S - 100),
            event(22, "c2", "contact.answered", NOW_S - 100, agent="bo", queue="sales"),
        ],
        [event(30, "c0", "contact.completed", NOW_S - 50)],
    ]
    expected, sheets = -1, {}
    for events in batches:
        batch = step(events, expected, state=state)
        assert (await store.apply([batch], NOW_S))[0].code == APPLIED
        state.commit(3, batch.plan.facts, store.facts_expiry_ms(NOW_S), batch.plan.agents)
        expected, sheets = batch.last, {**sheets, **batch.plan.facts}
        want: dict[str, dict[bytes, float]] = {}
        for contact, sheet in sheets.items():
            now = contributions.gauges(sheet)
            for scope in now.scopes:
                for name, since in (
                    (keys.partition_waiting_key(3, scope), now.waiting_since_ms),
                    (keys.partition_active_key(3, scope), now.active_since_ms),
                ):
                    if since is not None:
                        want.setdefault(name, {})[contact.encode()] = float(since)
        got = {}
        for name in await redis.keys(keys.partition_waiting_key(3, "*")) + await redis.keys(
            keys.partition_active_key(3, "*")
        ):
            got[_text(name)] = dict(await redis.zrange(name, 0, -1, withscores=True))
        assert got == want
    assert want and not any(b"c0" in members for members in want.values())  # completed: gone
