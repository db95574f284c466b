"""`GET /api/v1/contacts`: the contacts behind a live figure, for the same window and filters.

A supervisor checks a number by opening the list behind it: the count always equals the figure
(api/drilldown.py restates each definition over the contacts table), pages go newest first with
a cursor. Rows come from SQL history, rolled a few seconds after each change, so the answer
says up to when (`rolled_until`); the role is a setting (planner by default).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from services import keys, problems
from services.contract import Channel
from services.settings import Settings

from .. import drilldown
from ..deps import State
from ..documents import ContactList
from ..live_reader import WINDOW_NAMES, iso, range_window, resolve_window

router = APIRouter(prefix="/api/v1", tags=["live"])


def sl_rule(settings: Settings) -> drilldown.SlRule:
    return drilldown.SlRule(
        dict(settings.sl_thresholds_seconds),
        dict(settings.queue_sl_thresholds_seconds),
        20,
        settings.sl_variant,
        settings.sl_exclude_short_abandons,
        settings.short_abandon_seconds,
        settings.fcr_window_seconds * 1000,
    )


@router.get(
    "/contacts",
    summary="The contacts behind a live figure (same window and filters), newest first",
    response_model=ContactList,
    responses=problems.responses(422, 503),
)
async def contacts(
    state: State,
    figure: Annotated[drilldown.Figure, Query(description="the live figure to open")],
    window: Annotated[str, Query(description=f"one of {', '.join(WINDOW_NAMES)}")] = "15m",
    start: Annotated[float | None, Query(alias="from", description="epoch seconds")] = None,
    end: Annotated[float | None, Query(alias="to", description="epoch seconds")] = None,
    channel: Annotated[Channel | None, Query(description="Only this channel")] = None,
    queue: Annotated[str | None, Query(description="Only this queue", max_length=128)] = None,
    stage: Annotated[
        str | None, Query(description="abandoned figures: only this stage", max_length=128)
    ] = None,
    sort: Annotated[drilldown.Sort, Query(description="time (newest first) or wait")] = "time",
    cursor: Annotated[str | None, Query(description="next_cursor of the page before")] = None,
    limit: Annotated[int, Query(ge=1, le=drilldown.MAX_LIMIT)] = 100,
) -> Any:
    now = state.clock.now()
    try:
        if start is not None or end is not None:
            span = range_window(start if start is not None else now - 900, end or now)
        else:
            span = resolve_window(window, now, state.settings)
    except ValueError as exc:
        raise HTTPException(422, detail=f"window: {exc}") from exc
    if stage is not None and not figure.startswith("abandoned"):
        raise HTTPException(422, detail="stage: only abandoned figures have a stage")
    try:
        after = drilldown.decode_cursor(cursor) if cursor is not None else None
    except ValueError as exc:
        raise HTTPException(422, detail=f"cursor: {exc}") from exc
    if state.history is None:
        raise HTTPException(503, detail="history database is not configured")
    q = drilldown.DrillQuery(
        figure,
        span.start_s * 1000,
        span.end_s * 1000,
        channel.value if channel else None,
        queue,
        stage,
        sl_rule(state.settings),
    )
    try:
        async with state.history.engine.connect() as conn:
            count = int(
                (await conn.execute(select(func.count()).where(*drilldown.where(q)))).scalar_one()
            )
            rows = (await conn.execute(drilldown.page(q, sort, after, limit))).all()
    except (SQLAlchemyError, OSError) as exc:
        raise HTTPException(503, detail="history database is unavailable") from exc
    try:  # one key the history writer sets, not a scan of the table
        rolled = await state.redis.get(keys.CONTACTS_ROLLED)
    except (RedisError, OSError):
        rolled = None  # the list stands; only its freshness is unknown
    return {
        "figure": figure,
        "window": span.name,
        "from": iso(span.start_s),
        "to": iso(span.end_s),
        "channel": q.channel,
        "queue": queue,
        "stage": stage,
        "count": count,
        "contacts": [drilldown.contact_item(r) for r in rows],
        "next_cursor": drilldown.next_cursor(rows, figure, sort, limit),
        "rolled_until": None if rolled is None else iso(int(rolled)),
    }
