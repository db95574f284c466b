"""The history writer shares the aggregator's event loop with the live path (the runner): a pass
leaves the loop a turn between bounded chunks of contacts, and passes do not run back to back
while the live path is behind. Real Redis and SQLite; turns of the loop and passes are counted,
never timed."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from aggregator import contact_rows
from aggregator.contact_rows import CHUNK, MAX_CONTACTS_PER_CYCLE, SETTLE_S
from aggregator.facts import ContactFacts
from aggregator.rollup import HistoryWriter
from ccpulse.stack import EmbeddedRedis
from services import database, keys
from services.clock import ManualClock
from services.settings import Settings
from simulator.scenario import iso
from tests.apiserver import api_settings
from tests.clock import clock
from tests.integration.test_contacts_history import PARTITIONS, Applier

MAX_TURNS = 10_000_000  # the stand-in for the live path spins at most this often


def offers(count: int, now: float) -> list[dict[str, Any]]:
    """`count` contacts of one event each (each one mark to roll)."""
    return [
        {
            "id": f"o{n}",
            "type": "contact.offered",
            "time": iso(now - 600 + n % 300),
            "contact": f"c{n}",
            "channel": "voice",
            "queue": "sales",
        }
        for n in range(count)
    ]


async def writer_with_marks(
    url: str, tmp_path: Path, count: int
) -> tuple[Settings, Redis, HistoryWriter]:
    """A writer over `count` contacts marked in partition 0, settled by `clock.now()`."""
    now = clock.now()
    redis = Redis.from_url(url)
    settings = api_settings(url, tmp_path)
    await database.upgrade_async(settings)
    writer = HistoryWriter(settings, redis, database.make_engine(settings))
    await redis.set(keys.PARTITIONS, PARTITIONS)
    await Applier(redis).apply(0, offers(count, now), now)
    await writer.contacts.settled(range(PARTITIONS), now - SETTLE_S)  # seen a settle time ago
    return settings, redis, writer


async def test_a_contact_pass_leaves_the_loop_a_turn_every_chunk(
    clean_redis: EmbeddedRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 3 * CHUNK + 7
    _, redis, writer = await writer_with_marks(clean_redis.url, tmp_path, count)
    made = 0
    row_of = contact_rows.contact_row

    def counted(facts: ContactFacts, now_s: int) -> dict[str, Any] | None:
        nonlocal made
        made += 1
        return row_of(facts, now_s)

    monkeypatch.setattr(contact_rows, "contact_row", counted)
    done, seen = asyncio.Event(), []

    async def live_path() -> None:
        """Runs whenever the loop is free: records how many rows were made by each turn."""
        for _ in range(MAX_TURNS):
            seen.append(made)
            if done.is_set():
                return
            await asyncio.sleep(0)

    try:
        marks = await writer.contacts.marks({0: 10**9}, count)
        turns = asyncio.create_task(live_path())
        await asyncio.sleep(0)
        written = await writer.contacts.write(marks, int(clock.now()))
        done.set()
        await turns
        assert written == made == count
        assert max(b - a for a, b in itertools.pairwise(seen)) <= CHUNK
    finally:
        await writer.engine.dispose()
        await redis.aclose()


@pytest.mark.parametrize(("over", "passes"), [(0, 2), (1, 1)])
async def test_passes_wait_for_their_interval_while_the_live_path_is_behind(
    clean_redis: EmbeddedRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    over: int,
    passes: int,
) -> None:
    """More settled contacts than one pass takes: the writer runs the next pass at once while
    the live path is at most a poll (CCPULSE_MAX_POLL_RECORDS) behind, and waits for its
    interval when it is further behind (stopping during the first pass ends that wait)."""
    share = MAX_CONTACTS_PER_CYCLE // PARTITIONS
    settings, redis, writer = await writer_with_marks(clean_redis.url, tmp_path, share + 10)
    writer.live_lag = lambda: settings.max_poll_records + over
    stopping, ran = asyncio.Event(), []
    cycle = writer.cycle

    async def counted(now_s: float) -> int:
        ran.append(now_s)
        stopping.set()  # the writer ends at its next wait
        return await cycle(now_s)

    monkeypatch.setattr(writer, "cycle", counted)
    try:
        await writer.run(stopping)
        assert len(ran) == passes
        assert writer.contact_rows_written == (share + 10 if passes == 2 else share)
    finally:
        await writer.engine.dispose()
        await redis.aclose()


async def _turns_until(condition: Any, turns: int) -> None:
    """Let the writer's loop run (its waits are real, 1 ms) until `condition()` or `turns`."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0.002)


async def test_a_catch_up_starts_a_pass_once_a_catch_up_interval(
    clean_redis: EmbeddedRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the live path is behind, passes start once per catch-up interval of the writer's
    clock (not every history interval); once live has caught up, every interval again."""
    settings, redis, writer = await writer_with_marks(clean_redis.url, tmp_path, 10)
    writer.settings = settings.model_copy(
        update={"history_interval_seconds": 0.001, "history_catch_up_interval_seconds": 60.0}
    )
    behind = True
    writer.live_lag = lambda: settings.max_poll_records + (1 if behind else 0)
    writer.clock = ManualClock(clock.now())
    ran: list[float] = []
    cycle = writer.cycle

    async def counted(now_s: float) -> int:
        ran.append(now_s)
        return await cycle(now_s)

    monkeypatch.setattr(writer, "cycle", counted)
    stopping = asyncio.Event()
    task = asyncio.create_task(writer.run(stopping))
    try:
        await _turns_until(lambda: len(ran) > 1, 200)  # many history intervals, same instant
        assert len(ran) == 1  # the first pass runs at once
        writer.clock.advance(59.0)
        await _turns_until(lambda: len(ran) > 1, 200)
        assert len(ran) == 1
        writer.clock.advance(1.0)
        await _turns_until(lambda: len(ran) > 1, 2000)
        assert len(ran) == 2
        assert ran[1] - ran[0] == 60.0
        behind = False  # caught up: a pass every history interval, the clock standing still
        await _turns_until(lambda: len(ran) > 4, 2000)
        assert len(ran) > 4
        assert writer.contact_rows_written == 10
    finally:
        stopping.set()
        await task
        await writer.engine.dispose()
        await redis.aclose()
