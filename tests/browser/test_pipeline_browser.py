"""The whole stack under the page: events posted to ingest, through the real broker and the
aggregator into Redis, out of the api's websocket into Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.scenario import Day, generate, iso
from tests.clock import clock
from tests.harness import Pipeline

from .helpers import LIVE, agree, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


class Api:
    def __init__(self, pipeline: Pipeline) -> None:
        self.url = pipeline.api_url

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


def recent(seed: int, seconds: float, contacts: int) -> list[dict[str, Any]]:
    """Contacts that started in the last `seconds`, cut at now: only what already happened."""
    now = clock.now()
    events = generate(
        Day(seed=seed, prefix=f"web{seed}"), now - seconds, contacts, contacts / seconds
    )
    return [e for e in events if e["time"] <= iso(now - 1)]


def test_wallboard_follows_events_through_the_pipeline(
    pipeline_factory: Any, page_factory: Any, artifacts: Path
) -> None:
    pipeline: Pipeline = pipeline_factory({"CCPULSE_TIMEZONE": "America/New_York"})
    api = Api(pipeline)
    first = recent(61, 420, 120)
    pipeline.post(first)
    pipeline.wait_applied(len(first), 60)

    page = page_factory(1600, 1000)
    page.goto(f"{pipeline.api_url}/", wait_until="domcontentloaded")
    page.wait_for_selector(LIVE, timeout=15_000)
    wait_for(lambda: agree(page, api), 20, "page figures equal to /api/v1/live")
    assert page.text_content("#tz") == "America/New_York"
    before = api.get("/api/v1/live")["channels"]["voice"]["offered"]

    more = recent(62, 45, 40)
    pipeline.post(more)
    pipeline.wait_applied(len(first) + len(more), 60)
    after = api.get("/api/v1/live")["channels"]["voice"]["offered"]
    assert after > before
    sel = '[data-scope="channel"][data-channel="voice"][data-field="offered"][data-window="15m"]'
    wait_for(
        lambda: page.get_attribute(sel, "data-value") == str(after),
        10,
        "the new events on the page",
    )
    wait_for(lambda: agree(page, api), 20, "every figure to agree after new events")
    assert page.errors == []
    page.screenshot(path=str(artifacts / "wallboard-pipeline.png"), full_page=True)

    tv = page_factory(1920, 1080)
    tv.goto(f"{pipeline.api_url}/?tv=1", wait_until="domcontentloaded")
    tv.wait_for_selector(LIVE, timeout=15_000)
    wait_for(lambda: agree(tv, api), 20, "TV figures equal to /api/v1/live")
    assert tv.evaluate("document.documentElement.scrollHeight <= innerHeight + 1")
    tv.screenshot(path=str(artifacts / "tv-pipeline.png"))
