"""Query parameters the history routes share, checked once: a time zone, and an ISO date or
date-time that is local time in it when it carries no offset. Refusals name the parameter."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import HTTPException

from ..deps import ApiState

FIRST_DAY, LAST_DAY = date(1970, 1, 2), date(2100, 12, 31)


def zone_of(state: ApiState, tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz) if tz else state.settings.zone
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HTTPException(422, detail=f"tz: unknown time zone {tz!r}") from exc


def when(name: str, value: str | None, zone: ZoneInfo) -> datetime | None:
    """ISO date or date-time; without an offset it is local time in `tz`."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(422, detail=f"{name}: not an ISO 8601 date or time: {value!r}") from exc
    parsed = parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed.astimezone(zone)
    in_range(name, parsed.date())
    return parsed


def in_range(name: str, day: date) -> None:
    """History starts at the epoch; far dates would only overflow the calendar arithmetic."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise HTTPException(422, detail=f"{name}: {day} is outside {FIRST_DAY} .. {LAST_DAY}")
