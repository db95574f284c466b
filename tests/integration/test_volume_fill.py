"""`/api/v1/volume?fill=zero`: the zero rows planners' exports expect, in process against SQLite
history and the session Redis; the figures of the rows that exist do not change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from ccpulse.stack import EmbeddedRedis
from services import database, intervals, keys, kpis
from services.clock import ManualClock
from tests.apiserver import ADMIN, api_settings, asgi_client, bearer
from tests.clock import clock

OFFERED = {"voice": {1: 7, 3: 5}, "chat": {2: 4}}  # channel -> hour of the day -> offered


async def rows_of(url: str, settings: Any, now: float) -> list[dict[str, Any]]:
    async with asgi_client(settings, ManualClock(now)) as api:
        response = await api.get(url, headers=bearer(ADMIN))
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["rows"]
    return rows


async def test_fill_zero_gives_every_bucket_and_changes_no_figure(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    settings = api_settings(clean_redis.url, tmp_path)
    await database.upgrade_async(settings)
    day = datetime.fromtimestamp(clock.now(), UTC).date() - timedelta(days=2)
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rows = [
        intervals.to_row(
            int((midnight + timedelta(hours=hour)).timestamp()),
            keys.channel_scope(channel),
            {kpis.OFFERED: n, kpis.ABANDONED: 1},
            0,
        )
        for channel, hours in OFFERED.items()
        for hour, n in hours.items()
    ]
    engine = database.make_engine(settings)
    async with engine.begin() as conn:
        await conn.execute(insert(intervals.interval_counters), rows)
    await engine.dispose()
    now = (midnight + timedelta(days=1, hours=10)).timestamp()  # the range is history only
    base = f"/api/v1/volume?interval=1h&tz=UTC&from={day}T00:00:00&to={day}T05:00:00"

    plain = await rows_of(base, settings, now)
    filled = await rows_of(base + "&fill=zero", settings, now)
    assert [r["start"][11:13] for r in plain] == ["01", "02", "03"]
    assert [r["start"][11:13] for r in filled] == ["00", "01", "02", "03", "04"]
    assert [r["offered"] for r in filled] == [0, 7, 4, 5, 0]
    assert [r for r in filled if r["offered"]] == plain  # existing rows unchanged
    empty = filled[0]
    assert (empty["answered"], empty["abandoned"], empty["partial"]) == (0, 0, False)
    assert empty["abandon_rate"] is None and empty["service_level"] is None

    grouped = await rows_of(base + "&group_by=channel&fill=zero", settings, now)
    assert len(grouped) == 10  # 5 hours x the 2 channels seen
    by_channel = {
        ch: [r["offered"] for r in grouped if r["channel"] == ch] for ch in ("chat", "voice")
    }
    assert by_channel == {"chat": [0, 0, 4, 0, 0], "voice": [0, 7, 0, 5, 0]}
    named = await rows_of(base + "&group_by=channel&channel=email&fill=zero", settings, now)
    assert [(r["channel"], r["offered"]) for r in named] == [("email", 0)] * 5
