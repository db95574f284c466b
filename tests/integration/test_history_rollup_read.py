"""The history rollup's read of closed intervals against a real Redis (one primary and a local
cluster): what the summing script returns equals each interval's minute buckets of every
partition summed field by field here, for the cells asked and no others."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from redis.asyncio import Redis

from aggregator.rollup import HistoryWriter
from services import keys
from services.database import make_engine
from services.settings import Settings
from tests.stackfixtures import redis_single_and_cluster  # noqa: F401 (fixture `redis`)

PARTITIONS = 4
INTERVAL_START_S = 1_893_456_000  # 2030-01-01T00:00:00Z, an interval start
SCOPES = ["ch:voice", "ch:voice|q:sales", "agent:a|b", "ch:chat"]
NAMES = ["offered", "answered", "answer_wait_ms", "handle_ms", "stage_entered:ivr"]


async def fill(redis: Redis, rng: random.Random) -> dict[tuple[int, str], dict[str, int]]:
    """Random minute buckets over two intervals and every partition (negative, zero and large
    values too); returns the plain sums per (interval start, scope)."""
    want: dict[tuple[int, str], dict[str, int]] = {}
    for interval in (INTERVAL_START_S, INTERVAL_START_S + keys.INTERVAL_SECONDS):
        for minute in range(15):
            start = interval + minute * keys.MINUTE_SECONDS
            for partition in range(PARTITIONS):
                fields: dict[str, int] = {}
                for scope in rng.sample(SCOPES, rng.randint(0, len(SCOPES))):
                    for name in rng.sample(NAMES, rng.randint(1, len(NAMES))):
                        value = rng.choice([0, -3, 1, 7, rng.randint(1, 10**12)])
                        fields[keys.counter_field(scope, name)] = value
                        cell = want.setdefault((interval, scope), {})
                        cell[name] = cell.get(name, 0) + value
                if fields:
                    key = keys.partition_counter_key(partition, "m", start)
                    await redis.hset(key, mapping=fields)  # type: ignore[arg-type]
    return want


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_summed_in_redis_equals_the_buckets_summed_here(
    redis: Redis, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    want = await fill(redis, rng)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'history.db'}")
    engine = make_engine(settings)
    writer = HistoryWriter(settings, redis, engine)
    cells = sorted(rng.sample(sorted(want), len(want) // 2))  # some cells only: the rest ignored
    cells.append((INTERVAL_START_S, "ch:nothing-here"))
    got = await writer._read(cells, range(PARTITIONS))
    assert got == [want.get(cell, {}) for cell in cells]
    assert sum(len(row) for row in got) > len(cells)  # not a trivial sample
    await engine.dispose()
