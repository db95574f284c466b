"""`GET /api/v1/live`: every live figure for a window, by channel, queue and agent."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import TypeAdapter
from redis.exceptions import RedisError

from services import kpis, problems

from ..deps import State
from ..documents import LiveDocument
from ..live_reader import WINDOW_NAMES, LiveReader, Window, range_window, resolve_window
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
) -> Response:
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
        body = await state.reader.shared.get(
            ("live-json", span, overrides), now, lambda: _json(state.reader, span, now, overrides)
        )
        return Response(body, media_type="application/json")
    except (RedisError, OSError) as exc:
        raise HTTPException(503, detail="live state (Redis) is unavailable") from exc


DOCUMENT = TypeAdapter(LiveDocument)


async def _json(reader: LiveReader, span: Window, now: float, overrides: Overrides) -> bytes:
    """The document as FastAPI answered it (validated by its response model; pydantic's JSON,
    the same bytes as JSONResponse's on the bench state), once for every request sharing it
    (api/shared_reads.py)."""
    doc = await shared_build(reader, span, now, overrides, fresh=True)
    return await asyncio.to_thread(_encode, doc)  # the event loop keeps answering meanwhile


def _encode(doc: dict[str, Any]) -> bytes:
    return DOCUMENT.dump_json(DOCUMENT.validate_python(doc), by_alias=True)
