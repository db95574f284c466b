"""Contact rows against a real Redis and SQLite: steps applied by the aggregator's own plan and
apply path mark their contacts, the history writer rolls them into `contacts`, a sheet changed
while a pass ran keeps its mark, and the export returns the rows in CSV and NDJSON alike."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select

from aggregator import engine
from aggregator.contact_rows import SETTLE_S, prune
from aggregator.rollup import HistoryWriter
from aggregator.store import APPLIED, Step, Store
from api.contacts_export import EXPORT_COLUMNS
from ccpulse.stack import EmbeddedRedis
from services import database, intervals, keys
from services.settings import Settings
from simulator.scenario import iso
from tests.apiserver import ADMIN, VIEWER, api_settings, asgi_client, bearer
from tests.clock import clock

PARTITIONS = 2


class Applier:
    """Batches planned and applied exactly as the aggregator does, one offset after another."""

    def __init__(self, redis: Redis) -> None:
        self.store = Store(redis, 3600, 48 * 3600)
        self.offsets = {p: -1 for p in range(PARTITIONS)}
        self.sheets: dict[str, Any] = {}

    async def apply(self, partition: int, events: list[dict[str, Any]], now_s: float) -> None:
        first = self.offsets[partition] + 1
        records = [
            engine.Record(partition, first + i, json.dumps(e).encode())
            for i, e in enumerate(events)
        ]
        parsed, dead = engine.screen(records, now_s, 48 * 3600)
        assert not dead
        plan = engine.plan(parsed, dict(self.sheets), {}, {})
        self.sheets.update(plan.facts)
        last = first + len(events) - 1
        step = Step(keys.TOPIC_EVENTS, partition, self.offsets[partition], last, plan)
        (outcome,) = await self.store.apply([step], now_s)
        assert outcome.code == APPLIED, outcome
        self.offsets[partition] = last


def contact(cid: str, t: float, answered: bool) -> list[dict[str, Any]]:
    base = {"contact": cid}
    end = (
        {"type": "contact.answered", "agent": "ann"} if answered else {"type": "contact.abandoned"}
    )
    offer = {"type": "contact.offered", "channel": "voice", "queue": "sales"}
    return [
        {"id": f"{cid}-1", "time": iso(t), **offer, **base},
        {"id": f"{cid}-2", "type": "contact.queued", "time": iso(t + 2), **base},
        {"id": f"{cid}-3", "time": iso(t + 32), **end, **base},
    ]


async def rows(settings: Settings) -> dict[str, dict[str, Any]]:
    eng = database.make_engine(settings)
    try:
        async with eng.connect() as conn:
            found = (await conn.execute(select(intervals.contacts))).mappings().all()
    finally:
        await eng.dispose()
    return {r["contact"]: dict(r) for r in found}


async def test_rolled_rows_follow_the_latest_sheet(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    now = clock.now()
    redis = Redis.from_url(clean_redis.url)
    settings = api_settings(clean_redis.url, tmp_path)
    await database.upgrade_async(settings)
    eng = database.make_engine(settings)
    writer = HistoryWriter(settings, redis, eng)
    applier = Applier(redis)
    try:
        await redis.set(keys.PARTITIONS, PARTITIONS)
        await applier.apply(0, contact("a", now - 600, True), now)
        await applier.apply(1, contact("b", now - 500, False) + contact("c", now - 400, True), now)
        await writer.cycle(now)
        assert await rows(settings) == {}  # just touched: not settled yet
        await writer.cycle(now + SETTLE_S)
        got = await rows(settings)
        assert {c: r["outcome"] for c, r in got.items()} == {
            "a": "answered",
            "b": "abandoned",
            "c": "answered",
        }
        assert got["b"]["wait_ms"] == 30_000 and got["a"]["agent"] == "ann"
        for p in range(PARTITIONS):  # every mark was removed
            assert await redis.zcard(keys.partition_contacts_dirty_key(p)) == 0
        # a sheet changed while a pass is between its reads keeps its mark: the next pass rolls it
        everything = {p: 10**9 for p in range(PARTITIONS)}
        assert await writer.contacts.marks(everything, 100) == {}
        done = {"id": "a-4", "type": "contact.completed", "time": iso(now - 300), "contact": "a"}
        await applier.apply(0, [done], now)
        marks = await writer.contacts.marks(everything, 100)
        late = [{"id": "a-5", "type": "contact.completed", "time": iso(now - 200), "contact": "a"}]
        await applier.apply(0, late, now)
        await writer.contacts.write(marks, int(now))
        assert await redis.zcard(keys.partition_contacts_dirty_key(0)) == 1
        await writer.cycle(now + 2 * SETTLE_S)
        await writer.cycle(now + 3 * SETTLE_S)
        assert abs((await rows(settings))["a"]["handle_ms"] - 368_000) <= 1  # the later completion
        assert await redis.zcard(keys.partition_contacts_dirty_key(0)) == 0
        # retention: contacts that began before it are deleted
        days = settings.history_contacts_retention_days
        await prune(eng, now + days * 86400 - 450, days)  # the floor falls between b and c
        assert sorted(await rows(settings)) == ["c"]
    finally:
        await eng.dispose()
        await redis.aclose()


async def test_export_in_both_formats(clean_redis: EmbeddedRedis, tmp_path: Path) -> None:
    now = clock.now()
    redis = Redis.from_url(clean_redis.url)
    settings = api_settings(clean_redis.url, tmp_path)
    await database.upgrade_async(settings)
    eng = database.make_engine(settings)
    applier = Applier(redis)
    events = contact("=cmd", now - 900, True) + contact("x", now - 800, False)
    events += [{**e, "channel": "chat", "queue": "q2"} for e in contact("y", now - 700, True)[:1]]
    try:
        await redis.set(keys.PARTITIONS, PARTITIONS)
        await applier.apply(0, events, now)
        writer = HistoryWriter(settings, redis, eng)
        await writer.cycle(now)
        await writer.cycle(now + SETTLE_S)
    finally:
        await eng.dispose()
        await redis.aclose()
    want = await rows(settings)
    span = {"from": iso(now - 3600), "to": iso(now)}
    async with asgi_client(settings) as api:
        url = "/api/v1/contacts/export"
        assert (await api.get(url, params=span, headers=bearer(VIEWER))).status_code == 403
        got_csv = await api.get(url, params=span, headers=bearer(ADMIN))
        got_nd = await api.get(url, params={**span, "format": "ndjson"}, headers=bearer(ADMIN))
        voice = await api.get(url, params={**span, "channel": "voice"}, headers=bearer(ADMIN))
        bad = await api.get(
            url, params={"from": iso(now), "to": iso(now - 60)}, headers=bearer(ADMIN)
        )
    assert got_csv.status_code == 200 and got_csv.headers["content-type"].startswith("text/csv")
    assert got_nd.headers["content-type"].startswith("application/x-ndjson")
    assert bad.status_code == 422
    table = list(csv.reader(io.StringIO(got_csv.text)))
    assert tuple(table[0]) == EXPORT_COLUMNS
    objects = [json.loads(line) for line in got_nd.text.splitlines()]
    assert [list(o) for o in objects] == [list(EXPORT_COLUMNS)] * 3
    ordered = sorted(want.values(), key=lambda r: (r["start_ms"], r["contact"]))
    assert objects == [{c: r[c] for c in EXPORT_COLUMNS} for r in ordered]
    assert [r[0] for r in table[1:]] == ["'=cmd", "x", "y"]  # a formula is shown, not run
    assert table[1][EXPORT_COLUMNS.index("wait_ms")] == str(want["=cmd"]["wait_ms"])
    assert table[3][EXPORT_COLUMNS.index("answered_ms")] == ""  # unknown is empty
    assert [r["contact"] for r in objects if r["outcome"] == "open"] == ["y"]
    assert [line.split(",")[0] for line in voice.text.splitlines()[1:]] == ["'=cmd", "x"]
