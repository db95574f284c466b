"""Local-time buckets: ranges cut at DST changes, bucket bounds, the range rules.

A local bucket is `(start + offset + shift) // width` within a stretch of constant UTC offset,
so SQL can group by it; calendar days and weeks are 23 or 25 hours across DST.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

WIDTH_S = {"15m": 900, "30m": 1800, "1h": 3600, "1d": 86400, "1w": 7 * 86400}


MAX_DAYS = {"15m": 31, "30m": 31, "1h": 93, "1d": 800, "1w": 1100}  # 1w: three years


WEEK_SHIFT_S = 3 * 86400  # 1970-01-01 was a Thursday: shift so weeks start on Monday


GROUPS = ("channel", "queue")


class RangeError(ValueError):
    """A request the history cannot answer as asked; the message names the parameter."""


@dataclass(frozen=True, slots=True)
class Segment:
    start_s: int
    end_s: int
    offset_s: int


def offset_segments(start_s: int, end_s: int, zone: ZoneInfo) -> list[Segment]:
    """[start, end) cut where the zone's UTC offset changes (DST), on 15-minute edges."""

    def offset(t: int) -> int:
        delta = datetime.fromtimestamp(t, zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    segments: list[Segment] = []
    lo, current = start_s, offset(start_s)
    t = start_s
    while t < end_s:
        step = 3600 if offset(min(t + 3600, end_s - 1)) == current else 900
        nxt = min(t + step, end_s)
        if nxt < end_s and offset(nxt) != current:
            segments.append(Segment(lo, nxt, current))
            lo, current = nxt, offset(nxt)
        t = nxt
    segments.append(Segment(lo, end_s, current))
    return segments


def local_floor(t: datetime, interval: str) -> datetime:
    """The start of the local bucket holding `t` (aware, in t's zone)."""
    if interval == "1w":
        t = t - timedelta(days=t.weekday())
    if interval in ("1d", "1w"):
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    width = WIDTH_S[interval] // 60
    minutes = t.hour * 60 + t.minute
    return t.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        minutes=minutes - minutes % width
    )


def bucket_bounds(key: int, interval: str, offset_s: int, zone: ZoneInfo) -> tuple[int, int]:
    """UTC [start, end) of the bucket with SQL key `key` (local naive index) in this segment."""
    width = WIDTH_S[interval]
    shift = WEEK_SHIFT_S if interval == "1w" else 0
    naive_s = key * width - shift
    if interval in ("1d", "1w"):  # calendar days: 23 or 25 hours across DST
        start = datetime.fromtimestamp(naive_s, UTC).replace(tzinfo=zone)
        days = 7 if interval == "1w" else 1
        end = (start.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=zone)
        return int(start.timestamp()), int(end.timestamp())
    start_s = naive_s - offset_s
    return start_s, start_s + width


@dataclass(frozen=True, slots=True)
class VolumeQuery:
    interval: str
    start: datetime  # aware, local
    end: datetime
    zone: ZoneInfo
    channel: str | None = None
    queue: str | None = None
    group_by: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return "q" if self.queue is not None or "queue" in self.group_by else "ch"


def plan_range(
    interval: str, start: datetime | None, end: datetime | None, zone: ZoneInfo, now_s: float
) -> tuple[datetime, datetime]:
    """Default and check the range: aligned to local buckets, within the interval's limit."""
    now = datetime.fromtimestamp(now_s, zone)
    back = {"1d": timedelta(days=30), "1w": timedelta(weeks=12)}.get(interval, timedelta())
    first = local_floor((start or now.replace(hour=0, minute=0) - back).astimezone(zone), interval)
    last = (end or now).astimezone(zone)
    if last <= first:
        raise RangeError("to: must be after from")
    days = (last - first).total_seconds() / 86400
    if days > MAX_DAYS[interval]:
        raise RangeError(
            f"from/to: {days:.0f} days is over the {MAX_DAYS[interval]}-day limit for "
            f"interval={interval} (15m and 30m: 31 days, 1h: 93, 1d: 800, 1w: 1100)"
        )
    return first, last


def bucket_spans(interval: str, first: datetime, last: datetime) -> list[tuple[int, int]]:
    """UTC [start, end) of every local bucket from `first` (aligned, aware) until `last`: the
    rows a planner's export expects even where nothing happened. Days and weeks are calendar
    ones (23 or 25 hours across DST); shorter buckets are fixed widths in UTC."""
    zone = first.tzinfo
    spans: list[tuple[int, int]] = []
    start, stop = first, last.timestamp()
    while start.timestamp() < stop:
        if interval in ("1d", "1w"):
            days = 7 if interval == "1w" else 1
            end = (start.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=zone)
        else:
            end = datetime.fromtimestamp(start.timestamp() + WIDTH_S[interval], zone)
        spans.append((int(start.timestamp()), int(end.timestamp())))
        start = end
    return spans
