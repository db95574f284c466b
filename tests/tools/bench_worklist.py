"""Worklist benchmark: `GET /api/v1/contacts/abandoned`'s reads and matching on 1,000,000 rows.

The rows are bench_contacts' (90 days, 15% abandoned). The abandons of a window are read through
the abandon- and timeout-time indexes (migration 0006), their customers' later contacts through
(customer, start_ms). Printed beside it, the reference: the export's read of the contacts that
began in the same window (the start index). Run alone:
`python -m tests.tools.bench_worklist [--rows N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.contacts_export import ExportQuery, statement
from api.worklist_reader import WorklistQuery, worklist
from services import database
from tests.clock import clock
from tests.tools.bench_contacts import load

WINDOWS = {"15m": 900_000, "24h": 86_400_000}


async def median_ms(call: Callable[[], Awaitable[int]], runs: int = 5) -> tuple[float, int]:
    took, found = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        found = await call()
        took.append((time.perf_counter() - t0) * 1000)
    return statistics.median(took), found


async def run(url: str, count: int) -> None:
    end_ms = int(clock.now()) // 86400 * 86_400_000
    await asyncio.to_thread(database.upgrade_url, url)
    engine = create_async_engine(url)
    try:
        rate = await load(engine, count, end_ms)
        print(f"loaded {count:,} rows: {rate:,.0f} rows/s")
        for name, span in WINDOWS.items():
            start = end_ms - span
            ms, found = await median_ms(partial(_worklist, engine, start, end_ms))
            ref, began = await median_ms(partial(_began, engine, start, end_ms))
            print(
                f"worklist {name}: {found} contacts, median {ms:.1f} ms; "
                f"reference (the export's read of the {began} contacts begun then): {ref:.1f} ms"
            )
    finally:
        await engine.dispose()


async def _worklist(engine: AsyncEngine, start_ms: int, end_ms: int) -> int:
    return len(await worklist(engine, WorklistQuery(start_ms, end_ms), 86_400_000))


async def _began(engine: AsyncEngine, start_ms: int, end_ms: int) -> int:
    async with engine.connect() as conn:
        return len((await conn.execute(statement(ExportQuery(start_ms, end_ms)))).all())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(f"sqlite+aiosqlite:///{Path(folder) / 'contacts.db'}", args.rows))


if __name__ == "__main__":
    main()
