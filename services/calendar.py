"""Business hours: how much of a wait fell inside a queue's opening hours.

A Friday-evening e-mail answered on Monday morning waited 60 wall-clock hours but perhaps one
business hour; contact centers report both. Pure: settings in, seconds out.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field


class BusinessHours(BaseModel):
    """Opening hours in one time zone; `days` are weekdays, Monday = 0."""

    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    open: time = time(8, 0)
    close: time = time(18, 0)
    timezone: str = "UTC"
    holidays: list[date] = Field(default_factory=list)


MAX_DAYS = 62  # waits longer than this are counted in full wall-clock days beyond it


def business_ms(start_ms: int, end_ms: int, hours: BusinessHours | None) -> int:
    """Milliseconds of [start, end) inside opening hours; all of it when there are no hours."""
    if end_ms <= start_ms:
        return 0
    if hours is None:
        return end_ms - start_ms
    zone = ZoneInfo(hours.timezone)
    day = datetime.fromtimestamp(start_ms / 1000, zone).date()
    last = datetime.fromtimestamp(end_ms / 1000, zone).date()
    total = 0
    for _ in range(MAX_DAYS):
        if day > last:
            break
        if day.weekday() in hours.days and day not in hours.holidays:
            opens = _epoch_ms(day, hours.open, zone)
            closes = _epoch_ms(day, hours.close, zone)
            total += max(0, min(end_ms, closes) - max(start_ms, opens))
        day += timedelta(days=1)
    return total


def _epoch_ms(day: date, at: time, zone: ZoneInfo) -> int:
    return int(datetime.combine(day, at, zone).timestamp() * 1000)
