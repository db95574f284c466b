"""The planners' page in real Chromium: against the real api (whose planning endpoints may not
exist yet: the page must say so kindly), and with those endpoints answered in the browser in the
shapes issue 7 specifies, to check the charts, heat map, staffing table and CSV download."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import pytest

from tests.clock import clock

from . import floor
from .conftest import Feed, LiveApi

pytestmark = pytest.mark.browser

PANELS = ("volume", "heatmap", "staffing")


def open_planning(page: Any, api: LiveApi) -> None:
    page.goto(api.login_url(admin=True), wait_until="domcontentloaded")
    page.goto(f"{api.url}/planning", wait_until="domcontentloaded")
    page.wait_for_selector('body[data-ready="true"]', timeout=20_000)


def test_planning_page_against_the_real_api(
    live_api: LiveApi, feed: Feed, page_factory: Any, artifacts: Path
) -> None:
    floor.seed(feed)
    page = page_factory(1600, 1000)
    open_planning(page, live_api)
    assert urlparse(page.url).path == "/planning/"  # StaticFiles: /planning -> /planning/
    # Filters come from the live document: every channel and queue is offered.
    live = live_api.get("/api/v1/live", window="24h")
    channels = page.eval_on_selector_all(
        "#channel option", "os => os.map(o => o.value).filter(Boolean)"
    )
    assert sorted(channels) == sorted(live["channels"])
    queues = page.eval_on_selector_all(
        "#queue option", "os => os.map(o => o.value).filter(Boolean)"
    )
    assert sorted(queues) == sorted(live["queues"])
    # History exists now (issue 7): the seeded minutes are the open interval, read live.
    page.wait_for_selector('[data-panel="volume"][data-state="ready"]', timeout=20_000)
    assert page.get_attribute('[data-panel="heatmap"]', "data-state") in ("ready", "empty")
    # No past week has history: no forecast, said in words (it was 96 rows of 0 agents).
    page.wait_for_selector('[data-panel="staffing"][data-state="empty"]', timeout=20_000)
    assert "not enough history" in (page.text_content('[data-panel="staffing"]') or "")
    asked = page.evaluate(
        "performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('/api/v1/volume?'))"
    )
    url = urlparse(asked[-1])
    answer = live_api.get(url.path, **dict(parse_qsl(url.query)))
    shown = page.get_attribute('[data-field="offered"]', "data-value")
    assert shown is not None and int(float(shown)) == sum(r["offered"] for r in answer["rows"])
    assert sum(r["offered"] for r in answer["rows"]) > 0
    assert answer["rows"][-1]["partial"] is True
    assert page.errors == []
    page.screenshot(path=str(artifacts / "planning.png"), full_page=True)


def _volume_rows(days: int = 7, group: str | None = None) -> list[dict[str, Any]]:
    start = datetime.fromtimestamp(clock.now(), UTC).replace(
        minute=0, second=0, microsecond=0
    ) - timedelta(days=days)
    rows = []
    for h in range(days * 24):
        t = start + timedelta(hours=h)
        local = (t.hour + 1) % 24
        daytime = max(0.0, math.sin((local - 7) / 13 * math.pi)) if 7 <= local <= 20 else 0.0
        weekend = 0.45 if t.weekday() >= 5 else 1.0
        for name, share in (("voice", 0.65), ("chat", 0.35)) if group else ((None, 1.0),):
            offered = round((6 + 140 * daytime * weekend) * share)
            abandoned = round(offered * (0.03 + 0.05 * daytime))
            row = {
                "start": t.isoformat().replace("+00:00", "Z"),
                "end": (t + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                "offered": offered,
                "answered": offered - abandoned,
                "abandoned": abandoned,
                "abandon_rate": abandoned / offered if offered else None,
                "service_level": 0.92 - 0.2 * daytime if offered else None,
                "asa_seconds": 8 + 30 * daytime,
                "aht_seconds": 280 + 20 * daytime,
                "partial": h == days * 24 - 1,
            }
            if name:
                row[group] = name  # type: ignore[index]
            rows.append(row)
    return rows


def _heatmap() -> dict[str, Any]:
    cells = []
    for wd in range(7):
        for hr in range(24):
            daytime = max(0.0, math.sin((hr - 7) / 13 * math.pi)) if 7 <= hr <= 20 else 0.0
            mean = (4 + 130 * daytime) * (0.45 if wd >= 5 else 1.0 - 0.06 * wd)
            cells.append(
                {
                    "weekday": wd,
                    "hour": hr,
                    "mean": round(mean, 1),
                    "p90": round(mean * 1.25, 1),
                    "weeks": 9 if wd == 0 else 8,  # Monday's hours are over this week
                    "current_week": wd == 0,
                }
            )
    return {"weeks": 8, "cells": cells}


def _staffing(day: str) -> dict[str, Any]:
    base = datetime.fromisoformat(f"{day}T00:00:00+00:00")
    rows = []
    for q in range(96):
        t = base + timedelta(minutes=15 * q)
        hr = t.hour + t.minute / 60
        daytime = max(0.0, math.sin((hr - 7) / 13 * math.pi)) if 7 <= hr <= 20 else 0.0
        forecast = round(1 + 38 * daytime, 1)
        voice = max(1, math.ceil(forecast * 290 / 900 * 1.25 + 1))
        rows.append(
            {
                "start": t.isoformat().replace("+00:00", "Z"),
                "end": (t + timedelta(minutes=15)).isoformat().replace("+00:00", "Z"),
                "forecast_offered": forecast,
                "aht_seconds": 290,
                "agents_erlang_c": voice + 2,
                "agents_erlang_a": max(1, math.ceil(forecast * 290 / 900 * 1.15 + 1)),
                "expected_sl": 0.82,
                "by_channel": {
                    "email": {"agents_erlang_c": 2, "forecast_offered": 1.0},
                    "voice": {"agents_erlang_c": voice, "forecast_offered": forecast - 1},
                },
            }
        )
    thresholds = {"voice": 20, "email": 86400}
    return {
        "date": day,
        "target_sl": 0.8,
        "threshold_seconds": None,
        "rows": rows,
        "thresholds_seconds": thresholds,
    }


def test_planning_page_renders_the_planning_endpoints(
    live_api: LiveApi, feed: Feed, page_factory: Any, artifacts: Path
) -> None:
    floor.seed(feed)
    page = page_factory(1600, 1100)
    seen: dict[str, list[str]] = {"volume": [], "heatmap": [], "staffing": [], "accept": []}
    api_csv = {"on": False}

    def volume(route: Any) -> None:
        url = route.request.url
        seen["volume"].append(url)
        group = re.search(r"group_by=(\w+)", url)
        rows = _volume_rows(group=group.group(1) if group else None)
        accept = route.request.headers.get("accept", "")
        seen["accept"].append(accept)
        if "text/csv" in accept and api_csv["on"]:
            route.fulfill(
                status=200, content_type="text/csv", body="start,offered\nfrom-the-api,1\n"
            )
        else:
            route.fulfill(
                status=200, content_type="application/json", body=json.dumps({"rows": rows})
            )

    def heatmap(route: Any) -> None:
        seen["heatmap"].append(route.request.url)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(_heatmap()))

    def staffing(route: Any) -> None:
        seen["staffing"].append(route.request.url)
        day = re.search(r"date=([0-9-]+)", route.request.url)
        body = _staffing(day.group(1) if day else "2030-01-01")
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route(re.compile(r"/api/v1/volume\?"), volume)
    page.route(re.compile(r"/api/v1/volume/heatmap"), heatmap)
    page.route(re.compile(r"/api/v1/staffing"), staffing)
    open_planning(page, live_api)

    for panel in PANELS:
        assert page.get_attribute(f'[data-panel="{panel}"]', "data-state") == "ready", panel
    assert page.locator("#volume-body canvas").count() >= 1
    rows = _volume_rows()
    total = sum(r["offered"] for r in rows)
    assert page.get_attribute('#volume-body .stat[data-field="offered"]', "data-value") == str(
        total
    )
    assert page.locator("table.heat td[data-hour]").count() == 7 * 24
    # The current week so far counts where its hours are over, and says so (issue 16).
    assert "current=true" in seen["heatmap"][-1]
    assert page.locator("table.heat td.current").count() == 24
    assert page.get_attribute('table.heat td[data-weekday="0"][data-hour="9"]', "data-weeks") == "9"
    assert "this week so far" in (page.text_content("#heat-legend") or "")
    assert page.locator("#staffing-rows tbody tr").count() == 96
    # Each channel staffed against its own target, and the mix per interval (issue 16).
    targets = page.text_content("#staffing-targets") or ""
    assert "own target" in targets and "voice 0:20" in targets and "email 1d 00h" in targets
    noon = _staffing("2030-01-01")["rows"][48]["by_channel"]["voice"]["agents_erlang_c"]
    mix = page.locator('#staffing-rows tbody tr >> nth=48 >> td[data-field="mix"]').text_content()
    assert mix == f"voice {noon} · email 2"
    assert "interval=1h" in seen["volume"][-1] and "tz=Europe%2FParis" in seen["volume"][-1]
    page.screenshot(path=str(artifacts / "planning-data.png"), full_page=True)

    # Filters go to the api and into the address.
    page.select_option("#channel", "voice")
    page.wait_for_function("() => location.search.includes('channel=voice')", timeout=5_000)
    # The address changes before the requests leave: wait for both, bounded.
    for _ in range(50):
        if all(seen[k] and "channel=voice" in seen[k][-1] for k in ("volume", "staffing")):
            break
        page.wait_for_timeout(100)
    assert "channel=voice" in seen["volume"][-1] and "channel=voice" in seen["staffing"][-1]
    queues = page.eval_on_selector_all(
        "#queue option", "os => os.map(o => o.value).filter(Boolean)"
    )
    assert sorted(queues) == ["billing", "sales", "support"]
    page.select_option("#group-by", "channel")
    page.wait_for_function("() => location.search.includes('group-by=channel')", timeout=5_000)
    page.wait_for_selector('[data-panel="volume"][data-state="ready"]', timeout=5_000)

    # CSV: built here when the api answers JSON ...
    with page.expect_download(timeout=10_000) as info:
        page.click("#csv")
    text = Path(info.value.path()).read_text()
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == len(_volume_rows(group="channel"))
    assert table[0].keys() >= {"start", "offered", "answered", "abandoned", "service_level"}
    assert any("text/csv" in a for a in seen["accept"])
    # ... and the api's own when it speaks CSV.
    api_csv["on"] = True
    with page.expect_download(timeout=10_000) as info:
        page.click("#csv")
    assert Path(info.value.path()).read_text() == "start,offered\nfrom-the-api,1\n"
    assert page.errors == []


def test_planning_page_explains_missing_endpoints(live_api: LiveApi, page_factory: Any) -> None:
    page = page_factory()
    for pattern in (r"/api/v1/volume", r"/api/v1/staffing"):
        page.route(
            re.compile(pattern),
            lambda route: route.fulfill(
                status=404, content_type="application/json", body='{"detail":"Not Found"}'
            ),
        )
    open_planning(page, live_api)
    for panel in PANELS:
        assert page.get_attribute(f'[data-panel="{panel}"]', "data-state") == "unavailable"
        assert "not available yet" in (page.text_content(f'[data-panel="{panel}"]') or "")
    page.click("#csv")
    page.wait_for_selector("#notice:not([hidden])", timeout=5_000)
    assert "nothing to download" in (page.text_content("#notice") or "")
    assert page.errors == []
