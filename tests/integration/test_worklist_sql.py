"""The worklist's SQL shell and role, in process against real SQLite and Redis: the two reads
(chunked by customer) give what the pure matching gives over every row of the table, and only a
planner (or a viewer when CCPULSE_CONTACT_LISTS_ROLE=viewer) may read it."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from api.worklist import Abandon, Later, match
from api.worklist_reader import WorklistQuery, worklist
from ccpulse.stack import EmbeddedRedis
from services import database, intervals
from tests.apiserver import ADMIN, VIEWER, api_settings, asgi_client, bearer
from tests.clock import clock

H = 3_600_000


def table(now_ms: int) -> list[dict[str, Any]]:
    """Random contacts over two days: abandons, timeouts, answers; some without a customer."""
    rng = random.Random(11)
    out = []
    for n in range(400):
        start = now_ms - rng.randrange(48 * H)
        outcome = rng.choice(["abandoned", "timed_out", "answered", "answered", "open"])
        end = start + rng.randrange(1, 2 * H)
        out.append(
            {
                "contact": f"c{n}",
                "start_ms": start,
                "channel": rng.choice(["voice", "chat"]),
                "queue": rng.choice(["sales", "billing"]),
                "customer": rng.choice(["", "h:a", "h:b", "h:c", "h:d", "h:e"]),
                "abandoned_ms": end if outcome == "abandoned" else None,
                "timed_out_ms": end if outcome == "timed_out" else None,
                "wait_ms": 1000,
                "abandon_stage": "queue" if outcome == "abandoned" else None,
                "outcome": outcome,
                "updated_s": now_ms // 1000,
            }
        )
    return out


def everything(rows: list[dict[str, Any]], q: WorklistQuery, window_ms: int) -> Any:
    """The pure matching over the whole table: what two bounded reads must equal."""
    abandons = []
    for r in rows:
        at = r["abandoned_ms"] if r["outcome"] == "abandoned" else r["timed_out_ms"]
        if at is None or not q.start_ms <= at < q.end_ms:
            continue
        if q.channel not in (None, r["channel"]) or q.queue not in (None, r["queue"]):
            continue
        fields = (r["wait_ms"], r["abandon_stage"], r["outcome"])
        abandons.append(Abandon(r["contact"], r["channel"], r["queue"], r["customer"], at, *fields))
    later = [Later(r["contact"], r["channel"], r["customer"], r["start_ms"]) for r in rows]
    return match(abandons, later, window_ms)


async def test_two_reads_equal_the_matching_over_the_whole_table(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    now_ms = int(clock.now() * 1000)
    settings = api_settings(clean_redis.url, tmp_path)
    await database.upgrade_async(settings)
    eng = database.make_engine(settings)
    rows = table(now_ms)
    try:
        async with eng.begin() as conn:
            await conn.execute(insert(intervals.contacts), rows)
        for q in [
            WorklistQuery(now_ms - 24 * H, now_ms),
            WorklistQuery(now_ms - 30 * H, now_ms - 20 * H, "voice"),
            WorklistQuery(now_ms - 40 * H, now_ms, "chat", "billing"),
        ]:
            for window_ms in (H, 6 * H):
                want = everything(rows, q, window_ms)
                assert await worklist(eng, q, window_ms, chunk=2) == want
                assert any(i.reached for i in want) and any(not i.reached for i in want)
    finally:
        await eng.dispose()


async def test_planner_role_or_viewers_when_allowed(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    url = "/api/v1/contacts/abandoned"
    settings = api_settings(clean_redis.url, tmp_path)
    await database.upgrade_async(settings)
    async with asgi_client(settings) as api:
        assert (await api.get(url)).status_code == 401
        assert (await api.get(url, headers=bearer(VIEWER))).status_code == 403
        ok = await api.get(url, params={"window": "1h"}, headers=bearer(ADMIN))
        assert ok.status_code == 200 and ok.json()["contacts"] == []
        bad = await api.get(url, params={"window": "2d"}, headers=bearer(ADMIN))
        assert bad.status_code == 422
    opened = api_settings(clean_redis.url, tmp_path, contact_lists_role="viewer")
    async with asgi_client(opened) as api:
        assert (await api.get(url, headers=bearer(VIEWER))).status_code == 200
