"""History benchmark: 90 days x 50 queues x 3 channels of 15-minute rows in SQLite.

Prints the time of an hourly volume query over the whole range (total, by channel, by queue),
of the 12-week heat map and of a staffing day. Target: under 200 ms on SQLite on this machine.
Run alone with `python -m tests.tools.bench_history`; `make bench` runs it after the pipeline
figures.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from api.live_reader import LiveReader
from api.planning.buckets import VolumeQuery, local_floor
from api.planning.reader import HistoryReader
from api.planning.staffing import heatmap
from services import database, intervals, keys, kpis
from services.settings import Settings
from tests.clock import clock

DAYS, QUEUES, CHANNELS = 90, 50, ("voice", "chat", "email")


def load(path: Path, days: int) -> int:
    """Rows for every interval, channel and queue; channel rows are the sums of their queues."""
    rng = random.Random(7)
    end = int(clock.now()) // 86400 * 86400
    start = end - days * 86400
    columns = [c.name for c in intervals.interval_counters.columns]
    sql = (
        f"INSERT INTO interval_counters ({','.join(columns)}) "
        f"VALUES ({','.join('?' * len(columns))})"
    )
    db = sqlite3.connect(path)
    rows = 0
    for t in range(start, end, keys.INTERVAL_SECONDS):
        batch = []
        for channel in CHANNELS:
            total: dict[str, int] = {}
            for q in range(QUEUES):
                offered = rng.randint(0, 12)
                answered = rng.randint(0, offered)
                c = {
                    kpis.OFFERED: offered,
                    kpis.QUEUED: offered,
                    kpis.ANSWERED: answered,
                    kpis.ABANDONED: offered - answered,
                    kpis.ABANDONED_QUEUE: offered - answered,
                    kpis.ANSWER_WAIT_MS: answered * 15_000,
                    kpis.HANDLED: answered,
                    kpis.HANDLE_MS: answered * 240_000,
                    "aw:2": answered,
                    "qw:4": offered - answered,
                }
                kpis.add_counters(total, c)
                batch.append(intervals.to_row(t, keys.queue_scope(channel, f"q{q}"), c, end))
            batch.append(intervals.to_row(t, keys.channel_scope(channel), total, end))
        db.executemany(sql, [[r[c] for c in columns] for r in batch])
        rows += len(batch)
    db.commit()
    db.close()
    return rows


async def timed(what: str, run: Callable[[], Awaitable[Any]], repeat: int = 5) -> None:
    await run()  # warm the page cache once
    took = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await run()
        took.append((time.perf_counter() - t0) * 1000)
    size = len(result) if hasattr(result, "__len__") else 1
    print(f"  {what:<46} median {statistics.median(took):7.1f} ms  ({size:,} rows out)")


async def queries(settings: Settings) -> None:
    engine = database.make_engine(settings)
    redis = Redis.from_url("redis://127.0.0.1:1/0")  # never reached: the range is all closed
    reader = HistoryReader(engine, settings, LiveReader(redis, settings))
    zone = ZoneInfo("UTC")
    end = datetime.fromtimestamp(int(clock.now()) // 86400 * 86400, UTC).astimezone(zone)
    start = end - timedelta(days=DAYS)
    now = clock.now()

    async def hourly(groups: tuple[str, ...] = (), channel: str | None = None) -> Any:
        q = VolumeQuery("1h", start, end, zone, channel, None, groups)
        return (await reader.volume(q, now))[0]

    this_week = local_floor(end, "1w")
    weeks = [this_week - timedelta(weeks=n) for n in range(12, 0, -1)]

    async def heat() -> Any:
        return heatmap(
            await reader.hourly_offered(weeks[0], this_week, zone, None, None), weeks, zone
        )

    await timed("hourly, 90 days, all channels", hourly)
    await timed("hourly, 90 days, group_by=channel", lambda: hourly(("channel",)))
    await timed("hourly, 90 days, voice, group_by=queue", lambda: hourly(("queue",), "voice"))
    await timed("heat map, 12 weeks", heat)
    day = (end - timedelta(days=1)).date()
    await timed(
        "one day's 15-minute rows (staffing input)",
        lambda: reader.day_intervals(day, zone, "voice", None),
    )
    await engine.dispose()
    await redis.aclose()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(auth="off", data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/h.db")
        database.upgrade(settings)
        t0 = time.perf_counter()
        rows = load(Path(tmp) / "h.db", DAYS)
        print(
            f"history: {rows:,} interval rows ({DAYS} days x {QUEUES} queues x "
            f"{len(CHANNELS)} channels, plus channel rows) loaded in "
            f"{time.perf_counter() - t0:.0f} s; SQLite, target < 200 ms"
        )
        asyncio.run(queries(settings))


if __name__ == "__main__":
    main()
