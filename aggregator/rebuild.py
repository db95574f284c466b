"""`ccpulse history rebuild`: recompute history rows from the event log, not from Redis.

Runs the same pure engine as the live aggregator over every event (the topic from its start, or
a JSON-lines export of contract events), in memory, then replaces the rows of [from, to) in one
transaction. For loading weeks of past data, or repairing history after a definition change.
No lateness limit applies here: an old event is the point of a rebuild.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from sqlalchemy import delete

from services import intervals, keys, kpis
from services.connections import kafka_security
from services.database import make_engine
from services.settings import Settings

from . import engine, topic_reading
from .contributions import Contribution
from .facts import AgentFacts, ContactFacts
from .repeats import GroupSheet

log = logging.getLogger("ccpulse.rebuild")
BATCH = 5000
FAR_S = 10**10  # screen() with no lateness limit


class Totals:
    """In-memory engine state and the summed deltas per (interval, scope) inside the range."""

    def __init__(self, start_s: int, end_s: int, settings: Settings) -> None:
        self.start_s, self.end_s, self.settings = start_s, end_s, settings
        self.facts: dict[str, ContactFacts] = {}
        self.agents: dict[str, AgentFacts] = {}
        self.groups: dict[str, GroupSheet] = {}
        self.cells: dict[tuple[int, str], dict[str, int]] = {}
        self.events = 0
        self.dead: list[str] = []

    def feed(self, records: list[engine.Record]) -> None:
        events, dead = engine.screen(records, FAR_S, FAR_S)
        self.dead += [d.reason for d in dead]
        plan = engine.plan(
            events,
            self.facts,
            self.agents,
            self.groups,
            self.settings.fcr_window_seconds * 1000,
            self.settings.business_hours,
        )
        self.facts.update(plan.facts)
        self.agents.update(plan.agents)
        self.groups.update(plan.groups)
        self._add(plan.all_deltas())
        self.events += len(events)

    def _add(self, deltas: Contribution) -> None:
        for (minute, scope), fields in deltas.items():
            if self.start_s <= minute < self.end_s:
                cell = self.cells.setdefault((keys.interval_start_s(minute), scope), {})
                kpis.add_counters(cell, fields)


async def from_export(path: Path) -> AsyncIterator[list[engine.Record]]:
    batch: list[engine.Record] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines):
            if line.strip():
                batch.append(engine.Record(0, number, line.strip()))
            if len(batch) >= BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


async def from_topic(settings: Settings) -> AsyncIterator[list[engine.Record]]:
    """Everything in ccpulse.events, read until caught up (no consumer group, commits nothing).

    Reading stops at quiet with every partition at its fetched high-water mark, not at the listed
    end offsets alone (aggregator.topic_reading says why).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap or "127.0.0.1:9092",
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        **kafka_security(settings),
    )
    await consumer.start()
    try:
        partitions = await topic_reading.partitions(consumer, settings.topic(keys.TOPIC_EVENTS))
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await topic_reading.seek(consumer, partitions)
        idle = 0
        deadline = time.monotonic() + 3600
        while idle < 2 and time.monotonic() < deadline:
            polled = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            batch = [
                engine.Record(tp.partition, r.offset, r.value)
                for tp, records in polled.items()
                for r in records
                if r.value is not None
            ]
            if batch:
                idle = 0
                yield batch
            elif await topic_reading.caught_up(consumer, ends):
                idle += 1  # at the log ends and nothing more
    finally:
        await consumer.stop()


async def rebuild(
    settings: Settings, start: datetime, end: datetime, source: AsyncIterator[list[engine.Record]]
) -> Totals:
    totals = Totals(int(start.timestamp()), int(end.timestamp()), settings)
    async for records in source:
        totals.feed(records)
    await replace(settings, totals)
    return totals


async def replace(settings: Settings, totals: Totals) -> None:
    """Delete the range's rows and insert the recomputed ones, atomically."""
    table = intervals.interval_counters
    first = keys.interval_start_s(totals.start_s)
    rows = [
        intervals.to_row(start, scope, c, int(settings.clock().now()))
        for (start, scope), c in sorted(totals.cells.items())
        if not intervals.is_empty(c)
    ]
    db = make_engine(settings)
    try:
        async with db.begin() as conn:
            await conn.execute(
                delete(table).where(table.c.start_s >= first, table.c.start_s < totals.end_s)
            )
            for chunk in _chunks(rows, 500):
                await conn.execute(table.insert(), chunk)
    finally:
        await db.dispose()


def _chunks(rows: list[dict[str, object]], size: int) -> Iterable[list[dict[str, object]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _when(value: datetime, settings: Settings) -> datetime:
    """Without an offset, a time is local time in CCPULSE_TIMEZONE."""
    return value.replace(tzinfo=settings.zone) if value.tzinfo is None else value


async def main(
    settings: Settings, start: datetime, end: datetime, export: Path | None = None
) -> Totals:
    """Rebuild the rows of [start, end) from the topic, or from a JSON-lines `export`."""
    source = from_export(export) if export is not None else from_topic(settings)
    return await rebuild(settings, _when(start, settings), _when(end, settings), source)
