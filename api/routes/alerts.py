"""`GET /api/v1/alerts`: alerts firing and pending now, recent firings and resolves, the rules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from redis.exceptions import RedisError

from services import problems

from ..deps import State
from ..documents import AlertsDocument

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get(
    "/alerts",
    summary="Firing, pending and recent alerts of the built-in alerter",
    response_model=AlertsDocument,
    response_model_exclude_unset=True,  # without the alerter: the four lists only, as before
    responses=problems.responses(503),
)
async def alerts(state: State) -> dict[str, Any]:
    service = state.alerts
    if service is None:
        return {"firing": [], "pending": [], "recent": [], "rules": []}
    try:
        overview: dict[str, Any] = await service.overview()
    except (RedisError, OSError) as exc:
        raise HTTPException(503, detail="alert state (Redis) is unavailable") from exc
    return overview
