"""TV mode is one screen (issue 16): every channel tile and every queue row at once, filling a
1920x1080 or a 1366x768 screen, no text cut (the tile's "Answered / offered" included), type
large enough to read from 3 m, WCAG AA contrast. Screenshots: tests/artifacts/tv-<size>.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services import keys

from . import floor
from .conftest import Feed, LiveApi
from .helpers import agree, open_wallboard, wait_for
from .test_contrast import low_contrast

pytestmark = pytest.mark.browser

# A fuller floor than floor.QUEUES: five channels, ten queues, some with long names.
MORE_QUEUES = {
    ("voice", "collections-premium"): {"aw": [4, 3, 2, 1], "qw": {2: 1}, "iw": {}, "aht": 420},
    ("voice", "retention"): {"aw": [6, 2, 1], "qw": {}, "iw": {}, "aht": 380},
    ("chat", "chat-sales"): {"aw": [5, 5, 2], "qw": {1: 1}, "iw": {}, "aht": 300},
    ("sms", "sms-care"): {"aw": [0, 0, 0, 2, 3, 1], "qw": {}, "iw": {}, "aht": 200},
    ("social", "social-care"): {"aw": [0, 0, 1, 2, 2, 1], "qw": {4: 1}, "iw": {}, "aht": 260},
}
# Readable from 3 m: every text at least 1/60 of the screen's height (18 px on 1080 lines), and
# the headline figures at least three times that.
MIN_TEXT = 1 / 60
MIN_HEADLINE = 3 / 60

VISIBLE_AT_ONCE_JS = """
() => {
  const out = [];
  const inView = (e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0 &&
      r.bottom <= innerHeight + 1 && r.right <= innerWidth + 1 && e.checkVisibility();
  };
  for (const e of document.querySelectorAll('#tiles .tile, #queues-body tr'))
    if (!inView(e)) out.push(`${e.dataset.channel ?? e.dataset.queue} not on screen`);
  return out;
}
"""

CLIPPED_JS = """
() => {
  const out = [];
  const sel = '.tile h3, .tile .metric, .tile .metric .label, .tile .metric .value, ' +
    '.tile .metric .sub, .tile .agents, .tile .extras, #queues-table th, #queues-table td, ' +
    '.view h2, [data-view="queues"] .table-wrap';
  for (const e of document.querySelectorAll(sel)) {
    if (!e.checkVisibility()) continue;
    if (e.scrollWidth > e.clientWidth + 1)
      out.push(`${e.className || e.tagName} "${e.textContent.trim()}" ` +
        `${e.scrollWidth}>${e.clientWidth}`);
  }
  return out;
}
"""

SMALL_TEXT_JS = """
(min) => {
  const out = [];
  for (const e of document.querySelectorAll('#views *')) {
    if (!e.checkVisibility()) continue;
    const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const size = parseFloat(getComputedStyle(e).fontSize);
    const text = e.textContent.trim().slice(0, 20);
    if (size < min) out.push(`${e.className || e.tagName} "${text}" ${size}px`);
  }
  return out;
}
"""


def busy_floor(feed: Feed) -> None:
    floor.seed(feed)
    for (channel, queue), spec in MORE_QUEUES.items():
        counters = floor.queue_counters({**spec, "ivr": False})
        feed.counters(keys.queue_scope(channel, queue), counters)
        feed.counters(keys.channel_scope(channel), counters)
    feed.publish()


@pytest.mark.parametrize(
    ("width", "height", "busy"),
    [(1920, 1080, True), (1366, 768, True), (1920, 1080, False), (1366, 768, False)],
)
def test_tv_shows_channels_and_queues_on_one_readable_screen(
    live_api: LiveApi,
    feed: Feed,
    page_factory: Any,
    artifacts: Path,
    width: int,
    height: int,
    busy: bool,
) -> None:
    """Busy: five channels and ten queues fill the screen. Not busy (three channels, five
    queues): the queues leave room for the side panel, which must be as readable."""
    if busy:
        busy_floor(feed)
    else:
        floor.seed(feed)
    page = page_factory(width, height)
    page.emulate_media(color_scheme="dark")
    open_wallboard(page, live_api, "?tv=1")
    wait_for(lambda: agree(page, live_api), 15, "page figures equal to /api/v1/live")
    live = live_api.get("/api/v1/live")
    wait_for(
        lambda: page.locator("#queues-body tr").count() == len(live["queues"]), 10, "queue rows"
    )
    assert page.locator("#tiles .tile").count() == len(live["channels"]) == (5 if busy else 3)
    page.wait_for_timeout(500)  # one fitting pass after the last update
    name = f"tv-{width}x{height}" + ("" if busy else "-side-panel")
    page.screenshot(path=str(artifacts / f"{name}.png"))
    if not busy:
        assert page.get_attribute("#views", "data-secondary") != "none"

    assert page.evaluate("document.documentElement.scrollHeight <= innerHeight + 1")
    off_screen = page.evaluate(VISIBLE_AT_ONCE_JS)
    assert off_screen == [], off_screen
    clipped = page.evaluate(CLIPPED_JS)
    assert clipped == [], clipped
    label = page.locator('.tile[data-channel="voice"] .metric.volume .label')
    assert label.evaluate("e => e.checkVisibility()")
    assert label.inner_text().strip().lower() == "answered / offered"
    small = page.evaluate(SMALL_TEXT_JS, height * MIN_TEXT)
    assert small == [], small
    headline = page.eval_on_selector(
        ".metric.big .value", "e => parseFloat(getComputedStyle(e).fontSize)"
    )
    assert headline >= height * MIN_HEADLINE
    problems = low_contrast(page)
    assert problems == [], "\n".join(problems)
    assert page.errors == []
