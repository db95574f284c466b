"""`GET /api/v1/live/intervals`: volume by hour of the local day, from the live hour buckets.

The live view of the planners' question "how many contacts per hour"; history (SQL) answers it
for longer ranges. Hours follow `CCPULSE_TIMEZONE` (or `?tz=`), so a half-hour zone works too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Query
from redis.exceptions import RedisError

from services import keys, kpis, problems

from ..deps import State
from ..documents import IntervalsDocument
from ..live_reader import Window, iso, read_options

router = APIRouter(prefix="/api/v1/live", tags=["live"])


@router.get(
    "/intervals",
    summary="Hourly volume for today (or yesterday) by channel",
    response_model=IntervalsDocument,
    responses=problems.responses(422, 503),
)
async def intervals(
    state: State,
    day: Annotated[str, Query(pattern="^(today|yesterday)$")] = "today",
    tz: Annotated[str | None, Query(description="IANA time zone; default the setting")] = None,
) -> dict[str, Any]:
    try:
        zone = ZoneInfo(tz) if tz else state.settings.zone
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HTTPException(422, detail=f"tz: unknown time zone {tz!r}") from exc
    now = state.clock.now()
    start = datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0, microsecond=0)
    if day == "yesterday":
        start -= timedelta(days=1)
    try:
        rows = await _rows(state, start, now)
    except (RedisError, OSError) as exc:
        raise HTTPException(503, detail="live state (Redis) is unavailable") from exc
    return {"day": start.date().isoformat(), "timezone": str(zone), "rows": rows}


async def _rows(state: State, start: datetime, now_s: float) -> list[dict[str, Any]]:
    reader = state.reader
    channels = [s for s in await reader.active_scopes(int(start.timestamp())) if s.startswith("ch")]
    rows: list[dict[str, Any]] = []
    for hour in range(24):
        begin = start + timedelta(hours=hour)  # wall-clock hours: DST days have 23 or 25
        lo = int(begin.timestamp())
        hi = int((begin + timedelta(hours=1)).timestamp())
        if lo > now_s:
            break
        counters = await reader.counters(channels, Window("hour", lo, hi))
        for scope, c in counters.items():
            channel = keys.parse_scope(scope)[1]
            opts = read_options(state.settings, channel)
            rows.append(
                {
                    "start": iso(lo),
                    "end": iso(hi),
                    "hour": begin.hour,
                    "channel": channel,
                    "partial": hi > now_s,
                    "offered": c.get(kpis.OFFERED, 0),
                    "answered": c.get(kpis.ANSWERED, 0),
                    "abandoned": c.get(kpis.ABANDONED, 0),
                    "service_level": kpis.service_level(c, opts),
                    "abandon_rate": kpis.abandon_rate(c, opts),
                }
            )
    return rows
