"""The one lock (`services.locks`): taken when free, renewed by its holder, refused to others.

The alert evaluator and the history writer hold it through the same script, so one can be seen
to exclude the other on a real Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from aggregator.rollup import LOCK_MS, HistoryWriter
from api.alerts.alert_state import LeaderLock
from ccpulse.stack import EmbeddedRedis
from services import keys
from services.database import make_engine, upgrade_async
from services.settings import Settings
from tests.clock import clock

TTL_S = 30.0


@pytest.fixture
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def test_one_holder_renews_and_others_wait_until_it_releases(redis: Redis) -> None:
    first, second = LeaderLock(redis, TTL_S), LeaderLock(redis, TTL_S)
    assert await first.hold() and first.held
    assert not await second.hold() and not second.held
    await redis.pexpire(keys.ALERTS_LEADER_LOCK, 1000)
    assert await first.hold()  # renewed: the time to live is back to the lock's own
    assert await redis.pttl(keys.ALERTS_LEADER_LOCK) > 1000
    await second.release()  # not its lock: nothing happens
    assert not await second.hold()
    await first.release()
    assert await second.hold()


async def test_the_history_writer_and_the_alert_lock_share_one_script(
    redis: Redis, tmp_path: Path
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'history.db'}")
    await upgrade_async(settings)
    engine = make_engine(settings)
    writer = HistoryWriter(settings, redis, engine)
    other = LeaderLock(redis, TTL_S, key=keys.HISTORY_LOCK)
    assert await other.hold()
    assert await writer.cycle(clock.now()) == 0  # another holds it: nothing rolled
    await other.release()
    await writer.cycle(clock.now())
    assert await redis.get(keys.HISTORY_LOCK) == writer.token.encode()
    assert 0 < await redis.pttl(keys.HISTORY_LOCK) <= LOCK_MS
    assert not await other.hold()
    await engine.dispose()
