"""Colours that tell the truth per channel: a written channel within its own target is green.

Every figure of this floor meets its channel's target (all answered within 5 s, no abandons),
while e-mail, SMS and social have contacts waiting minutes: within their targets (1 day, 1 h,
1 h), far beyond voice's. Nothing may be amber or red; then a voice caller waiting past voice's
limit turns its tile red, so the check can fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services import keys, kpis
from tests.clock import clock

from .conftest import Feed, LiveApi
from .helpers import agree, open_wallboard, wait_for

pytestmark = pytest.mark.browser

QUEUES = {
    "voice": "sales",
    "chat": "web-chat",
    "email": "inbox",
    "sms": "texts",
    "social": "mentions",
}
WAITING_S = {"voice": (8,), "chat": (30,), "email": (139, 2400), "sms": (300,), "social": (180,)}
ALARMS = '[data-status="warning"]:not([hidden]), [data-status="critical"]:not([hidden])'


def on_target(feed: Feed, now: float) -> None:
    answered = 20
    counters = {
        kpis.OFFERED: answered,
        kpis.QUEUED: answered,
        kpis.ANSWERED: answered,
        kpis.ANSWER_WAIT_MS: answered * 2500,
        f"{kpis.ANSWER_HIST}0": answered,  # every answer within 5 s
        kpis.HANDLED: answered,
        kpis.HANDLE_MS: answered * 240_000,
    }
    for channel, queue in QUEUES.items():
        for scope in (keys.channel_scope(channel), keys.queue_scope(channel, queue)):
            feed.counters(scope, counters, now - 60)
            for n, age in enumerate(WAITING_S[channel]):
                feed.waiting(scope, f"w-{channel}-{n}", now - age)
    feed.publish()


def alarms(page: Any) -> list[str]:
    found: list[str] = page.eval_on_selector_all(
        ALARMS,
        "els => els.map(e => [e.closest('[data-channel]')?.dataset.channel,"
        " e.closest('[data-queue]')?.dataset.queue, e.dataset.field, e.dataset.status].join(' '))",
    )
    return found


def test_no_alarm_while_every_channel_meets_its_own_target(
    live_api: LiveApi, feed: Feed, page_factory: Any, artifacts: Path
) -> None:
    now = clock.now()
    on_target(feed, now)
    config = live_api.get("/api/v1/config")
    assert config["channel_thresholds"]["email"]["longest_wait_seconds"]["warning"] >= 86400
    page = page_factory(1600, 1000)
    open_wallboard(page, live_api)
    wait_for(lambda: agree(page, live_api), 15, "page figures equal to /api/v1/live")
    for channel in QUEUES:
        shown = page.locator(
            f'[data-scope="channel"][data-channel="{channel}"][data-field="longest_wait_seconds"]'
        )
        assert shown.count() >= 1, channel
    assert alarms(page) == []
    page.screenshot(path=str(artifacts / "wallboard-on-target.png"), full_page=True)

    # A voice caller past voice's critical limit (120 s): the voice tile turns red, e-mail's
    # two-minute wait still does not.
    feed.waiting(keys.channel_scope("voice"), "w-voice-late", now - 200)
    feed.waiting(keys.queue_scope("voice", "sales"), "w-voice-late", now - 200)
    feed.publish()
    wait_for(lambda: any("voice" in a and "critical" in a for a in alarms(page)), 15, "voice red")
    assert all(a.startswith("voice ") or " sales " in f" {a} " for a in alarms(page)), alarms(page)
