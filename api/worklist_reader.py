"""The worklist's SQL: a thin shell around api/worklist.py's pure matching.

Two reads of the `contacts` table: the window's abandoned and timed-out rows, then the later
contacts of their customers through the (customer, start_ms) index, in chunks of customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services import intervals

from .worklist import Abandon, Item, Later, match

CUSTOMER_CHUNK = 500  # well under SQLite's bound-parameter limit


@dataclass(frozen=True, slots=True)
class WorklistQuery:
    """Abandons (or timeouts) at a time in [start_ms, end_ms), optionally of a channel, a queue."""

    start_ms: int
    end_ms: int
    channel: str | None = None
    queue: str | None = None


async def worklist(
    engine: AsyncEngine, q: WorklistQuery, window_ms: int, chunk: int = CUSTOMER_CHUNK
) -> list[Item]:
    async with engine.connect() as conn:
        abandons = [_abandon(r) for r in (await conn.execute(_abandons(q))).all()]
        customers = sorted({a.customer for a in abandons if a.customer})
        later: list[Later] = []
        if customers:
            lo = min(a.at_ms for a in abandons if a.customer)
            hi = max(a.at_ms for a in abandons if a.customer) + window_ms
            for i in range(0, len(customers), chunk):
                rows = await conn.execute(_later(customers[i : i + chunk], lo, hi))
                later += [Later(*r) for r in rows.all()]
    return match(abandons, later, window_ms)


def _abandons(q: WorklistQuery) -> Any:
    t = intervals.contacts
    stmt = select(
        t.c.contact,
        t.c.channel,
        t.c.queue,
        t.c.customer,
        t.c.abandoned_ms,
        t.c.timed_out_ms,
        t.c.wait_ms,
        t.c.abandon_stage,
        t.c.outcome,
    ).where(  # each term a range on its own index (ix_contacts_abandoned, ix_contacts_timed_out)
        or_(
            and_(t.c.outcome == "abandoned", _within(t.c.abandoned_ms, q)),
            and_(t.c.outcome == "timed_out", _within(t.c.timed_out_ms, q)),
        ),
    )
    if q.channel is not None:
        stmt = stmt.where(t.c.channel == q.channel)
    if q.queue is not None:
        stmt = stmt.where(t.c.queue == q.queue)
    return stmt


def _within(column: Any, q: WorklistQuery) -> Any:
    return and_(column >= q.start_ms, column < q.end_ms)


def _later(customers: Sequence[str], lo_ms: int, hi_ms: int) -> Any:
    t = intervals.contacts
    return select(t.c.contact, t.c.channel, t.c.customer, t.c.start_ms).where(
        t.c.customer.in_(customers), t.c.start_ms > lo_ms, t.c.start_ms <= hi_ms
    )


def _abandon(row: Any) -> Abandon:
    contact, channel, queue, customer, abandoned, timed_out, wait, stage, outcome = row
    at = abandoned if outcome == "abandoned" else timed_out
    return Abandon(contact, channel, queue, customer, at, wait, stage, outcome)
