"""`GET /api/v1/live`: every live figure for a window, by channel, queue and agent."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from redis.exceptions import RedisError

from services import kpis, problems

from ..deps import State
from ..documents import LiveDocument
from ..live_reader import WINDOW_NAMES, range_window, resolve_window
from ..snapshot import Overrides, shared_build

router = APIRouter(prefix="/api/v1", tags=["live"])


@router.get(
    "/live",
    summary="Live figures for a window",
    response_model=LiveDocument,
    responses=problems.responses(422, 503),
)
async def live(
    state: State,
    window: Annotated[str, Query(description=f"one of {', '.join(WINDOW_NAMES)}")] = "15m",
    start: Annotated[float | None, Query(alias="from", description="epoch seconds")] = None,
    end: Annotated[float | None, Query(alias="to", description="epoch seconds")] = None,
    sl_variant: kpis.SlVariant | None = None,
    sl_threshold: Annotated[int | None, Query(description="seconds, a histogram edge")] = None,
    sl_exclude_short: bool | None = None,
    abandon_denominator: kpis.AbandonDenominator | None = None,
) -> dict[str, Any]:
    now = state.clock.now()
    try:
        if sl_threshold is not None:
            kpis.require_edge(sl_threshold)
        if start is not None or end is not None:
            span = range_window(start if start is not None else now - 900, end or now)
        else:
            span = resolve_window(window, now, state.settings)
    except ValueError as exc:
        field = "sl_threshold" if sl_threshold is not None and "edge" in str(exc) else "window"
        raise HTTPException(422, detail=f"{field}: {exc}") from exc
    overrides = Overrides(sl_variant, sl_threshold, sl_exclude_short, abandon_denominator)
    try:
        return await shared_build(state.reader, span, now, overrides)
    except (RedisError, OSError) as exc:
        raise HTTPException(503, detail="live state (Redis) is unavailable") from exc
