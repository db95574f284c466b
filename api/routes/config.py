"""`GET /api/v1/config`: what the wallboard needs to colour and label figures as configured."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services import keys
from services.contract import Channel
from services.settings import Settings

from ..deps import State
from ..documents import ConfigDocument

router = APIRouter(prefix="/api/v1", tags=["config"])


@router.get(
    "/config",
    summary="Wallboard thresholds and metric definitions in force",
    response_model=ConfigDocument,
)
async def config(state: State) -> dict[str, Any]:
    s = state.settings
    return {
        "timezone": s.timezone,
        "thresholds": s.wallboard_thresholds,
        "channel_thresholds": {c.value: s.wallboard_pairs(c.value) for c in Channel},
        "queue_thresholds": {
            f"{c.value}{keys.SEP}{queue}": s.wallboard_pairs(c.value, queue)
            for queue in _rated_queues(s)
            for c in Channel
        },
        "service_level": {
            "variant": s.sl_variant,
            "exclude_short_abandons": s.sl_exclude_short_abandons,
            "thresholds_seconds": s.sl_thresholds_seconds,
            "queue_thresholds_seconds": s.queue_sl_thresholds_seconds,
        },
        "short_abandon_seconds": s.short_abandon_seconds,
        "abandon_denominator": s.abandon_denominator,
        "fcr_window_seconds": s.fcr_window_seconds,
    }


def _rated_queues(s: Settings) -> list[str]:
    """Queues with a threshold of their own (SL or wallboard); the others follow their channel."""
    return sorted({*s.queue_sl_thresholds_seconds, *s.wallboard_queue_thresholds})
