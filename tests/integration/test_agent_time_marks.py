"""The history writer rolls agents' time at most once an interval (a replay runs its passes
back to back); late state-change marks wait in Redis meanwhile, so a writer that restarts
(or another that takes the lock) still re-rolls them. Real Redis; the SQL side is recorded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from redis.asyncio import Redis

from aggregator.rollup import HistoryWriter
from ccpulse.stack import EmbeddedRedis
from services import keys
from services.database import make_engine
from services.settings import Settings

START = 1_893_456_000  # an interval start


class Recorder:
    """Stands in for AgentTimeRoller's SQL work: what each pass was asked to roll."""

    def __init__(self) -> None:
        self.passes: list[tuple[float, list[tuple[int, str]]]] = []

    async def cycle(self, now_s: float, dirty: Sequence[tuple[int, str]]) -> None:
        self.passes.append((now_s, sorted(dirty)))


def late(agent: str, start: int = START) -> str:
    return keys.dirty_member(start, keys.agent_scope(agent))


async def test_late_marks_wait_in_redis_and_roll_once_an_interval(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    redis = Redis.from_url(clean_redis.url)
    await redis.flushall()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'history.db'}", history_interval_seconds=5
    )
    engine = make_engine(settings)
    try:
        writer, first = HistoryWriter(settings, redis, engine), Recorder()
        writer.agent_time = first  # type: ignore[assignment]
        await writer._agent_time(100.0, [late("ann")])
        assert first.passes == [(100.0, [(START, "ann")])]
        await writer._agent_time(101.0, [late("bo|b", START + 900)])  # within the interval
        assert len(first.passes) == 1
        assert await redis.smembers(keys.AGENT_TIME_DIRTY) == {late("bo|b", START + 900).encode()}

        restarted, second = HistoryWriter(settings, redis, engine), Recorder()
        restarted.agent_time = second  # type: ignore[assignment]
        await restarted._agent_time(102.0, [])
        assert second.passes == [(102.0, [(START + 900, "bo|b")])]  # nothing lost
        assert not await redis.exists(keys.AGENT_TIME_DIRTY)
        await restarted._agent_time(103.0, [late("cy")])
        await restarted._agent_time(107.0, [])
        assert second.passes[1:] == [(107.0, [(START, "cy")])]
    finally:
        await engine.dispose()
        await redis.aclose()
