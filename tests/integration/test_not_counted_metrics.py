"""`/metrics` shows the events that counted partially or not at all, by reason, from Redis stats."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from aggregator import engine
from api.live_reader import LiveReader
from api.metrics import render
from ccpulse.stack import EmbeddedRedis
from services import keys
from services.contract import ContactEvent
from services.settings import Settings
from tests.clock import clock


def _answer_only() -> ContactEvent:
    return ContactEvent.model_validate(
        {
            "id": "x1",
            "type": "contact.answered",
            "time": "2026-11-24T10:00:00Z",
            "contact": "A",
            "channel": "voice",
            "agent": "ann",
        }
    )


async def _scrape(url: str, fields: dict[str, int]) -> str:
    redis = Redis.from_url(url)
    try:
        for name, value in fields.items():
            await redis.hincrby(keys.STATS, name, value)
        reader = LiveReader(redis, Settings(auth="off"))
        return (await render(reader, clock.now())).decode()
    finally:
        await redis.aclose()


def test_the_plans_reasons_reach_metrics_by_reason(clean_redis: EmbeddedRedis) -> None:
    plan = engine.plan([_answer_only()], {}, {})
    # What the store writes for a plan: HINCRBY stats not_counted:<reason> n (lead: store.py).
    fields = {f"{keys.NOT_COUNTED_STAT}{r}": n for r, n in plan.not_counted().items()}
    text = asyncio.run(_scrape(clean_redis.url, fields))
    line = 'ccpulse_aggregator_events_not_counted_total{reason="answer_without_wait"} 1.0'
    assert line in text
