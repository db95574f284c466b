"""Business-hours variants: waits counted only inside a queue's opening hours."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from aggregator import engine
from services import kpis
from services.calendar import BusinessHours, business_ms

PARIS = ZoneInfo("Europe/Paris")
HOURS = BusinessHours(days=[0, 1, 2, 3, 4], open=time(8), close=time(18), timezone="Europe/Paris")


def ms(y: int, mo: int, d: int, h: int, mi: int = 0, zone: ZoneInfo = PARIS) -> int:
    return int(datetime(y, mo, d, h, mi, tzinfo=zone).timestamp() * 1000)


@pytest.mark.parametrize(
    ("start", "end", "hours", "expected_h"),
    [
        (ms(2026, 11, 20, 17), ms(2026, 11, 23, 9), HOURS, 2.0),  # Friday 17:00 -> Monday 09:00
        (ms(2026, 11, 21, 10), ms(2026, 11, 22, 10), HOURS, 0.0),  # a weekend
        (ms(2026, 11, 23, 7), ms(2026, 11, 23, 19), HOURS, 10.0),  # a whole Monday
        (ms(2026, 11, 23, 9), ms(2026, 11, 23, 9, 30), None, 0.5),  # no hours: wall clock
        (ms(2026, 3, 27, 17), ms(2026, 3, 30, 9), HOURS, 2.0),  # across the spring DST change
        (
            ms(2026, 12, 24, 17),
            ms(2026, 12, 28, 9),
            HOURS.model_copy(update={"holidays": [date(2026, 12, 25)]}),
            2.0,
        ),  # Thursday 17:00 -> Monday 09:00
    ],
)
def test_business_ms(start: int, end: int, hours: BusinessHours | None, expected_h: float) -> None:
    assert business_ms(start, end, hours) == expected_h * 3_600_000


def test_email_over_a_weekend_counts_business_time_only() -> None:
    offered = datetime(2026, 11, 20, 17, 30, tzinfo=PARIS)
    answered = datetime(2026, 11, 23, 8, 30, tzinfo=PARIS)
    events = [
        {
            "id": "1",
            "type": "contact.offered",
            "time": offered.isoformat(),
            "contact": "m",
            "channel": "email",
            "queue": "billing",
        },
        {
            "id": "2",
            "type": "contact.answered",
            "time": answered.isoformat(),
            "contact": "m",
            "agent": "ann",
        },
    ]
    from services.contract import ContactEvent

    parsed = [ContactEvent.model_validate(e) for e in events]
    plan = engine.plan(parsed, {}, {}, calendars={"billing": HOURS})
    counters = kpis.sum_counters(f for (_, scope), f in plan.deltas.items() if scope == "ch|email")
    figures = kpis.figures(counters, kpis.ReadOptions(sl_threshold_s=3600))
    assert figures["asa_seconds"] == 63 * 3600  # 63 wall-clock hours
    assert figures["asa_business_seconds"] == 3600  # 30 min on Friday + 30 min on Monday
    assert figures["service_level_business"] == 1.0 and figures["service_level"] == 0.0
    assert figures["first_response_buckets_business"]["under_1h"] == 1
    assert figures["first_response_buckets"]["over_24h"] == 1


def test_without_hours_there_is_no_business_figure() -> None:
    assert kpis.business_figures({"answered": 3}, kpis.ReadOptions()) == dict.fromkeys(
        kpis.BUSINESS_FIGURES
    )
