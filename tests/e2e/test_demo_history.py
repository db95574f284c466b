"""`ccpulse up --simulate` seeds demo history into an empty history (issue 16: a planner's first
run had an empty heat map and "0 agents needed"): the planning answers are full and say they are
demo, a second seed adds nothing, and `ccpulse history remove-demo` removes it all."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from ccpulse import demo
from services.settings import Settings
from tests.clock import clock
from tests.harness import Pipeline

pytestmark = pytest.mark.e2e


def get(p: Pipeline, path: str, **params: Any) -> dict[str, Any]:
    r = httpx.get(f"{p.api_url}{path}", params=params, timeout=60)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_demo_history_fills_the_planning_page_and_goes_away(pipeline: Pipeline) -> None:
    settings = Settings(_env_file=None, **{"database_url": pipeline.env["CCPULSE_DATABASE_URL"]})
    written = demo.seed(settings)
    assert written is not None and written > 8 * 7 * 40  # every day, day and night
    assert demo.seed(settings) is None  # history has rows now: never seeded twice

    today = datetime.fromtimestamp(clock.now(), ZoneInfo("UTC")).date()
    weeks_ago = (today - timedelta(weeks=8)).isoformat()
    vol = get(pipeline, "/api/v1/volume", interval="1d", tz="UTC", **{"from": weeks_ago})
    assert vol["demo"] and len([r for r in vol["rows"] if r["offered"]]) >= 8 * 7
    weekday = [
        r["offered"] for r in vol["rows"] if datetime.fromisoformat(r["start"]).weekday() < 5
    ]
    weekend = [
        r["offered"] for r in vol["rows"] if datetime.fromisoformat(r["start"]).weekday() >= 5
    ]
    assert min(weekday) > max(weekend)  # a working week: quieter weekends
    heat = get(pipeline, "/api/v1/volume/heatmap", weeks=8, tz="UTC")
    assert heat["demo"] and max(c["mean"] for c in heat["cells"]) > 10
    staff = get(pipeline, "/api/v1/staffing", interval="1h", tz="UTC")
    assert staff["demo"] and len(staff["forecast"]["weeks_used"]) == 4
    assert max(r["agents_erlang_c"] for r in staff["rows"]) > 0
    assert set(staff["thresholds_seconds"]) == {"voice", "chat", "email", "sms", "social"}
    # the demo agents' logged-in time: productivity and (once priced) cost per case have a past
    days = [r for r in vol["rows"] if r["handled"]]
    assert days and all(r["logged_in_hours"] and r["handled_per_logged_in_hour"] for r in days)
    assert all(r["labour_cost"] is None for r in days)  # this stack sets no hourly cost
    prod = get(pipeline, "/api/v1/productivity", interval="1w", tz="UTC", **{"from": weeks_ago})
    agents = {r["agent"] for r in prod["rows"]}
    assert {"demo-voice-01", "demo-chat-01", "demo-email-01"} <= agents
    assert sum(r["handled"] for r in prod["rows"]) == sum(r["handled"] for r in vol["rows"])

    done = subprocess.run(
        [sys.executable, "-m", "ccpulse", "history", "remove-demo"],
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"removed {written} demo interval rows" in done.stdout
    after = get(pipeline, "/api/v1/volume", interval="1d", tz="UTC", **{"from": weeks_ago})
    assert not after["demo"] and not any(r["offered"] for r in after["rows"])
    assert get(pipeline, "/api/v1/staffing", tz="UTC")["rows"] == []
    gone = get(pipeline, "/api/v1/productivity", interval="1w", tz="UTC", **{"from": weeks_ago})
    assert gone["rows"] == []  # the demo agents' time went with the demo
