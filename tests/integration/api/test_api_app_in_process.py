"""The api app in this process (issue 15): `create_app(settings)` against the session's Redis,
with counters written by the aggregator's own plan-and-apply path (engine + store), so the
figures, the broadcaster's change feed and access checks are exercised without subprocesses.

Event times come from the tests' clock (tests/clock.py); every expectation is computed here from
the contacts each test writes, never hard-coded from a run.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from redis.asyncio import Redis

from aggregator import engine
from aggregator.store import APPLIED, Step, Store
from api import broadcaster
from api.app import create_app
from api.documents import AlertsDocument, ConfigDocument, LiveDocument
from ccpulse.stack import EmbeddedRedis
from services import keys
from simulator.scenario import iso
from tests.apiserver import ADMIN, VIEWER, api_settings, asgi_client, bearer, served
from tests.clock import clock
from tests.wallboard_feed import Feed

PROBLEM = "application/problem+json"
PARTITION = 0
UPDATE_WAIT_S = 8.0  # bounded wait for the broadcaster's update after a change notice


def contact(cid: str, start_s: float, outcome: str, wait_s: float, channel: str) -> list[Any]:
    """One contact's events: offered, queued, then answered or abandoned after `wait_s`."""
    base = {"contact": cid, "channel": channel, "queue": "sales"}
    end: dict[str, Any] = {"type": f"contact.{outcome}", "time": iso(start_s + wait_s)}
    if outcome == "answered":
        end["agent"] = "ann"
    return [
        {**base, "type": "contact.offered", "time": iso(start_s)},
        {**base, "type": "contact.queued", "time": iso(start_s + 1)},
        {**base, **end},
    ]


async def apply_events(url: str, events: list[dict[str, Any]], expected: int, now_s: float) -> int:
    """Plan and apply one batch exactly as the aggregator does (store.apply also publishes the
    change notice); returns the batch's last offset."""
    numbered = [{"id": f"ev{expected + 1 + i}", **e} for i, e in enumerate(events)]
    records = [
        engine.Record(PARTITION, expected + 1 + i, json.dumps(e).encode())
        for i, e in enumerate(numbered)
    ]
    parsed, dead = engine.screen(records, now_s, 48 * 3600)
    assert not dead
    plan = engine.plan(parsed, {}, {}, {})
    last = expected + len(events)
    redis = Redis.from_url(url)
    try:
        await redis.set(keys.PARTITIONS, 1)
        store = Store(redis, 3600, 48 * 3600)
        step = Step(keys.TOPIC_EVENTS, PARTITION, expected, last, plan)
        (outcome,) = await store.apply([step], now_s)
        assert outcome.code == APPLIED, outcome
    finally:
        await redis.aclose()
    return last


def expected_figures(outcomes: list[str]) -> dict[str, Any]:
    """Offered, answered, abandoned and the abandon rate (over offered; every abandon here is
    longer than the short-abandon threshold) of the contacts a test wrote."""
    offered = len(outcomes)
    abandoned = outcomes.count("abandoned")
    return {
        "offered": offered,
        "answered": outcomes.count("answered"),
        "abandoned": abandoned,
        "abandon_rate": abandoned / offered,
    }


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_live_figures_are_those_the_written_counters_imply(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    now = clock.now()
    plan = [("a", "answered", 20.0), ("b", "answered", 40.0), ("c", "abandoned", 60.0)]
    events = [
        e
        for n, (cid, outcome, wait) in enumerate(plan)
        for e in contact(cid, now - 240 + 10 * n, outcome, wait, "voice")
    ]
    await apply_events(clean_redis.url, events, -1, now)
    want = expected_figures([outcome for _, outcome, _ in plan])
    # The definitions expected_figures assumes, stated rather than inherited from defaults.
    settings = api_settings(
        clean_redis.url, tmp_path, abandon_denominator="offered", short_abandon_seconds=5
    )
    async with asgi_client(settings, clock) as api:
        live = await api.get("/api/v1/live?window=15m", headers=bearer(VIEWER))
        bad = await api.get("/api/v1/live?window=13m", headers=bearer(VIEWER))
    assert live.status_code == 200, live.text
    doc = LiveDocument.model_validate(live.json())
    assert doc.window == "15m"
    assert set(doc.channels) == {"voice"}
    raw = live.json()
    assert {k: raw["channels"]["voice"][k] for k in want} == pytest.approx(want)
    (queue,) = raw["queues"].values()
    assert {k: queue[k] for k in want} == pytest.approx(want)
    body = assert_problem(bad, 422)
    assert body["errors"][0]["field"] == "window" and body["detail"].startswith("window: ")


async def test_config_alerts_and_healthz_answer_their_documented_shapes(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    settings = api_settings(clean_redis.url, tmp_path, timezone="Europe/Paris")
    async with asgi_client(settings, clock) as api:
        config = await api.get("/api/v1/config", headers=bearer(VIEWER))
        alerts = await api.get("/api/v1/alerts", headers=bearer(VIEWER))
        health = await api.get("/healthz")
    assert config.status_code == 200, config.text
    conf = ConfigDocument.model_validate(config.json())
    assert conf.timezone == settings.timezone
    assert conf.short_abandon_seconds == settings.short_abandon_seconds
    assert conf.abandon_denominator == settings.abandon_denominator
    assert conf.service_level.variant == settings.sl_variant
    assert alerts.status_code == 200, alerts.text
    overview = AlertsDocument.model_validate(alerts.json())
    assert (overview.firing, overview.pending, overview.recent, overview.rules) == ([], [], [], [])
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_wallboard_socket_gets_a_snapshot_then_an_update_with_the_new_contact(
    clean_redis: EmbeddedRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The periodic refresh must not be what delivers the update: only the change notice may.
    monkeypatch.setattr(broadcaster, "REFRESH_S", 600.0)
    now = clock.now()
    first = contact("a", now - 200, "answered", 20.0, "voice")
    last = asyncio.run(apply_events(clean_redis.url, first, -1, now))
    settings = api_settings(clean_redis.url, tmp_path, auth="off", ws_min_interval_seconds=0.1)
    with served(settings) as base:
        url = base.replace("http://", "ws://") + "/ws/wallboard"
        snapshot, update = asyncio.run(_watch(url, clean_redis.url, last))
    assert snapshot["type"] == "snapshot"
    assert snapshot["data"]["channels"]["voice"]["offered"] == 1
    assert "chat" not in snapshot["data"]["channels"]
    assert update["type"] == "update"
    assert update["data"]["channels"]["voice"]["offered"] == 1
    assert update["data"]["channels"]["chat"]["offered"] == 1


async def _watch(url: str, redis_url: str, last: int) -> tuple[dict[str, Any], dict[str, Any]]:
    async with websockets.connect(url) as ws:
        feed = Feed(ws)
        snapshot = await feed.next(UPDATE_WAIT_S)
        now = clock.now()
        await apply_events(redis_url, contact("d", now - 30, "answered", 5.0, "chat"), last, now)
        async with asyncio.timeout(UPDATE_WAIT_S):
            while True:
                message = await feed.next(UPDATE_WAIT_S)
                if message["type"] == "update" and "chat" in message["data"]["channels"]:
                    break
    # The server's handler notices a closed socket only when it next sends: one more notice
    # lets it end now, so the server stops at once instead of waiting out the long refresh.
    redis = Redis.from_url(redis_url)
    try:
        await redis.publish(keys.CHANGES_CHANNEL, str(last + 1))
    finally:
        await redis.aclose()
    return snapshot, message


async def test_a_change_after_a_quiet_interval_is_pushed_at_once_and_the_next_waits(
    clean_redis: EmbeddedRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18: a push starts right after a change when the last one is an interval old (it
    used to sleep an interval after every wake-up, even one that pushed nothing); a change
    right after a push still waits for the interval (at most one update per interval)."""
    monkeypatch.setattr(broadcaster, "REFRESH_S", 600.0)  # only change notices wake it
    settings = api_settings(clean_redis.url, tmp_path, auth="off", ws_min_interval_seconds=60)
    app = create_app(settings, clock)
    pushes = app.state.api.broadcaster
    await pushes.start()
    try:
        now = clock.now()
        await _subscribed(clean_redis.url)
        last = await apply_events(
            clean_redis.url, contact("a", now - 90, "answered", 5, "voice"), -1, now
        )
        await asyncio.sleep(0.5)  # the notice woke the publisher with nobody to send to
        box = pushes.join()
        last = await apply_events(
            clean_redis.url, contact("b", now - 60, "answered", 5, "chat"), last, now
        )
        frame = await asyncio.wait_for(box.take(), UPDATE_WAIT_S)  # not after the interval
        assert isinstance(frame, broadcaster.Frame)
        assert frame.state["data"]["channels"]["chat"]["offered"] == 1
        await apply_events(clean_redis.url, contact("c", now - 30, "answered", 5, "sms"), last, now)
        with pytest.raises(TimeoutError):  # coalesced: the next push is an interval later
            await asyncio.wait_for(box.take(), 1.0)
    finally:
        await pushes.stop()
        await app.state.api.redis.aclose()


async def _subscribed(redis_url: str) -> None:
    """Until the api's change feed listens (bounded), so the first notice reaches it."""
    redis = Redis.from_url(redis_url)
    try:
        for _ in range(100):
            ((_, listeners),) = await redis.pubsub_numsub(keys.CHANGES_CHANNEL)
            if listeners:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the broadcaster never subscribed")
    finally:
        await redis.aclose()


async def test_access_on_refuses_anonymous_and_keeps_planner_routes_from_viewers(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    async with asgi_client(api_settings(clean_redis.url, tmp_path), clock) as api:
        anonymous = await api.get("/api/v1/live?window=15m")
        viewer_live = await api.get("/api/v1/live?window=15m", headers=bearer(VIEWER))
        viewer_volume = await api.get("/api/v1/volume", headers=bearer(VIEWER))
        admin_volume = await api.get("/api/v1/volume", headers=bearer(ADMIN))
    assert_problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert viewer_live.status_code == 200, viewer_live.text
    assert_problem(viewer_volume, 403)
    # The same route lets a higher role past the access check (no history database here, so
    # what it answers beyond that is not this test's concern): the 403 is the role's, not the
    # route's.
    assert admin_volume.status_code not in (401, 403, 404), admin_volume.text


async def test_staffing_without_history_is_no_forecast_not_zero_agents(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    """A first run: no past week has history, so no rows (it answered 96 rows of 0 agents)."""
    import asyncio

    from services import database

    settings = api_settings(clean_redis.url, tmp_path)
    await asyncio.to_thread(database.upgrade, settings)  # Alembic runs its own loop
    async with asgi_client(settings, clock) as api:
        answer = await api.get("/api/v1/staffing", headers=bearer(ADMIN))
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["rows"] == [] and doc["forecast"]["weeks_used"] == []
    assert doc["forecast"]["method"].startswith("no forecast")
