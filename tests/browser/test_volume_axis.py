"""The planning page's volume chart on short and long ranges, in real Chromium against the real
api (issue 16: over 16 months the axis read "Mon 1, Thu 1, Tue 1…" with the bars at one edge).

History is written into the api's SQL as the importer would (interval rows), around the test's
clock, with a hole in each range; the page exposes what it drew (tick labels with their pixel
extents, bar positions) as data attributes on the chart, which the test reads back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, insert

from services import intervals, keys, kpis
from tests.clock import clock

from .conftest import TIMEZONE, LiveApi

pytestmark = pytest.mark.browser

ZONE = ZoneInfo(TIMEZONE)
SIZES = ((1920, 1080), (1366, 768))


@dataclass(frozen=True)
class Case:
    name: str
    first: date  # first local day shown
    last: date  # last local day shown
    interval: str
    starts: list[float]  # epoch seconds of the seeded intervals (one row each)
    hole: tuple[float, float]  # no history in [start, end)


def _local(day: date, hour: int = 0) -> float:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZONE).timestamp()


def cases() -> list[Case]:
    today = datetime.fromtimestamp(clock.now(), ZONE).date()
    day = today - timedelta(days=1)
    # A day by the hour, hours 03:00-06:00 missing (on a DST night the day has 23 or 25 hours:
    # every whole hour from midnight to the next midnight is taken, whatever their count).
    hours = list(range(int(_local(day)), int(_local(day + timedelta(days=1))), 3600))
    hole_day = (_local(day, 3), _local(day, 6))
    # Eight weeks by the day, the fourth week missing.
    first8 = today - timedelta(days=56)
    days8 = [_local(first8 + timedelta(days=d), 12) for d in range(56)]
    hole8 = (_local(first8 + timedelta(days=21)), _local(first8 + timedelta(days=28)))
    # Sixteen months by the week (a range that crosses a year end whatever today is), two
    # months missing in the middle.
    first16 = today - timedelta(days=487)
    days16 = [_local(first16 + timedelta(days=d), 12) for d in range(487)]
    hole16 = (_local(first16 + timedelta(days=200)), _local(first16 + timedelta(days=260)))
    return [
        Case("day", day, day, "1h", hours, hole_day),
        Case("8-weeks", first8, today - timedelta(days=1), "1d", days8, hole8),
        Case("16-months", first16, today - timedelta(days=1), "1w", days16, hole16),
    ]


def seed(workdir: Path, case: Case) -> int:
    """One 15-minute interval row per start (outside the hole) on voice; returns offered."""
    rows = []
    total = 0
    for n, start in enumerate(case.starts):
        if case.hole[0] <= start < case.hole[1]:
            continue
        aligned = int(start) // 900 * 900
        offered = 5 + n % 7
        total += offered
        counters = {kpis.OFFERED: offered, kpis.ABANDONED: 1}
        rows.append(intervals.to_row(aligned, keys.channel_scope("voice"), counters, 0))
    engine = create_engine(f"sqlite:///{workdir}/history.db")
    try:
        with engine.begin() as conn:
            conn.execute(insert(intervals.interval_counters), rows)
    finally:
        engine.dispose()
    return total


def drawn(page: Any) -> dict[str, Any]:
    got: dict[str, Any] = page.evaluate(
        """() => { const c = document.querySelector('#volume-chart');
          return { ticks: JSON.parse(c.dataset.ticks), bars: JSON.parse(c.dataset.bars),
                   plot: JSON.parse(c.dataset.plot) }; }"""
    )
    return got


def check_axis(case: Case, shown: dict[str, Any]) -> None:
    ticks, bars, plot = shown["ticks"], shown["bars"], shown["plot"]
    labels = [t["label"] for t in ticks]
    # Enough labels to read the span, all different, in time order, none touching another.
    assert 3 <= len(ticks) <= 40, labels
    assert len(set(labels)) == len(labels), labels
    assert [t["t"] for t in ticks] == sorted(t["t"] for t in ticks), labels
    for a, b in pairwise(ticks):
        assert a["right"] + 2 <= b["left"], (a, b)
    for t in ticks:
        assert plot["left"] - 30 <= t["left"] and t["right"] <= plot["right"] + 30, t
    # Labels fit the span: hours for a day, days for weeks, months (and the year) for a year.
    if case.name == "day":
        assert all(":" in lab or lab[:3] in WEEKDAYS for lab in labels), labels
    elif case.name == "8-weeks":
        assert all(":" not in lab and any(m in lab for m in MONTHS) for lab in labels), labels
        assert all(lab.split()[0].isdigit() for lab in labels), labels
    else:
        assert all(lab[:3] in MONTHS for lab in labels), labels  # "Sept" in en-GB
        years = {str(y) for y in range(case.first.year, case.last.year + 1)}
        assert years <= {w for lab in labels for w in lab.split()}, labels  # every year named
    # Bars at their time on a linear scale, spread over the axis, with the hole left empty.
    xs = [b["x"] for b in bars]
    ts = [b["t"] for b in bars]
    width = plot["right"] - plot["left"]
    assert xs == sorted(xs)
    assert xs[0] - plot["left"] < 0.1 * width and plot["right"] - xs[-1] < 0.1 * width, (xs, plot)
    scale = (xs[-1] - xs[0]) / (ts[-1] - ts[0])
    for x, t in zip(xs, ts, strict=True):
        assert abs(xs[0] + (t - ts[0]) * scale - x) < 1.5, (x, t)
    gap = max(b - a for a, b in pairwise(xs))
    assert gap >= (case.hole[1] - case.hole[0]) * scale * 0.9, (gap, case.hole)
    assert not [t for t in ts if case.hole[0] + 7 * 86400 <= t < case.hole[1] - 7 * 86400]
    assert not [t for t in ts if case.interval != "1w" and case.hole[0] <= t < case.hole[1]]


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_volume_axis_fits_the_range(
    case: Case, live_api: LiveApi, page_factory: Any, artifacts: Path, tmp_path: Path
) -> None:
    total = seed(tmp_path, case)
    for width, height in SIZES:
        page = page_factory(width, height)
        page.goto(live_api.login_url(admin=True), wait_until="domcontentloaded")
        page.goto(
            f"{live_api.url}/planning/?from={case.first}&to={case.last}&interval={case.interval}",
            wait_until="domcontentloaded",
        )
        page.wait_for_selector('body[data-ready="true"]', timeout=20_000)
        page.wait_for_selector('[data-panel="volume"][data-state="ready"]', timeout=20_000)
        shown = page.get_attribute('#volume-body .stat[data-field="offered"]', "data-value")
        assert shown == str(total)
        page.locator("#volume").screenshot(
            path=str(artifacts / f"planning-volume-{case.name}-{width}x{height}.png")
        )
        check_axis(case, drawn(page))
        assert page.errors == []
