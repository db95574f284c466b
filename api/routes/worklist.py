"""`GET /api/v1/contacts/abandoned`: the abandoned-contacts worklist with callback status.

Contact-level data (a customer's keyed hash, their other contacts): the drill-down's role,
`CCPULSE_CONTACT_LISTS_ROLE` (planner by default; `viewer` opens it to wallboard keys).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import SQLAlchemyError

from services import problems
from services.contract import Channel

from ..deps import State
from ..live_reader import WINDOW_NAMES, resolve_window
from ..worklist import by_queue, figures, item_document
from ..worklist_reader import WorklistQuery, worklist

router = APIRouter(prefix="/api/v1", tags=["history"])


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorklistReach(Model):
    """The customer's first later contact (any channel, made or received)."""

    contact: str
    channel: str
    at_ms: int  # its start, epoch ms
    delay_seconds: float  # from the abandon (or timeout) to that start


class AbandonedContact(Model):
    contact: str
    channel: str
    queue: str
    customer: str | None  # keyed hash; null when the contact named no customer
    customer_known: bool
    outcome: str  # abandoned | timed_out
    abandoned_ms: int  # the abandon (or timeout) time, epoch ms
    wait_ms: int | None
    abandon_stage: str | None
    reached: WorklistReach | None


class WorklistFigures(Model):
    abandoned: int
    reached: int
    not_reached: int  # customer known and not reached (yet)
    median_seconds_to_reach: float | None


class WorklistQueueFigures(WorklistFigures):
    channel: str
    queue: str


class WorklistDocument(Model):
    window: str
    start_s: int
    end_s: int
    callback_window_seconds: int
    total: WorklistFigures
    queues: list[WorklistQueueFigures]
    contacts: list[AbandonedContact]  # by abandon time, then contact id


@router.get(
    "/contacts/abandoned",
    summary="Abandoned and timed-out contacts of a window, and whether each customer was reached",
    response_model=WorklistDocument,
    responses=problems.responses(422, 503),
)
async def abandoned(
    state: State,
    window: Annotated[str, Query(description=f"one of {', '.join(WINDOW_NAMES)}")] = "today",
    channel: Annotated[Channel | None, Query(description="Only this channel")] = None,
    queue: Annotated[str | None, Query(description="Only this queue", max_length=128)] = None,
) -> WorklistDocument:
    try:
        span = resolve_window(window, state.clock.now(), state.settings)
    except ValueError as exc:
        raise HTTPException(422, detail=f"window: {exc}") from exc
    if state.history is None:
        raise HTTPException(503, detail="history database is not configured")
    seconds = state.settings.callback_window_seconds
    q = WorklistQuery(span.start_s * 1000, span.end_s * 1000, channel and channel.value, queue)
    try:
        items = await worklist(state.history.engine, q, seconds * 1000)
    except (SQLAlchemyError, OSError) as exc:
        raise HTTPException(503, detail="history database is unavailable") from exc
    return WorklistDocument.model_validate(
        {
            "window": span.name,
            "start_s": span.start_s,
            "end_s": span.end_s,
            "callback_window_seconds": seconds,
            "total": figures(items),
            "queues": by_queue(items),
            "contacts": [item_document(i) for i in items],
        }
    )
