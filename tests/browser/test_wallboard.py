"""The wallboard in real Chromium against the real api and Redis: figures, updates, staleness,
restarts, TV mode. Screenshots go to tests/artifacts/ for people to look at."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from services import keys, kpis

from . import floor
from .conftest import Feed, LiveApi
from .helpers import LIVE, agree, figures, open_wallboard, wait_for

pytestmark = pytest.mark.browser


def test_figures_on_the_page_equal_the_live_api(
    live_api: LiveApi, feed: Feed, page_factory: Any, artifacts: Path
) -> None:
    floor.seed(feed)
    page = page_factory(1600, 1000)
    open_wallboard(page, live_api)

    wait_for(lambda: agree(page, live_api), 15, "page figures equal to /api/v1/live")
    live = live_api.get("/api/v1/live")
    shown = figures(page)
    # Every channel, queue and agent of the document is on the page, with every tile figure.
    for channel in live["channels"]:
        fields = {f["field"] for f in shown if f["scope"] == "channel" and f["channel"] == channel}
        assert fields >= {
            "in_queue",
            "longest_wait_seconds",
            "service_level",
            "abandon_rate",
            "asa_seconds",
            "aht_seconds",
            "fcr_rate",
            "answered",
            "offered",
        }, channel
        today = [f for f in shown if f.get("channel") == channel and f["window"] == "today"]
        assert {f["field"] for f in today} == {"answered", "offered"}
    assert {f["queue"] for f in shown if f["scope"] == "queue"} == set(live["queues"])
    assert {f["agent"] for f in shown if f["scope"] == "agent"} == set(live["agents"])

    # What people read is the same number, formatted.
    # The tile's window figures; "today" figures are checked on their own (near midnight they
    # differ from the 15-minute window, which then spans two days).
    voice = {
        f["field"]: f
        for f in shown
        if f["scope"] == "channel" and f["channel"] == "voice" and f["window"] != "today"
    }
    voice_today = {
        f["field"]: f
        for f in shown
        if f["scope"] == "channel" and f["channel"] == "voice" and f["window"] == "today"
    }
    today_doc = live_api.get("/api/v1/live", window="today")
    assert (
        voice["service_level"]["text"] == f"{100 * live['channels']['voice']['service_level']:.0f}%"
    )
    assert voice["offered"]["text"] == f"{live['channels']['voice']['offered']:,}"
    assert voice["in_queue"]["text"] == str(live["channels"]["voice"]["in_queue"])
    assert voice_today["offered"]["text"] == f"{today_doc['channels']['voice']['offered']:,}"

    # Colours follow the default thresholds (SL < 80 % warn, < 70 % critical, waits > 60/120 s).
    for f in shown:
        if f["scope"] == "queue" and f["field"] == "service_level" and f["value"] is not None:
            want = "critical" if f["value"] < 0.7 else "warning" if f["value"] < 0.8 else "ok"
            assert f["status"] == want, f
    chat_wait = next(
        f for f in shown if f.get("channel") == "chat" and f["field"] == "longest_wait_seconds"
    )
    assert chat_wait["status"] == "critical"  # 200 s > 120 s

    # The IVR funnel and the charts carry the api's numbers.
    stages = page.eval_on_selector_all(
        '.funnel[data-channel="voice"] .stage',
        "els => els.map(e => [e.dataset.stage, +e.dataset.entered, +e.dataset.abandoned])",
    )
    assert stages == [
        [s["stage"], s["entered"], s["abandoned"]] for s in live["channels"]["voice"]["ivr_funnel"]
    ]
    chart = page.get_attribute('[data-chart="answered_within"][data-channel="voice"]', "data-value")
    assert (
        chart is not None
        and __import__("json").loads(chart) == live["channels"]["voice"]["answered_within"]
    )
    assert (
        page.locator('[data-chart="first_response_buckets"][data-channel="email"] canvas').count()
        == 1
    )

    # Time zone from the document; no errors in the page.
    assert page.text_content("#tz") == live["timezone"]
    assert page.errors == []
    page.screenshot(path=str(artifacts / "wallboard.png"), full_page=True)
    page.set_viewport_size({"width": 1600, "height": 1000})
    page.screenshot(path=str(artifacts / "wallboard-top.png"))


def test_figures_follow_the_counters_without_a_reload(
    live_api: LiveApi, feed: Feed, page_factory: Any
) -> None:
    floor.seed(feed)
    page = page_factory()
    open_wallboard(page, live_api)
    before = live_api.get("/api/v1/live")["channels"]["voice"]["offered"]
    page.evaluate("window.__marker = 1")  # a reload would lose it

    feed.counters(
        keys.channel_scope("voice"), {kpis.OFFERED: 7, kpis.ABANDONED: 1, kpis.ABANDONED_IVR: 1}
    )
    feed.counters(
        keys.channel_scope("sms"), {kpis.OFFERED: 4, kpis.ANSWERED: 3, f"{kpis.ANSWER_HIST}13": 3}
    )
    feed.answered(keys.channel_scope("voice"), "w-sales-0")
    feed.publish()

    voice_offered = (
        '[data-scope="channel"][data-channel="voice"][data-field="offered"][data-window="15m"]'
    )
    wait_for(
        lambda: page.get_attribute(voice_offered, "data-value") == str(before + 7),
        10,
        "voice offered to move on the page",
    )
    page.wait_for_selector('.tile[data-channel="sms"]', timeout=10_000)
    wait_for(lambda: agree(page, live_api), 10, "all figures to agree after the change")
    assert page.evaluate("window.__marker") == 1


def test_stale_indicator_when_updates_stop_and_recovery(
    live_api: LiveApi, live_redis: Any, feed: Feed, page_factory: Any, artifacts: Path
) -> None:
    """Redis hangs (SIGSTOP): the api cannot build updates, the socket stays open but silent."""
    floor.seed(feed)
    page = page_factory()
    open_wallboard(page, live_api)
    assert page.get_attribute("body", "data-stale") == "false"
    assert page.is_hidden("#stale-banner")

    live_redis.pause()
    try:
        started = time.monotonic()
        page.wait_for_selector("#stale-banner:not([hidden])", timeout=25_000)
        waited = time.monotonic() - started
        assert 8 <= waited <= 22, waited  # 10 s without a message, not before
        assert page.get_attribute("body", "data-stale") == "true"
        assert page.get_attribute("#link", "data-link") == "stale"
        assert "NOT current" in (page.text_content("#stale-banner") or "")
        wait_for(
            lambda: page.eval_on_selector("#views", "e => +getComputedStyle(e).opacity") < 0.6,
            3,
            "figures to dim",
        )
        page.screenshot(path=str(artifacts / "wallboard-stale.png"))
    finally:
        live_redis.resume()

    feed.counters(keys.channel_scope("voice"), {kpis.OFFERED: 5})
    feed.publish()
    page.wait_for_selector(LIVE, timeout=30_000)
    page.wait_for_selector("#stale-banner[hidden]", state="attached", timeout=5_000)
    want = live_api.get("/api/v1/live")["channels"]["voice"]["offered"]
    sel = '[data-scope="channel"][data-channel="voice"][data-field="offered"][data-window="15m"]'
    wait_for(
        lambda: page.get_attribute(sel, "data-value") == str(want),
        10,
        "fresh figures after recovery",
    )


def test_page_recovers_after_the_api_restarts(
    live_api: LiveApi, feed: Feed, page_factory: Any
) -> None:
    floor.seed(feed)
    page = page_factory()
    open_wallboard(page, live_api)
    page.evaluate("window.__marker = 1")

    live_api.stop()
    page.wait_for_selector('#link[data-link="reconnecting"]', timeout=10_000)
    feed.counters(
        keys.channel_scope("chat"), {kpis.OFFERED: 11, kpis.ANSWERED: 2, f"{kpis.ANSWER_HIST}2": 2}
    )
    time.sleep(3)  # the page retries into a closed port a few times (backoff grows)
    live_api.start()

    page.wait_for_selector(LIVE, timeout=30_000)
    want = live_api.get("/api/v1/live")["channels"]["chat"]["offered"]
    sel = '[data-scope="channel"][data-channel="chat"][data-field="offered"][data-window="15m"]'
    wait_for(
        lambda: page.get_attribute(sel, "data-value") == str(want), 10, "figures after restart"
    )
    assert page.evaluate("window.__marker") == 1  # same page: no reload was needed


def test_agents_sort_and_filter(live_api: LiveApi, feed: Feed, page_factory: Any) -> None:
    floor.seed(feed)
    page = page_factory()
    open_wallboard(page, live_api)
    rows = "#agents-table tbody tr:not([hidden])"

    def column(field: str) -> list[Any]:
        return page.eval_on_selector_all(
            f'{rows} td[data-field="{field}"]', "els => els.map(e => JSON.parse(e.dataset.value))"
        )

    # Default: by state (available first), the longest in a state first.
    states = column("state")
    assert states[0] == "available"
    page.click('#agents-table th[data-sort="answered"]')
    answered = column("answered")
    assert answered == sorted(answered, reverse=True)
    page.click('#agents-table th[data-sort="answered"]')
    assert column("answered") == sorted(answered)
    page.click('#agents-table th[data-sort="agent"]')
    assert column("agent") == sorted(floor.AGENTS)

    page.fill('input[data-filter="text"]', "ca")
    wait_for(lambda: column("agent") == ["carol"], 5, "the name filter")
    page.fill('input[data-filter="text"]', "")
    page.select_option('select[data-filter="state"]', "on_contact")
    wait_for(
        lambda: set(column("agent")) == {"bob", "carol", "grace", "ivan"}, 5, "the state filter"
    )
    # Agents carry the queues they serve: filter by one.
    page.select_option('select[data-filter="state"]', "")
    assert page.is_visible('select[data-filter="queue"]')
    page.select_option('select[data-filter="queue"]', "support")
    support = {a for a, (_, _, q) in floor.AGENTS.items() if q == "support"}
    wait_for(lambda: set(column("agent")) == support, 5, "the queue filter")


def test_tv_mode_keeps_channels_and_queues_and_rotates_only_the_side_panel(
    live_api: LiveApi, feed: Feed, page_factory: Any, artifacts: Path
) -> None:
    floor.seed(feed)
    floor.many_agents(feed, 36)
    page = page_factory(1920, 1080)
    open_wallboard(page, live_api, "?tv=1&rotate=3")
    assert page.evaluate("document.body.classList.contains('tv')")
    today = '[data-channel="voice"][data-field="offered"][data-window="today"]'
    wait_for(
        lambda: page.get_attribute(today, "data-value") not in (None, "null"), 10, "today's totals"
    )
    assert page.evaluate("document.documentElement.scrollHeight <= innerHeight + 1")
    assert page.is_hidden(".nav") and page.is_hidden("#agent-controls")
    big = page.eval_on_selector(
        ".metric.big .value", "e => parseFloat(getComputedStyle(e).fontSize)"
    )
    assert big >= 48  # readable across a room on a 1080p screen
    page.screenshot(path=str(artifacts / "tv.png"))

    # The side panel (IVR, answer times, agents...) changes; channels and queues never leave.
    seen = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(seen) < 3:
        seen.add(page.get_attribute("#views", "data-secondary"))
        assert page.is_visible('[data-view="channels"]') and page.is_visible('[data-view="queues"]')
        assert page.evaluate("document.documentElement.scrollHeight <= innerHeight + 1")
        time.sleep(0.5)
    assert len(seen) >= 2 and "none" not in seen, seen
    page.screenshot(path=str(artifacts / "tv-side-panel.png"))
    assert page.errors == []


def test_alert_banner_from_the_socket_document(
    live_api: LiveApi, feed: Feed, page_factory: Any, artifacts: Path
) -> None:
    """No alerter yet: GET /api/v1/alerts answers 404 and the banner stays hidden, quietly."""
    floor.seed(feed)
    page = page_factory()
    open_wallboard(page, live_api)
    assert page.is_hidden("#alerts")
    assert page.errors == []


def test_agents_available_on_tiles_and_queues_and_sort_by_keyboard(
    live_api: LiveApi, feed: Feed, page_factory: Any, artifacts: Path
) -> None:
    """Issue 16: each channel tile and queue row shows its agents available, equal to the api's;
    agent headers are reached with Tab and sort with Enter and Space."""
    floor.seed(feed)
    page = page_factory(1600, 1000)
    open_wallboard(page, live_api)
    wait_for(lambda: agree(page, live_api), 15, "page figures equal to /api/v1/live")
    live = live_api.get("/api/v1/live")
    tile = '#tiles [data-scope="channel"][data-channel="{}"][data-field="agents.available"]'
    for channel, fig in live["channels"].items():
        available = fig["agents"]["available"]
        # The floor's own count, independent of the api: agents available on a queue of it.
        want = sum(
            1
            for state, _, queue in floor.AGENTS.values()
            if state == "available" and (channel, queue) in floor.QUEUES
        )
        assert available == want, channel
        el = page.locator(tile.format(channel))
        assert el.get_attribute("data-value") == str(available), channel
        assert el.inner_text() == f"agents available {available}", channel
    assert live["channels"]["voice"]["agents"]["available"] > 0  # the check is not 0 == 0
    for queue, fig in live["queues"].items():
        cell = page.locator(f'#queues-body td[data-queue="{queue}"][data-field="agents.available"]')
        assert cell.get_attribute("data-value") == str(fig["agents"]["available"]), queue
        assert cell.inner_text() == str(fig["agents"]["available"]), queue
    page.screenshot(path=str(artifacts / "wallboard-agents-available.png"))

    rows = "#agents-table tbody tr:not([hidden])"
    header = '#agents-table th[data-sort="answered"]'

    def answered() -> list[Any]:
        return page.eval_on_selector_all(
            f'{rows} td[data-field="answered"]', "els => els.map(e => JSON.parse(e.dataset.value))"
        )

    # Tab from the agent search box (the last control before the table) reaches the headers.
    page.focus('input[data-filter="text"]')
    focused = ""
    for _ in range(12):  # bounded: the controls, then the headers in order
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.closest('th')?.dataset.sort ?? ''")
        if focused == "answered":
            break
    assert focused == "answered", "Tab never reached the Answered header"
    assert page.get_attribute(header, "aria-sort") == "none"
    page.keyboard.press("Enter")
    wait_for(lambda: page.get_attribute(header, "aria-sort") == "descending", 5, "Enter sorts")
    assert answered() == sorted(answered(), reverse=True)
    page.keyboard.press("Space")
    wait_for(lambda: page.get_attribute(header, "aria-sort") == "ascending", 5, "Space sorts")
    assert answered() == sorted(answered())


def test_an_alert_link_marks_its_queue(live_api: LiveApi, feed: Feed, page_factory: Any) -> None:
    """An alert's generatorURL (/?channel=voice&queue=sales) opens the wallboard with that
    queue's row marked, and only that one."""
    floor.seed(feed)
    page = page_factory(1600, 1000)
    open_wallboard(page, live_api, "?channel=voice&queue=sales")
    marked = '#queues-body td[data-focus="true"]'
    wait_for(lambda: page.locator(marked).count() > 0, 15, "the alert's queue marked")
    rows = page.eval_on_selector_all(marked, "tds => [...new Set(tds.map(td => td.dataset.queue))]")
    assert rows == ["sales"]
    assert page.locator('#queues-body td[data-focus="false"]').count() > 0  # the others not
    assert page.errors == []
