"""WCAG AA contrast of every text on the wallboard, in the light, dark and TV themes, and on the
stale band (white on #ff6b6b was 2.8:1): 4.5:1 for text, 3:1 for large text (WCAG 1.4.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import floor
from .conftest import Feed, LiveApi
from .helpers import LIVE, agree, open_wallboard, wait_for

pytestmark = pytest.mark.browser

CHECK = (Path(__file__).parent / "contrast.js").read_text()


def low_contrast(page: Any) -> list[str]:
    found: list[str] = page.evaluate(CHECK)
    return found


@pytest.mark.parametrize(("scheme", "query"), [("light", ""), ("dark", ""), ("dark", "?tv=1")])
def test_every_text_meets_wcag_aa(
    live_api: LiveApi, feed: Feed, page_factory: Any, scheme: str, query: str
) -> None:
    floor.seed(feed)
    page = page_factory(1600, 1000)
    page.emulate_media(color_scheme=scheme)
    open_wallboard(page, live_api, query)
    wait_for(lambda: agree(page, live_api), 15, "page figures equal to /api/v1/live")
    problems = low_contrast(page)
    assert problems == [], "\n".join(problems)


def test_a_hung_api_reads_as_reconnecting_on_a_readable_band(
    live_api: LiveApi, feed: Feed, page_factory: Any, artifacts: Path
) -> None:
    """The api stops (SIGSTOP): the band is readable, and once the watchdog drops the silent
    socket the page says it is reconnecting (it said "connected but sends nothing" for good);
    after the api resumes, live again."""
    floor.seed(feed)
    page = page_factory(1366, 768)
    open_wallboard(page, live_api)
    live_api.pause()
    try:
        page.wait_for_selector("#stale-banner:not([hidden])", timeout=25_000)
        problems = low_contrast(page)
        assert problems == [], "\n".join(problems)
        page.wait_for_function(
            "() => document.querySelector('#stale-text').textContent.includes('reconnecting')",
            timeout=50_000,
        )
        page.screenshot(path=str(artifacts / "wallboard-reconnecting.png"))
    finally:
        live_api.resume()
    page.wait_for_selector(LIVE, timeout=40_000)
    page.wait_for_selector("#stale-banner[hidden]", state="attached", timeout=10_000)
