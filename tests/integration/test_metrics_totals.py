"""The monotonic `_total` counters of /metrics (aggregator/totals.py), written by the aggregator's
own path (engine.plan, then Store.apply's Lua step) into a real Redis, single and Cluster, and
read by the api's collector: a late correction lowers the day's gauge but never a counter; the
decrease is counted in `_corrected_total`; a replayed batch counts nothing; partitions add up.
"""

from __future__ import annotations

import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis, RedisCluster

from aggregator import engine
from aggregator.state import decode_facts
from aggregator.store import APPLIED, OFFSET_CONFLICT, Step, Store
from api.live_reader import LiveReader
from api.metrics import render
from services import keys
from services.settings import Settings
from simulator.scenario import iso
from tests.clock import clock
from tests.stackfixtures import redis_single_and_cluster  # noqa: F401 (fixture `redis`)

Samples = dict[tuple[str, str, str], float]  # (sample name, channel, queue) -> value
VOICE, SALES = ("voice", ""), ("voice", "sales")


def step(partition: int, expected: int, events: list[dict[str, Any]], now_s: float) -> Step:
    records = [
        engine.Record(partition, expected + 1 + i, json.dumps(e).encode())
        for i, e in enumerate(events)
    ]
    parsed, dead = engine.screen(records, now_s, 48 * 3600)
    assert not dead
    return Step(
        keys.TOPIC_EVENTS, partition, expected, expected + len(events), engine.plan(parsed, {}, {})
    )


def contact(contact: str, kind: str, at_s: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{contact}-{kind}",
        "type": f"contact.{kind}",
        "time": iso(at_s),
        "contact": contact,
        "channel": "voice",
        "queue": "sales",
        **extra,
    }


async def scrape(redis: Redis, now_s: float) -> Samples:
    settings = Settings(auth="off", redis_cluster=isinstance(redis, RedisCluster))
    text = (await render(LiveReader(redis, settings), now_s)).decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("ccpulse_contacts_") and "level" in s.labels:
                out[(s.name, s.labels["channel"], s.labels["queue"])] = s.value
    return out


def total(samples: Samples, name: str, scope: tuple[str, str] = VOICE) -> float:
    return samples[(f"ccpulse_contacts_{name}", *scope)]


async def test_a_correction_lowers_the_day_figure_never_the_counter(redis: Redis) -> None:
    now = clock.now()
    store = Store(redis, 3600, 48 * 3600)
    await redis.set(keys.PARTITIONS, 2)
    at = now - 120
    first = step(
        0,
        -1,
        [
            contact("c1", "offered", at),
            contact("c1", "abandoned", at + 20),
            contact("c2", "offered", at),
            contact("c2", "answered", at + 5, agent="ann"),
        ],
        now,
    )
    other = step(1, -1, [contact("c3", "offered", at + 1)], now)
    assert [o.code for o in await store.apply([first, other], now)] == [APPLIED, APPLIED]
    before = await scrape(redis, now)
    # the late answer of c1 (an answer wins over an abandon already counted); c1 is re-read
    state = await store.load_partition(keys.TOPIC_EVENTS, 0)
    old = {c.decode(): decode_facts(v) for c, v in state.facts.items()}
    records = [
        engine.Record(0, 4, json.dumps(contact("c1", "answered", at + 10, agent="bo")).encode())
    ]
    parsed, _ = engine.screen(records, now, 48 * 3600)
    late = Step(keys.TOPIC_EVENTS, 0, 3, 4, engine.plan(parsed, old, {}))
    assert [o.code for o in await store.apply([late], now)] == [APPLIED]
    after = await scrape(redis, now)
    assert [o.code for o in await store.apply([late], now)] == [OFFSET_CONFLICT]
    assert await scrape(redis, now) == after  # a replay counts nothing

    for scope in (VOICE, SALES):
        assert total(before, "offered_total", scope) == total(after, "offered_total", scope) == 3
        assert total(before, "answered_total", scope) == 1
        assert total(after, "answered_total", scope) == 2
        # the day's figure went down; the counter did not, the correction is counted apart
        assert before[("ccpulse_contacts_abandoned_today", *scope)] == 1
        assert (
            total(before, "abandoned_total", scope) == total(after, "abandoned_total", scope) == 1
        )
        assert total(before, "abandoned_corrected_total", scope) == 0
        assert total(after, "abandoned_corrected_total", scope) == 1
        net = total(after, "abandoned_total", scope) - total(
            after, "abandoned_corrected_total", scope
        )
        assert net == 0
        # created: when the scope was first counted (the store's clock), for new-series windows
        assert total(after, "offered_created", scope) == int(now * 1000) / 1000
    for name in ("offered", "answered", "abandoned"):
        for suffix in ("_total", "_corrected_total"):
            key = (f"ccpulse_contacts_{name}{suffix}", *VOICE)
            assert after[key] >= before[key], key


async def test_a_queue_quiet_today_keeps_its_counters(redis: Redis) -> None:
    """Its series must not vanish and come back: `increase()` misses a new series' first value."""
    now = clock.now()
    store = Store(redis, 3600, 48 * 3600)
    await redis.set(keys.PARTITIONS, 1)
    batch = step(0, -1, [contact("c1", "offered", now - 60)], now)
    assert [o.code for o in await store.apply([batch], now)] == [APPLIED]
    await redis.delete(keys.partition_scopes_key(0))  # no scope active today any more
    samples = await scrape(redis, now)
    assert total(samples, "offered_total", SALES) == total(samples, "offered_total", VOICE) == 1
    assert ("ccpulse_contacts_offered_today", *SALES) not in samples
