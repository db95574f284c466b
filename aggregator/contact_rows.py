"""Rolls changed contacts' fact sheets into the SQL `contacts` table, one row per contact.

The apply step marks every contact whose sheet it wrote (`contact -> offset of the step`); the
history writer, under its lock, reads a bounded batch of settled marks (untouched for a few
seconds) and then the sheets, upserts each row, and removes a mark only if its score did not move
meanwhile: a later event marks the contact again, so a row always ends as the function of the
contact's latest sheet, never a partial sum.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from services import intervals, keys

from . import contributions as contrib
from .facts import ContactFacts

MAX_CONTACTS_PER_CYCLE = 5000
# Sheets turned into rows (and rows per upsert) between two turns of the event loop: the
# runner shares it, and 5,000 sheets in one go held it for up to 0.4 s under load.
CHUNK = 500
SETTLE_S = 5.0  # a contact untouched this long is rolled (see ContactRoller)
ANSWERED, ABANDONED, TIMED_OUT, COMPLETED, OPEN = (
    "answered",
    "abandoned",
    "timed_out",
    "completed",
    "open",
)


def outcome(f: ContactFacts) -> str:
    """How the contact ended, by the metrics' own rules: an answer wins over an abandon report,
    a timeout is its own outcome, an abandon counts once the offer or queue entry is known."""
    if f.answered_ms is not None:
        return ANSWERED
    if f.timed_out_ms is not None:
        return TIMED_OUT
    if contrib.is_abandoned(f):
        return ABANDONED
    if f.completed_ms is not None or f.resolved_ms is not None:
        return COMPLETED
    return OPEN


def wait_ms(f: ContactFacts) -> int | None:
    """The wait the figures count: to the answer (ASA), to the abandon (abandon wait, from the
    queue entry when it came first, else the offer), to the timeout; none otherwise."""
    result = outcome(f)
    start = contrib.wait_start_ms(f)
    if result == ANSWERED:
        return contrib.answer_wait_ms(f)
    if result == ABANDONED:
        assert f.abandoned_ms is not None
        in_queue = f.queued_ms is not None and f.queued_ms <= f.abandoned_ms
        begin = f.queued_ms if in_queue else f.offered_ms
        return max(0, f.abandoned_ms - begin) if begin is not None else 0
    if result == TIMED_OUT and start is not None and f.timed_out_ms is not None:
        return max(0, f.timed_out_ms - start)
    return None


def start_ms(f: ContactFacts) -> int | None:
    """When the contact began: its offer, else the earliest time known of it."""
    if f.offered_ms is not None:
        return f.offered_ms
    times = [getattr(f, name) for name in intervals.CONTACT_TIMES]
    times += list(f.stages.values()) + list(f.transfers.values())
    times += [r.ms for r in f.escalations.values()]
    times += [r.ms for r in (f.channel, f.queue, f.agent, f.customer, f.csat, f.nps) if r]
    known = [ms for ms in times if ms is not None]
    return min(known) if known else None


def stages_json(f: ContactFacts) -> str | None:
    """The stages in the order entered (time, then name), as compact JSON; None without any."""
    if not f.stages:
        return None
    path = sorted(f.stages.items(), key=lambda item: (item[1], item[0]))
    return json.dumps(dict(path), separators=(",", ":"))


def contact_row(f: ContactFacts, now_s: int) -> dict[str, Any] | None:
    """The contact's row, a pure function of its sheet (None for a sheet that holds no time)."""
    start = start_ms(f)
    if start is None:
        return None
    result = outcome(f)
    return {
        "contact": f.contact,
        "start_ms": start,
        "channel": "" if f.channel is None else str(f.channel.value),
        "queue": "" if f.queue is None else str(f.queue.value),
        "agent": contrib.agent_of(f) or "",
        "customer": "" if f.customer is None else str(f.customer.value),
        **{name: getattr(f, name) for name in intervals.CONTACT_TIMES},
        "abandon_stage": contrib.abandon_stage(f) if result == ABANDONED else None,
        "wait_ms": wait_ms(f),
        "handle_ms": contrib.handle_ms(f),
        "outcome": result,
        "first_contact": None if f.first_contact is None else bool(f.first_contact.value),
        "csat": None if f.csat is None else int(f.csat.value),
        "nps": None if f.nps is None else int(f.nps.value),
        "updated_s": now_s,
        "issue": None if f.issue is None else str(f.issue.value),
        "stages": stages_json(f),
    }


class ContactRoller:
    """One bounded pass over every partition's settled marks; run by the history writer under its
    lock. `forget` is the writer's remove-if-unchanged script (KEYS[1] the set, ARGV member,
    score); `offset_key(partition)` names the partition's applied offset.

    A mark settles once the partition's applied offset it carries was already reached `settle_s`
    ago: a contact still being touched waits, so a replay at thousands of events a second rolls
    each contact about once instead of after every batch (the measured cost, docs/contacts.md),
    and a live contact's row follows within seconds. Scores stay offsets, so unmarking is exact.
    """

    def __init__(
        self,
        redis: Redis,
        engine: AsyncEngine,
        forget: AsyncScript,
        offset_key: Callable[[int], str],
        settle_s: float = SETTLE_S,
    ) -> None:
        self.redis = redis
        self.engine = engine
        self.forget = forget
        self.offset_key = offset_key
        self.settle_s = settle_s
        self.heads: dict[int, deque[tuple[float, int]]] = {}  # partition -> (seen at, offset)
        self.behind = False  # the last pass took a full share somewhere: more may be waiting

    async def roll(
        self, partitions: range, now_s: float, limit: int = MAX_CONTACTS_PER_CYCLE
    ) -> int:
        """Rows upserted (at most `limit`); marks read first, sheets after, so a sheet written
        between the two reads leaves its newer mark in place."""
        settled = await self.settled(partitions, now_s)
        return await self.write(await self.marks(settled, limit), int(now_s))

    async def settled(self, partitions: range, now_s: float) -> dict[int, int]:
        """Per partition, the applied offset it had `settle_s` ago (as seen by earlier passes)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.get(self.offset_key(partition))
            offsets = await pipe.execute()
        out: dict[int, int] = {}
        for partition, raw in zip(partitions, offsets, strict=True):
            seen = self.heads.setdefault(partition, deque())
            seen.append((now_s, -1 if raw is None else int(raw)))
            while len(seen) > 1 and seen[1][0] <= now_s - self.settle_s:
                seen.popleft()
            if seen[0][0] <= now_s - self.settle_s:
                out[partition] = seen[0][1]
        return out

    async def write(self, marks: dict[int, list[tuple[str, float]]], now_s: int) -> int:
        """Upsert the marked contacts' rows, then remove the marks whose score did not move."""
        if not marks:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition, pairs in marks.items():
                pipe.hmget(keys.partition_facts_key(partition), [c for c, _ in pairs])
            sheets = await pipe.execute()
        found = [raw for raws in sheets for raw in raws if raw is not None]
        rows: dict[str, dict[str, Any]] = {}  # one per contact: PostgreSQL refuses a statement
        for start in range(0, len(found), CHUNK):  # that updates a row twice (two partitions)
            await asyncio.sleep(0)  # a turn of the loop for the runner between chunks
            for raw in found[start : start + CHUNK]:
                row = contact_row(ContactFacts.from_json(orjson.loads(raw)), now_s)
                if row is not None:
                    rows[row["contact"]] = row
        if rows:
            await self._upsert(list(rows.values()))
        for partition, pairs in marks.items():
            args = [item for contact, score in pairs for item in (contact, repr(score))]
            await self.forget(keys=[keys.partition_contacts_dirty_key(partition)], args=args)
        return sum(len(pairs) for pairs in marks.values())

    async def _upsert(self, rows: list[dict[str, Any]]) -> None:
        """One transaction, one statement per chunk: its parameters are processed on the loop."""
        async with self.engine.begin() as conn:
            statement = upsert_statement(conn.dialect.name)
            for start in range(0, len(rows), CHUNK):
                await conn.execute(statement, rows[start : start + CHUNK])

    async def marks(
        self, settled: dict[int, int], limit: int
    ) -> dict[int, list[tuple[str, float]]]:
        """Up to `limit` marks in all at or below each partition's settled offset, an equal share
        per partition (a busy partition cannot starve the others), oldest steps first."""
        share = max(1, limit // max(1, len(settled)))
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition, offset in settled.items():
                key = keys.partition_contacts_dirty_key(partition)
                pipe.zrangebyscore(key, "-inf", offset, start=0, num=share, withscores=True)
            replies = await pipe.execute()
        out: dict[int, list[tuple[str, float]]] = {}
        self.behind = any(len(raw) >= share for raw in replies)
        for partition, raw in zip(settled, replies, strict=True):
            if raw:
                out[partition] = [(_text(member), float(score)) for member, score in raw]
        return out


async def prune(engine: AsyncEngine, now_s: float, retention_days: int) -> None:
    """Rows of contacts that began before the retention window are deleted."""
    table = intervals.contacts
    floor_ms = (int(now_s) - retention_days * 86400) * 1000
    async with engine.begin() as conn:
        await conn.execute(delete(table).where(table.c.start_ms < floor_ms))


def upsert_statement(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (contact) DO UPDATE: the row becomes the latest sheet's."""
    table = intervals.contacts
    stmt: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    updated = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
    return stmt.on_conflict_do_update(index_elements=["contact"], set_=updated)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
