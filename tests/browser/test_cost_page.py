"""Cost per case and agent productivity on the planners' page, in real Chromium at 1920x1080
and 1366x768, against the real api over the demo history `ccpulse up --simulate` seeds and the
hourly costs it sets: the figures shown equal the api's answers, summed as docs/metrics.md#cost
says (sums first, then the ratios)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import pytest

from ccpulse import demo
from ccpulse.launch import demo_cost_env
from services.settings import Settings
from tests.stackfixtures import EmbeddedRedis

from .conftest import LiveApi

pytestmark = pytest.mark.browser


@pytest.fixture
def priced_api(clean_redis: EmbeddedRedis, tmp_path: Path) -> Iterator[LiveApi]:
    api = LiveApi(clean_redis.url, tmp_path, demo_cost_env(Settings(_env_file=None)))
    api.start()
    try:
        settings = Settings(_env_file=None, database_url=api.child.env["CCPULSE_DATABASE_URL"])
        with ThreadPoolExecutor(1) as thread:  # Playwright's loop runs in this one
            assert thread.submit(demo.seed, settings).result(timeout=120) is not None
        yield api
    finally:
        api.stop()


def answer_behind(page: Any, api: LiveApi, path: str) -> dict[str, Any]:
    """The api's answer to the page's own last request to `path` (same query)."""
    asked = page.evaluate(
        "p => performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes(p))",
        path + "?",
    )
    url = urlparse(asked[-1])
    return dict(api.get(url.path, **dict(parse_qsl(url.query))))


@pytest.mark.parametrize("size", [(1920, 1080), (1366, 768)])
def test_cost_per_case_and_productivity_on_the_planning_page(
    priced_api: LiveApi, page_factory: Any, artifacts: Path, size: tuple[int, int]
) -> None:
    page = page_factory(*size)
    page.goto(priced_api.login_url(admin=True), wait_until="domcontentloaded")
    page.goto(f"{priced_api.url}/planning", wait_until="domcontentloaded")
    page.wait_for_selector('[data-panel="volume"][data-state="ready"]', timeout=20_000)
    page.wait_for_selector('[data-panel="productivity"][data-state="ready"]', timeout=20_000)
    volume = answer_behind(page, priced_api, "/api/v1/volume")
    assert volume["cost"]["configured"] is True
    handled = sum(r["handled"] for r in volume["rows"])
    hours = sum(r["logged_in_hours"] for r in volume["rows"])
    cost = sum(r["labour_cost"] for r in volume["rows"])
    assert handled > 0 and hours > 0 and cost > 0

    def shown(field: str) -> float:
        value = page.get_attribute(f'#volume-cost .stat[data-field="{field}"]', "data-value")
        assert value, field
        return float(value)

    assert shown("handled") == handled
    assert abs(shown("logged_in_hours") - hours) < 1e-6
    assert abs(shown("cost_per_handled") - cost / handled) < 1e-9
    assert abs(shown("handled_per_logged_in_hour") - handled / hours) < 1e-9
    text = page.text_content("#volume-cost") or ""
    assert "Cost per handled contact" in text and "€" in text

    prod = answer_behind(page, priced_api, "/api/v1/productivity")
    by_agent: dict[str, list[float]] = {}
    for r in prod["rows"]:
        t = by_agent.setdefault(r["agent"], [0, 0.0, 0.0])
        t[0] += r["handled"]
        t[1] += r["logged_in_hours"]
        t[2] += r["labour_cost"]
    table = page.locator("#productivity-rows tbody tr")
    assert table.count() == len(by_agent) > 2
    first = table.nth(0)
    agent = first.get_attribute("data-agent")
    assert agent in by_agent
    n, h, c = by_agent[agent]
    assert first.locator('[data-field="handled"]').text_content() == f"{int(n):,}"
    assert first.locator('[data-field="handled_per_logged_in_hour"]').text_content() == (
        f"{n / h:.2f}"
    )
    assert f"{c / n:.2f}" in (first.locator('[data-field="cost_per_handled"]').text_content() or "")
    order = page.eval_on_selector_all(
        "#productivity-rows tbody tr", "rows => rows.map(r => r.dataset.agent)"
    )
    rates = [by_agent[a][0] / by_agent[a][1] for a in order]
    assert rates == sorted(rates, reverse=True)  # the most productive first
    assert page.errors == []
    page.screenshot(path=str(artifacts / f"planning-cost-{size[0]}.png"), full_page=True)
