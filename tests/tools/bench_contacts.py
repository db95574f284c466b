"""Contacts benchmark: 1,000,000 contact rows over 90 days, then the drill-down and the export.

Rows are made by the real row function (`aggregator.contact_rows.contact_row`) from sheets of
3 channels x 50 queues, loaded in chunks (the loader's memory stays small), timed as rows/s, with
the real upsert (`INSERT .. ON CONFLICT`) timed on a slice. Then the drill-down query (one queue,
15 minutes) and the 90-day export through the endpoint's own streaming function, with the peak
RSS before and after it, next to the same rows read whole (`fetchall`) as the reference.
Run alone: `python -m tests.tools.bench_contacts [--rows N] [--postgres]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from aggregator.contact_rows import contact_row, upsert_statement
from aggregator.facts import ContactFacts, Register
from api.contacts_export import ExportQuery, export_lines, statement
from services import database, intervals
from tests.clock import clock

DAYS, QUEUES, CHANNELS = 90, 50, ("voice", "chat", "email")
CHUNK = 20_000
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def sheet(n: int, rng: random.Random, start_ms: int, span_ms: int) -> ContactFacts:
    """A plausible contact: offered, queued, then answered and completed, or abandoned."""
    t = start_ms + rng.randrange(span_ms)
    channel = CHANNELS[n % len(CHANNELS)]
    reg = Register
    f = ContactFacts(contact=f"bench-{n}", offered_ms=t, queued_ms=t + 2000)
    f.channel = reg(channel, t, f"e{n}")
    f.queue = reg(f"{channel}-q{rng.randrange(QUEUES)}", t, f"e{n}")
    f.customer = reg(f"h:{rng.getrandbits(128):032x}", t, f"e{n}")
    if rng.random() < 0.85:
        f.answered_ms = t + 2000 + rng.randrange(120_000)
        f.answered_agent = reg(f"agent-{rng.randrange(400)}", f.answered_ms, f"a{n}")
        f.completed_ms = f.answered_ms + rng.randrange(900_000)
    else:
        f.abandoned_ms = t + 2000 + rng.randrange(300_000)
    return f


def rows(count: int, end_ms: int) -> Iterator[list[dict[str, Any]]]:
    rng = random.Random(11)
    span = DAYS * 86_400_000
    for first in range(0, count, CHUNK):
        sheets = [
            sheet(n, rng, end_ms - span, span) for n in range(first, min(count, first + CHUNK))
        ]
        yield [r for f in sheets if (r := contact_row(f, end_ms // 1000)) is not None]


def rss_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets this process's VmHWM to its current RSS."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")


async def load(engine: AsyncEngine, count: int, end_ms: int) -> float:
    """Every row with plain multi-row INSERTs (executemany); returns rows/s."""
    table = intervals.contacts
    started = time.perf_counter()
    for chunk in rows(count, end_ms):
        async with engine.begin() as conn:
            await conn.execute(table.insert(), chunk)
    return count / (time.perf_counter() - started)


async def upsert_rate(engine: AsyncEngine, end_ms: int, count: int = 40_000) -> float:
    """The history writer's own statement on rows that all exist already (each an update)."""
    chunks = list(rows(count, end_ms))
    started = time.perf_counter()
    for chunk in chunks:
        for part in range(0, len(chunk), 5000):  # the writer's batch per pass
            async with engine.begin() as conn:
                await conn.execute(upsert_statement(conn.dialect.name), chunk[part : part + 5000])
    return count / (time.perf_counter() - started)


async def drill_down(engine: AsyncEngine, end_ms: int) -> tuple[float, int]:
    """Median ms of 'one queue, 15 minutes' over 20 random windows; rows found in all."""
    rng = random.Random(3)
    took: list[float] = []
    found = 0
    async with engine.connect() as conn:
        for _ in range(20):
            start = end_ms - rng.randrange(DAYS * 86_400_000 - 900_000)
            channel = rng.choice(CHANNELS)
            q = ExportQuery(start, start + 900_000, channel, f"{channel}-q{rng.randrange(QUEUES)}")
            t0 = time.perf_counter()
            found += len((await conn.execute(statement(q))).all())
            took.append((time.perf_counter() - t0) * 1000)
    return statistics.median(took), found


async def export(engine: AsyncEngine, end_ms: int) -> tuple[int, int, float, int, int]:
    """The 90-day export streamed as CSV: lines, bytes, rows/s, peak RSS before and after."""
    q = ExportQuery(end_ms - DAYS * 86_400_000 - 1, end_ms + 1)
    reset_peak()
    before = rss_kib("VmHWM")
    lines = size = 0
    started = time.perf_counter()
    async for block in export_lines(engine, q, "csv"):
        lines += block.count(b"\n")
        size += len(block)
    rate = (lines - 1) / (time.perf_counter() - started)
    return lines - 1, size, rate, before, rss_kib("VmHWM")


async def whole(engine: AsyncEngine, end_ms: int) -> tuple[int, int, int]:
    """The reference: the same rows read whole (fetchall); peak RSS before and after."""
    q = ExportQuery(end_ms - DAYS * 86_400_000 - 1, end_ms + 1)
    reset_peak()
    before = rss_kib("VmHWM")
    async with engine.connect() as conn:
        got = (await conn.execute(statement(q))).all()
    count = len(got)
    del got
    return count, before, rss_kib("VmHWM")


async def run(url: str, count: int, label: str) -> None:
    end_ms = int(clock.now()) // 86400 * 86_400_000
    await asyncio.to_thread(database.upgrade_url, url)
    engine = create_async_engine(url)
    try:
        rate = await load(engine, count, end_ms)
        async with engine.connect() as conn:
            stored = (
                await conn.execute(select(func.count()).select_from(intervals.contacts))
            ).scalar()
        print(f"[{label}] loaded {stored:,} rows: {rate:,.0f} rows/s (plain INSERT)")
        upserts = await upsert_rate(engine, end_ms)
        print(f"[{label}] upsert (the history writer's statement): {upserts:,.0f} rows/s")
        ms, found = await drill_down(engine, end_ms)
        print(f"[{label}] drill-down, one queue x 15 min: median {ms:.2f} ms ({found} rows in 20)")
        lines, size, rate, before, after = await export(engine, end_ms)
        print(
            f"[{label}] export 90 days CSV, streamed: {lines:,} rows, {size / 2**20:.0f} MiB, "
            f"{rate:,.0f} rows/s; peak RSS {before // 1024} MiB before, {after // 1024} MiB after"
        )
        n, before, after = await whole(engine, end_ms)
        print(
            f"[{label}] reference, the same {n:,} rows read whole (fetchall): "
            f"peak RSS {before // 1024} MiB before, {after // 1024} MiB after"
        )
    finally:
        await engine.dispose()


async def on_postgres(count: int) -> None:
    """In a database of its own, created and dropped here (the server's `test` db is the admin
    connection), so no other run's rows mix in."""
    import asyncpg

    name = f"ccpulse_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(f"{PG_SERVER}/test")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await run(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", count, "postgresql")
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true", help="also on 127.0.0.1:5432")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(f"sqlite+aiosqlite:///{Path(folder) / 'contacts.db'}", args.rows, "sqlite"))
    if args.postgres:
        asyncio.run(on_postgres(args.rows))


if __name__ == "__main__":
    main()
