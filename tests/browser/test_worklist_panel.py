"""The abandoned-contacts worklist panel in Chromium, through the whole stack: the events of
tests/e2e/test_worklist_e2e.py posted to ingest, rolled into SQL, read by the wallboard's panel.
Its figures and rows equal `/api/v1/contacts/abandoned`'s; not-reached rows come first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.clock import clock
from tests.e2e.test_worklist_e2e import ENV, all_rolled, scenario
from tests.harness import Pipeline

from .helpers import LIVE, wait_for
from .test_contrast import low_contrast
from .test_pipeline_browser import Api

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PANEL = '[data-view="worklist"]'
FIGURES = """() => Object.fromEntries(Array.from(document.querySelectorAll('[data-worklist-field]'))
  .map(e => [e.dataset.worklistField, JSON.parse(e.dataset.value)]))"""
ROWS = """() => Array.from(document.querySelectorAll('#worklist-body tr'))
  .map(tr => [tr.dataset.contact, tr.dataset.reached])"""


def expected_rows(doc: dict[str, Any]) -> list[list[str]]:
    """Not reached, reached, no customer key; newest first inside each (web/.../worklist.ts)."""

    def kind(c: dict[str, Any]) -> str:
        return (
            "unknown" if not c["customer_known"] else "reached" if c["reached"] else "not-reached"
        )

    order = {"not-reached": 0, "reached": 1, "unknown": 2}
    rows = sorted(doc["contacts"], key=lambda c: (order[kind(c)], -c["abandoned_ms"], c["contact"]))
    return [[c["contact"], kind(c)] for c in rows]


def test_worklist_panel_shows_the_api_figures(
    pipeline_factory: Any, page_factory: Any, artifacts: Path
) -> None:
    pipeline: Pipeline = pipeline_factory({**ENV, "CCPULSE_TIMEZONE": "Europe/Paris"})
    now = clock.now()
    sent = [e for batch in scenario(now) for e in batch]
    for batch in scenario(now):
        pipeline.post(batch)
    pipeline.wait_applied(len(sent), 60)
    wait_for(lambda: all_rolled(pipeline, sent, now), 90, "every contact's row")
    api = Api(pipeline)
    doc = api.get("/api/v1/contacts/abandoned", window="24h")
    assert doc["total"]["abandoned"] == 5 and doc["total"]["not_reached"] == 2
    for width, height, scheme in ((1920, 1080, "light"), (1366, 768, "dark")):
        page = page_factory(width, height)
        page.emulate_media(color_scheme=scheme)
        page.goto(f"{pipeline.api_url}/?window=24h", wait_until="domcontentloaded")
        page.wait_for_selector(LIVE, timeout=15_000)
        page.wait_for_selector(f"{PANEL}:not([data-empty]) #worklist-body tr", timeout=20_000)
        shown = page.evaluate(FIGURES)
        assert shown == {k: doc["total"][k] for k in shown}
        assert set(shown) == {"abandoned", "reached", "not_reached", "median_seconds_to_reach"}
        assert page.evaluate(ROWS) == expected_rows(doc)
        assert (
            page.locator(f"{PANEL} [data-worklist-field=median_seconds_to_reach]").inner_text()
            == "10:00"
        )
        assert page.errors == []
        assert low_contrast(page) == []  # WCAG AA, as tests/browser/test_contrast.py
        page.locator(PANEL).screenshot(
            path=str(artifacts / f"wallboard-worklist-{width}x{height}.png")
        )
