"""Agents per channel and queue on the pages, through the whole stack (issue 16): agent states
posted to ingest, through the broker and the aggregator, read by the api, shown by the plain page
(`/basic`, for low-end screens) and by the wallboard's agents panel with their time in state.
Each count on the page equals a recount from the table of tests/integration/api/
test_agents_by_scope.py and the api's own document; each time in state equals the api's (moved on
by the seconds between the page's document and the api's)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.clock import clock
from tests.harness import Pipeline
from tests.integration.api.test_agents_by_scope import AGENTS, BUCKETS, QUEUES, events, recount

from . import floor
from .conftest import Feed, LiveApi
from .helpers import LIVE, agree, wait_for
from .test_pipeline_browser import Api

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

BASIC_CELLS = """() => Array.from(document.querySelectorAll('#agents-body td[data-field]'))
  .map(td => ({
  scope: td.dataset.scope, name: td.dataset[td.dataset.scope], field: td.dataset.field,
  value: Number(td.dataset.value), longest: td.dataset.longest ?? null, text: td.textContent }))"""

CARD_TIMES = """() => Array.from(document.querySelectorAll('#agent-scopes .scope-card'))
  .flatMap(c =>
  Array.from(c.querySelectorAll('.in-state')).map(s => ({ card: c.dataset.card,
    state: s.dataset.stateTime, count: Number(s.dataset.count),
    longest: JSON.parse(s.dataset.longest), total: Number(s.dataset.total),
    text: s.textContent })))"""


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def members(kind: str, name: str) -> list[str]:
    if kind == "queue":
        return [a for a, spec in AGENTS.items() if name in spec[4]]
    return [a for a, spec in AGENTS.items() if any(QUEUES[q] == name for q in spec[4])]


def scope_doc(live: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = live["channels" if kind == "channel" else "queues"][name]["agents"]
    return found


def started(pipeline_factory: Any) -> tuple[Pipeline, Api]:
    pipeline: Pipeline = pipeline_factory({"CCPULSE_TIMEZONE": "Europe/Paris"})
    posted = [{"id": f"abs-{n}", **e} for n, e in enumerate(events(clock.now()))]
    pipeline.post(posted)
    pipeline.wait_applied(len(posted), 60)
    return pipeline, Api(pipeline)


def test_basic_page_and_agents_panel_show_agents_per_scope(
    pipeline_factory: Any, page_factory: Any, artifacts: Path
) -> None:
    pipeline, api = started(pipeline_factory)
    live = api.get("/api/v1/live")
    scopes = [("queue", q) for q in QUEUES] + [("channel", c) for c in set(QUEUES.values())]
    for kind, name in scopes:  # the stack agrees with the recount before any page is read
        want = recount(members(kind, name))
        got = scope_doc(live, kind, name)
        assert {b: got[b] for b in BUCKETS} == {b: want[b] for b in BUCKETS}, name
        assert got["not_ready_by_reason"] == want["not_ready_by_reason"], name

    # The plain page, on a small screen.
    basic = page_factory(1366, 768)
    basic.goto(f"{pipeline.api_url}/basic", wait_until="domcontentloaded")
    basic.wait_for_selector("#agents:not([hidden]) #agents-body tr", timeout=15_000)
    cells = basic.evaluate(BASIC_CELLS)
    assert {(c["scope"], c["name"]) for c in cells} == set(scopes)
    for c in cells:
        bucket = c["field"].removeprefix("agents.")
        want = recount(members(c["scope"], c["name"]))
        assert c["value"] == want[bucket], c
        timing = scope_doc(live, c["scope"], c["name"])["current_state_seconds"][bucket]
        if want[bucket]:
            longest = float(c["longest"])
            assert timing["longest_seconds"] <= longest <= timing["longest_seconds"] + 30, c
            assert ("longest" if want[bucket] > 1 else "for") in c["text"], c
        else:
            assert c["longest"] is None, c
        if bucket == "not_ready":
            for reason, n in want["not_ready_by_reason"].items():
                assert f"{reason} {n}" in c["text"], c
    assert basic.errors == []
    basic.screenshot(path=str(artifacts / "basic-agents-1366x768.png"), full_page=True)

    # The wallboard's agents panel: one card per channel and queue with agents.
    board = page_factory(1920, 1080)
    board.goto(f"{pipeline.api_url}/", wait_until="domcontentloaded")
    board.wait_for_selector(LIVE, timeout=15_000)
    board.wait_for_selector("#agent-scopes:not([hidden]) .scope-card", timeout=15_000)
    wait_for(lambda: agree(board, api), 20, "page figures (agent counts too) equal to the api")
    as_of = board.get_attribute("body", "data-as-of")
    assert as_of is not None
    times = board.evaluate(CARD_TIMES)
    assert {t["card"] for t in times} == {f"{k}:{n}" for k, n in scopes}
    now = api.get("/api/v1/live")
    lag = _epoch(now["as_of"]) - _epoch(as_of)
    for t in times:
        kind, name = t["card"].split(":", 1)
        timing = scope_doc(now, kind, name)["current_state_seconds"][t["state"]]
        want = recount(members(kind, name))
        assert t["count"] == want[t["state"]], t
        if not t["count"]:
            assert t["longest"] is None and t["total"] == 0 and t["text"] == "", t
            continue
        # The page's document is older than the api's by `lag`: every agent that much less.
        assert t["longest"] == pytest.approx(timing["longest_seconds"] - lag, abs=0.05), t
        assert t["total"] == pytest.approx(timing["total_seconds"] - t["count"] * lag, abs=0.2), t
        assert t["text"].startswith("longest " if t["count"] > 1 else "for "), t
    reasons = board.get_attribute(
        '#agent-scopes [data-card="queue:sales"] [data-field="agents.not_ready_by_reason"]',
        "data-value",
    )
    assert reasons is not None and json.loads(reasons) == {"Lunch": 1, "Training": 1}
    assert board.errors == []
    board.locator('[data-view="agents"]').screenshot(
        path=str(artifacts / "wallboard-agents-by-scope-1920x1080.png")
    )

    # A change after the page loaded reaches it: the plain page asks for whole documents
    # (`?updates=full`), as it applies no patches.
    agent = next(a for a in AGENTS if live["agents"].get(a, {}).get("state") != "offline")
    queue = AGENTS[agent][4][0]

    def offline_on_page() -> int:
        return next(
            c["value"]
            for c in basic.evaluate(BASIC_CELLS)
            if (c["scope"], c["name"], c["field"]) == ("queue", queue, "agents.offline")
        )

    before = offline_on_page()
    change = {"id": "abs-later", "type": "agent.state", "time": _iso(clock.now()), "agent": agent}
    pipeline.post([{**change, "state": "offline"}])
    wait_for(lambda: offline_on_page() == before + 1, 30, "the plain page's next update")


def test_basic_page_signs_in_first_and_shows_agents(
    live_api: LiveApi, feed: Feed, page_factory: Any
) -> None:
    """With access control on, the plain page without a session goes to the sign-in page, and
    back to itself once signed in."""
    floor.seed(feed)
    page = page_factory(1366, 768)
    page.goto(f"{live_api.url}/basic", wait_until="domcontentloaded")
    page.wait_for_url(re.compile(r"/login\?next=%2Fbasic"), timeout=15_000)
    page.fill("input[name=key]", live_api.viewer_key)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/basic$"), timeout=15_000)
    page.wait_for_selector("#agents:not([hidden]) #agents-body tr", timeout=15_000)
    live = live_api.get("/api/v1/live")
    checked = 0
    for channel, fig in live["channels"].items():
        cell = page.locator(
            f'#agents-body tr.channel td[data-channel="{channel}"][data-field="agents.available"]'
        )
        if any(fig["agents"][b] for b in BUCKETS):
            assert cell.get_attribute("data-value") == str(fig["agents"]["available"]), channel
            checked += 1
    assert checked >= 2
    assert page.errors == []
