"""Drill-down from a wallboard tile in one click (issue 17), in real Chromium at 1920x1080 and
1366x768 over the whole stack: the dialog lists the contacts behind the tile's figure, its count
equals the figure, pages load on demand, and the keyboard opens it too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.scenario import Day, generate, iso
from tests.clock import clock
from tests.harness import Pipeline, wait_until

from .helpers import LIVE

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def get(p: Pipeline, path: str, **params: Any) -> Any:
    r = httpx.get(p.api_url + path, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("size", [(1920, 1080), (1366, 768)])
def test_a_tile_opens_the_contacts_behind_its_figures(
    pipeline_factory: Any, page_factory: Any, artifacts: Path, size: tuple[int, int]
) -> None:
    pipeline: Pipeline = pipeline_factory()
    now = clock.now()
    events = [
        e
        for e in generate(Day(seed=91, busy_factor=1.8, prefix="drill"), now - 700, 260, 260 / 700)
        if e["time"] <= iso(now - 1)
    ]
    assert pipeline.post(events) == len(events)
    pipeline.wait_applied(len(events), 60)

    def rolled() -> bool:  # the contacts table caught up with the live figures
        live = get(pipeline, "/api/v1/live")["channels"]["voice"]
        return all(
            get(pipeline, "/api/v1/contacts", figure=f, channel="voice", limit=1)["count"]
            == live[f]
            for f in ("offered", "answered", "abandoned")
        )

    wait_until(rolled, 60, "contact rows rolled", 1.0)
    live = get(pipeline, "/api/v1/live")["channels"]["voice"]
    assert live["offered"] > 50 and live["abandoned"] > 0

    page = page_factory(*size)
    page.goto(f"{pipeline.api_url}/", wait_until="domcontentloaded")
    page.wait_for_selector(LIVE, timeout=15_000)
    tile = '.tile[data-channel="voice"]'
    page.click(f'{tile} [data-drill="abandoned"]')
    page.wait_for_selector('#drill[data-state="ready"][data-figure="abandoned"]', timeout=10_000)
    assert page.get_attribute("#drill", "data-count") == str(live["abandoned"])
    shown = page.locator("#drill-rows tbody tr").count()
    assert shown == min(50, live["abandoned"])
    assert "Abandoned · Voice" in (page.text_content("#drill-title") or "")
    page.screenshot(path=str(artifacts / f"drilldown-{size[0]}.png"))
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#drill').open", timeout=5_000)

    # the keyboard: Tab to the offered count, Enter; more pages on demand
    page.focus(f'{tile} [data-drill="offered"]')
    page.keyboard.press("Enter")
    page.wait_for_selector('#drill[data-state="ready"][data-figure="offered"]', timeout=10_000)
    assert page.get_attribute("#drill", "data-count") == str(live["offered"])
    listed = {
        c
        for c in page.eval_on_selector_all(
            "#drill-rows tbody tr", "rs => rs.map(r => r.dataset.contact)"
        )
    }
    for _ in range(10):  # bounded
        if page.is_hidden("#drill-more"):
            break
        before = page.locator("#drill-rows tbody tr").count()
        page.click("#drill-more")
        page.wait_for_function(
            f"() => document.querySelectorAll('#drill-rows tbody tr').length > {before}",
            timeout=10_000,
        )
    listed = set(
        page.eval_on_selector_all("#drill-rows tbody tr", "rs => rs.map(r => r.dataset.contact)")
    )
    assert len(listed) == live["offered"]
    api_ids = set()
    cursor = None
    for _ in range(20):
        doc = get(
            pipeline,
            "/api/v1/contacts",
            figure="offered",
            channel="voice",
            limit=500,
            **({"cursor": cursor} if cursor else {}),
        )
        api_ids |= {c["contact"] for c in doc["contacts"]}
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    assert listed == api_ids
    assert page.errors == []
