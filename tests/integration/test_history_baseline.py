"""The alerter's baseline read from real SQL history (SQLite, migrated by Alembic)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import insert

from api.live_reader import LiveReader
from api.planning.baseline import HistoryBaseline
from api.planning.reader import HistoryReader
from services import database, intervals, keys, kpis
from services.settings import Settings


def test_baseline_is_the_pooled_rate_of_the_same_hour_in_past_weeks(tmp_path: Path) -> None:
    settings = Settings(auth="off", data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/h.db")
    database.upgrade(settings)
    now = datetime(2026, 11, 26, 9, 40, tzinfo=UTC)  # a Thursday, 09:40 UTC

    async def run() -> tuple[float | None, float | None]:
        engine = database.make_engine(settings)
        redis = Redis.from_url("redis://127.0.0.1:1/0")  # never reached
        reader = HistoryReader(engine, settings, LiveReader(redis, settings))
        rows = []
        # weeks 1 and 2 back at 09:00-10:00: 10 of 100 and 30 of 100 abandoned -> 40 / 200
        for week, abandoned in ((1, 10), (2, 30)):
            start = int((now.replace(minute=0) - timedelta(weeks=week)).timestamp())
            c = {
                kpis.OFFERED: 100,
                kpis.ABANDONED: abandoned,
                kpis.ABANDONED_QUEUE: abandoned,
                "qw:5": abandoned,
            }
            rows.append(intervals.to_row(start + 900, keys.channel_scope("voice"), c, 0))
        # another hour and another channel must not count
        other = int((now.replace(minute=0) - timedelta(weeks=1, hours=2)).timestamp())
        rows.append(
            intervals.to_row(
                other, keys.channel_scope("voice"), {kpis.OFFERED: 50, kpis.ABANDONED: 50}, 0
            )
        )
        async with engine.begin() as conn:
            await conn.execute(insert(intervals.interval_counters), rows)
        baseline = HistoryBaseline(reader)
        voice = await baseline.rate("voice", None, now.timestamp())
        chat = await baseline.rate("chat", None, now.timestamp())
        await engine.dispose()
        await redis.aclose()
        return voice, chat

    voice, chat = asyncio.run(run())
    assert voice == pytest.approx(40 / 200)
    assert chat is None
