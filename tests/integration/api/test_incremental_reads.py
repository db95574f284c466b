"""Reads of partition state written by the aggregator's own step, in a real Redis (single and
cluster): named windows' counters and agents' logs are re-read only where a step changed them
(api/window_sums.py, api/log_cache.py), documents are shared by requests of the same state
(api/shared_reads.py), and every figure equals the same read from scratch.

Data is built around the injected clock, inside today's local day, so the tests pass at any
instant."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from redis.asyncio import Redis

from aggregator import engine
from aggregator.store import APPLIED, Step, Store
from api.live_reader import LiveReader, Window, buckets, by_scope, resolve_window, sum_fields
from api.metrics import render
from api.snapshot import shared_build
from ccpulse.stack import EmbeddedRedis
from services import keys
from services.settings import Settings
from simulator.scenario import iso
from tests.clock import clock
from tests.stackfixtures import redis_single_and_cluster  # noqa: F401 (fixture `redis`)

PARTITIONS = 4
SETTINGS = Settings(auth="off")


class Writer:
    """Steps as the aggregator applies them, one partition's offsets after another."""

    def __init__(self, redis: Redis, now_s: float, topic: str = keys.TOPIC_EVENTS) -> None:
        self.store = Store(redis, 3600, 48 * 3600)
        self.now_s = now_s
        self.topic = topic
        self.offsets = {p: -1 for p in range(PARTITIONS)}
        self.n = 0

    async def apply(self, partition: int, events: list[dict[str, Any]]) -> None:
        records = [
            engine.Record(partition, i, json.dumps(e).encode()) for i, e in enumerate(events)
        ]
        parsed, dead = engine.screen(records, self.now_s, 48 * 3600)
        assert not dead
        plan = engine.plan(parsed, {}, {})
        expected = self.offsets[partition]
        last = expected + len(events)
        step = Step(self.topic, partition, expected, last, plan)
        assert (await self.store.apply([step], self.now_s))[0].code == APPLIED
        self.offsets[partition] = last

    def offered(self, at_s: float, agent: str = "ann") -> list[dict[str, Any]]:
        self.n += 1
        contact, n = f"c{self.n}", self.n * 10
        base = {"contact": contact, "channel": "voice", "queue": "sales"}
        return [
            {"id": f"e{n}", "type": "contact.offered", "time": iso(at_s), **base},
            {"id": f"e{n + 1}", "type": "contact.answered", "time": iso(at_s + 5), **base}
            | {"agent": agent},
            {"id": f"e{n + 2}", "type": "agent.state", "time": iso(at_s + 5), "agent": agent}
            | {"state": "on_contact"},
        ]


def instants(now_s: float) -> list[float]:
    """Times inside today's local day and before now: earlier hours and this minute's edge."""
    today = resolve_window("today", now_s, SETTINGS)
    first = float(today.start_s)
    span = max(0.0, now_s - 30 - first)
    return sorted({first + span * f for f in (0.0, 0.3, 0.7, 1.0)})


async def fill(redis: Redis, now_s: float, topic: str = keys.TOPIC_EVENTS) -> Writer:
    await redis.set(keys.PARTITIONS, PARTITIONS)
    writer = Writer(redis, now_s, topic)
    for p in range(PARTITIONS):
        for at in instants(now_s):
            await writer.apply(p, writer.offered(at, agent=f"a{p % 2}"))
    return writer


async def from_scratch(redis: Redis, window: Window, scopes: list[str]) -> dict[str, Any]:
    """Every bucket of every partition read and summed anew."""
    rows = []
    for p in range(PARTITIONS):
        for res, start in buckets(window.start_s, window.end_s):
            row = await redis.hgetall(keys.partition_counter_key(p, res, start))
            rows.append([v for pair in row.items() for v in pair])
    return by_scope(sum_fields(rows), scopes)


async def test_named_windows_equal_their_buckets_summed_anew_after_every_step(
    redis: Redis,
) -> None:
    now = clock.now()
    writer = await fill(redis, now)
    reader = LiveReader(redis, SETTINGS)
    scopes = await reader.active_scopes(int(now) - 86400)
    assert "q|voice|sales" in scopes
    for name in ("15m", "today", "24h"):
        window = resolve_window(name, now, SETTINGS)
        assert await reader.counters(scopes, window) == await from_scratch(redis, window, scopes)
    for p, at in ((1, instants(now)[0]), (2, now - 20), (1, now - 20)):  # a late event, then now
        await writer.apply(p, writer.offered(at))
        for name in ("15m", "today", "24h"):
            window = resolve_window(name, now, SETTINGS)
            summed = await reader.counters(scopes, window)
            assert summed == await from_scratch(redis, window, scopes), (name, p, at)
    cold = LiveReader(redis, SETTINGS)
    today = resolve_window("today", now, SETTINGS)
    assert await cold.counters(scopes, today) == await reader.counters(scopes, today)


async def test_agent_states_and_logs_equal_a_cold_read_after_every_step(redis: Redis) -> None:
    now = clock.now()
    writer = await fill(redis, now)
    reader = LiveReader(redis, SETTINGS)
    for name in ("15m", "today"):
        window = resolve_window(name, now, SETTINGS)
        states = await reader.agent_states()
        start, end = window.start_s * 1000, int(now * 1000)
        for at in (now - 10, now - 8, now - 9, now - 6):  # the third comes late, between
            await writer.apply(0, writer.offered(at, agent="a0"))
            cold = LiveReader(redis, SETTINGS)
            assert await reader.agent_states() == await cold.agent_states()
            assert reader.agent_partitions == cold.agent_partitions
            logs = await reader.agent_logs(sorted(states), start, end)
            assert logs == await cold.agent_logs(sorted(states), start, end)
            assert int((at + 5) * 1000) in [ms for ms, _, _ in logs["a0"]]


def calls(info: dict[str, Any], command: str) -> int:
    return int(info.get(f"cmdstat_{command}", {}).get("calls", 0))


async def _reads_per_change(url: str) -> None:
    redis = Redis.from_url(url)
    try:
        now = clock.now()
        writer = await fill(redis, now)
        reader = LiveReader(redis, SETTINGS)
        scopes = await reader.active_scopes(int(now) - 86400)
        today = resolve_window("today", now, SETTINGS)
        cells = [
            (p, *cell) for p in range(PARTITIONS) for cell in buckets(today.start_s, today.end_s)
        ]

        async def hgetalls_of_a_read() -> int:
            before = calls(await redis.info("commandstats"), "hgetall")
            await reader.counters(scopes, today)
            return calls(await redis.info("commandstats"), "hgetall") - before

        there = int(await redis.exists(*[keys.partition_counter_key(*cell) for cell in cells]))
        assert there >= PARTITIONS * 2
        assert await hgetalls_of_a_read() == there  # the first read reads every bucket there is
        assert await hgetalls_of_a_read() == 0  # then none while no step changed one...
        one_minute = max(keys.bucket_start_s(now - 20, "m"), today.start_s)
        await writer.apply(3, writer.offered(one_minute))
        written = {(3, "m", one_minute), (3, "h", keys.bucket_start_s(one_minute, "h"))}
        changed = len(written & set(cells))  # the minute, and its hour if a whole hour is read
        assert changed >= 1
        assert await hgetalls_of_a_read() == changed  # ...and only those a step changed

        states = sorted(await reader.agent_states())
        start, end = today.start_s * 1000, int(now * 1000)

        async def logs_read_by_a_read() -> int:
            before = calls(await redis.info("commandstats"), "zrangebyscore")
            await reader.agent_logs(states, start, end)
            return calls(await redis.info("commandstats"), "zrangebyscore") - before

        logs = sum(len(reader.agent_partitions[agent]) for agent in states)
        assert await logs_read_by_a_read() == logs  # each agent's log on each partition
        assert await logs_read_by_a_read() == 0
        await writer.apply(3, writer.offered(now - 15, agent="a1"))
        assert await logs_read_by_a_read() == 1
    finally:
        await redis.aclose()


def test_a_read_reads_only_the_buckets_and_logs_steps_changed(clean_redis: EmbeddedRedis) -> None:
    """Commands a read costs do not grow with the minutes of the day: after the first read, a
    window re-reads only the buckets a step changed, the agents only the logs a step changed."""
    asyncio.run(_reads_per_change(clean_redis.url))


@pytest.mark.parametrize("prefix", ["", "site2."])
async def test_concurrent_reads_of_one_state_share_one_document(redis: Redis, prefix: str) -> None:
    """Shared while no step was applied, with or without an installation's topic prefix (the
    offsets' keys name the topic)."""
    now = clock.now()
    settings = Settings(auth="off", kafka_topic_prefix=prefix)
    writer = await fill(redis, now, settings.topic(keys.TOPIC_EVENTS))
    reader = LiveReader(redis, settings)
    window = resolve_window("15m", now, SETTINGS)
    docs = await asyncio.gather(*(shared_build(reader, window, now) for _ in range(5)))
    assert reader.shared.computed == 1 and all(doc is docs[0] for doc in docs)
    assert await shared_build(reader, window, now + 0.4) is docs[0]  # same state, same tick
    offered = docs[0]["channels"]["voice"]["offered"]
    await writer.apply(2, writer.offered(now - 20))
    after = await shared_build(reader, window, now + 0.4)  # a step applied: computed anew
    assert reader.shared.computed == 2
    assert after["channels"]["voice"]["offered"] == offered + 1
    later = await shared_build(reader, window, now + 2.5)  # same state, two ticks later
    assert reader.shared.computed == 3 and later["as_of"] != after["as_of"]


async def test_state_without_epochs_is_never_shared(redis: Redis) -> None:
    """Counters written by something other than the aggregator's step (no epoch, no versions)
    are read anew every time."""
    now = clock.now()
    await redis.set(keys.PARTITIONS, 1)
    minute = keys.bucket_start_s(now, "m")
    key = keys.partition_counter_key(0, "m", minute)
    await redis.zadd(keys.partition_scopes_key(0), {"ch|voice": minute})
    reader = LiveReader(redis, SETTINGS)
    window = resolve_window("15m", now, SETTINGS)
    for n in (1, 2):
        await redis.hset(key, keys.counter_field("ch|voice", "offered"), n)
        doc = await shared_build(reader, window, now)
        assert doc["channels"]["voice"]["offered"] == n
    assert reader.shared.computed == 2


async def test_metrics_share_the_today_documents_reading(redis: Redis) -> None:
    """`/metrics` is made from the reading the `today` document was made from (one read of the
    state for both), as of that reading's instant: the same exposition a reader of its own
    renders at that instant; a step applied makes both read again."""
    # `/metrics` resolves `today` at its own instant, and the window ends with the minute: the
    # instants below (up to now + 0.45 s) stay inside the clock's current minute, or a minute's
    # turn between them would rightly make two windows (CI met one).
    now = keys.bucket_start_s(clock.now(), "m") + 30.0
    writer = await fill(redis, now)
    reader = LiveReader(redis, SETTINGS)
    today = resolve_window("today", now, SETTINGS)
    doc = await shared_build(reader, today, now)
    exposition = await render(reader, now + 0.3)
    assert reader.readings.computed == 1  # one reading for the document and the scrape
    assert exposition == await render(LiveReader(redis, SETTINGS), now)  # as of its instant
    await writer.apply(1, writer.offered(now - 20))
    after = await render(reader, now + 0.4)
    assert reader.readings.computed == 2
    assert after == await render(LiveReader(redis, SETTINGS), now + 0.4)
    assert (await shared_build(reader, today, now + 0.45))["channels"]["voice"]["offered"] == (
        doc["channels"]["voice"]["offered"] + 1
    )
    assert reader.readings.computed == 2  # the document made from the scrape's reading


def waiting(writer: Writer, at_s: float, queue: str) -> list[dict[str, Any]]:
    """A contact offered and queued, not answered: waiting, and open."""
    writer.n += 1
    contact, n = f"w{writer.n}", writer.n * 10
    base = {"contact": contact, "channel": "voice", "queue": queue}
    return [
        {"id": f"e{n}", "type": "contact.offered", "time": iso(at_s), **base},
        {"id": f"e{n + 1}", "type": "contact.queued", "time": iso(at_s + 1), **base},
    ]


async def test_scopes_and_gauges_read_where_changed_equal_a_cold_read(redis: Redis) -> None:
    """Active scopes and gauges are asked again only of partitions whose version changed (or
    for an earlier start): after every step, the same as a reader that never read before."""
    now = clock.now()
    writer = await fill(redis, now)
    reader = LiveReader(redis, SETTINGS)

    async def same(since: int) -> None:
        cold = LiveReader(redis, SETTINGS)
        scopes = await reader.active_scopes(since)
        assert scopes == await cold.active_scopes(since)
        waiting_scopes = [s for s in scopes if not s.startswith("ag")]
        assert await reader.gauges(waiting_scopes, now) == await cold.gauges(waiting_scopes, now)

    first = int(instants(now)[0])
    await writer.apply(3, waiting(writer, first, "early"))  # a scope seen only at midnight
    later = first + 120
    await same(later)
    assert "q|voice|early" not in await reader.active_scopes(later) or later > now
    await same(int(now) - 86400)  # an earlier start: asked again
    assert "q|voice|early" in await reader.active_scopes(int(now) - 86400)
    await same(later)  # a later one: fewer scopes, from what is held
    steps = [(2, waiting(writer, now - 30, "support")), (0, waiting(writer, now - 25, "sales"))]
    steps += [(2, writer.offered(now - 20)), (1, waiting(writer, now - 15, "billing"))]
    for partition, events in steps:
        await writer.apply(partition, events)
        await same(int(now) - 86400)
        await same(keys.bucket_start_s(now - 30, "m"))  # the scopes of the latest contacts
    assert "q|voice|billing" in await reader.active_scopes(keys.bucket_start_s(now - 15, "m"))
    gauges = await reader.gauges(["q|voice|support", "q|voice|billing"], now)
    assert gauges["q|voice|support"]["in_queue"] == 1 and gauges["q|voice|billing"]["active"] == 1


async def test_logs_are_asked_only_of_partitions_a_step_changed(redis: Redis) -> None:
    """With the current time given, a partition without a step since its logs were read is not
    asked; its logs are as a cold read gives them after every step; a log that may have expired
    (its latest change older than the logs are kept, less a day) has its partition asked."""
    now = clock.now()
    writer = await fill(redis, now)
    reader = LiveReader(redis, SETTINGS)
    today = resolve_window("today", now, SETTINGS)
    start, end, now_ms = today.start_s * 1000, int(now * 1000), int(now * 1000)

    async def cold_logs() -> dict[str, Any]:
        cold = LiveReader(redis, SETTINGS)
        return await cold.agent_logs(sorted(await cold.agent_states()), start, end)

    async def logs(at_ms: int) -> dict[str, Any]:
        return await reader.agent_logs(sorted(await reader.agent_states()), start, end, at_ms)

    assert await logs(now_ms) == await cold_logs()
    for partition, agent in ((0, "a0"), (3, "a1"), (0, "a2")):
        await writer.apply(partition, writer.offered(now - 12, agent=agent))
        assert await logs(now_ms) == await cold_logs()
    held = await logs(now_ms)
    for p in range(PARTITIONS):  # as if every log had expired, without a step
        for agent in ("a0", "a1", "a2"):
            await redis.delete(keys.partition_agent_log_key(p, agent))
            await redis.delete(keys.partition_agent_log_version_key(p, agent))
    assert await logs(now_ms) == held  # no step: not asked (cannot have expired in a week)
    week = keys.AGENT_LOG_KEEP_S * 1000
    assert await logs(now_ms + week) == await cold_logs() != held  # may have: asked


async def test_concurrent_gauges_of_other_scopes_keep_to_their_own(redis: Redis) -> None:
    """Reads of different scopes at once (the alerts' and a document's) each get their own
    scopes' gauges, whichever of them replaces the partitions' held replies first."""
    now = clock.now()
    writer = await fill(redis, now)
    for partition, queue in ((0, "support"), (1, "billing"), (2, "support")):
        await writer.apply(partition, waiting(writer, now - 30, queue))
    reader = LiveReader(redis, SETTINGS)
    some = ["q|voice|support", "ch|voice"]
    other = ["q|voice|billing", "q|voice|sales", "q|voice|support"]
    for first, second in ((some, other), (other, some), (some, other)):
        await reader.gauges(first, now)
        await writer.apply(1, waiting(writer, now - 20, "billing"))
        got = await asyncio.gather(reader.gauges(first, now), reader.gauges(second, now))
        cold = LiveReader(redis, SETTINGS)
        assert got == [await cold.gauges(first, now), await cold.gauges(second, now)]


async def test_a_frames_today_counts_every_step_its_document_counts(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The document and today's totals are read side by side: a step that lands after today's
    read but before the document's must not leave today's behind the document."""
    from api import snapshot

    now = clock.now()
    writer = await fill(redis, now)
    reader = LiveReader(redis, SETTINGS)
    build = snapshot.shared_build

    async def late_step(*args: Any, **kwargs: Any) -> dict[str, Any]:
        await asyncio.sleep(0.2)  # today's totals are read meanwhile
        await writer.apply(3, writer.offered(now - 20))
        return await build(*args, **kwargs)

    monkeypatch.setattr(snapshot, "shared_build", late_step)
    before = (await snapshot.today_totals(reader, now))["channels"]["voice"]["offered"]
    frame = await snapshot.wallboard_frame(reader, now)
    assert frame["today"]["channels"]["voice"]["offered"] == before + 1
    cold = await snapshot.today_totals(LiveReader(redis, SETTINGS), now)
    assert frame["today"] == cold
