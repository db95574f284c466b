"""`make test-clock`: run the time-sensitive tests with the whole stack shifted to chosen instants.

Each instant becomes one `CCPULSE_CLOCK_OFFSET_SECONDS` (instant minus the real time at that run's
start), which pytest, every process the tests start and the browser pages share (docs/testing.md).
Instants are the next such moment after the real now (never in the past: Redis expiry times are
absolute on its own, real clock), so the matrix keeps working in any year.
"""

from __future__ import annotations

import argparse
import calendar
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

PARIS, NEW_YORK, UTC = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York"), ZoneInfo("UTC")

# The tests that read "now": the unit tests are cheap and included whole.
SELECTION = [
    "tests/unit",
    "tests/integration",
    "tests/e2e/test_pipeline.py",
    "tests/e2e/test_history.py",
    "tests/e2e/test_alerts.py",
    "tests/e2e/test_prometheus_metrics.py",
    "tests/e2e/test_vendors_e2e.py",
    "tests/browser",
]


def next_weekday(weekday: int, hour: int, minute: int, zone: ZoneInfo) -> Callable[[], datetime]:
    """The next such local time after the real now (weekday 0 is Monday)."""

    def at() -> datetime:
        now = _now(zone)
        day = now.date() + timedelta(days=(weekday - now.weekday()) % 7 or 7)
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)

    return at


def _now(zone: ZoneInfo) -> datetime:
    return datetime.now(zone)  # the real clock: this tool sets the offset for everything else


def next_transition(zone: ZoneInfo, forward: bool) -> datetime:
    """The zone's next DST change (forward: clocks jump ahead), found hour by hour in UTC."""
    t = _now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    for _ in range(24 * 400):
        step = t + timedelta(hours=1)
        before, after = t.astimezone(zone).utcoffset(), step.astimezone(zone).utcoffset()
        if (
            before is not None
            and after is not None
            and after != before
            and (after > before) == forward
        ):
            return step
        t = step
    raise SystemExit(f"{zone.key} changes no offset in the next 400 days")


def before_transition(zone: ZoneInfo, forward: bool, minutes: int) -> Callable[[], datetime]:
    """`minutes` before the next DST change, in the zone's time before it (the first 01:50 on a
    fall-back night, say): the run crosses the change."""
    return lambda: (next_transition(zone, forward) - timedelta(minutes=minutes)).astimezone(zone)


def next_year_end(zone: ZoneInfo) -> datetime:
    now = _now(zone)
    year = now.year if now < datetime(now.year, 12, 31, 23, 59, 30, tzinfo=zone) else now.year + 1
    return datetime(year, 12, 31, 23, 59, 30, tzinfo=zone)


def next_leap_day(zone: ZoneInfo) -> datetime:
    now = _now(zone)
    year = now.year + (now >= datetime(now.year, 2, 28, tzinfo=zone))
    while not calendar.isleap(year):
        year += 1
    return datetime(year, 2, 29, 12, 0, tzinfo=zone)


# name -> the instant the run starts at, the next one after the real now, so the matrix never
# points into the past; a run lasts minutes, so each one also crosses its edge.
INSTANTS: dict[str, Callable[[], datetime]] = {
    "monday-0030-paris": next_weekday(0, 0, 30, PARIS),
    "sunday-2355-paris": next_weekday(6, 23, 55, PARIS),
    "thursday-noon-utc": next_weekday(3, 12, 0, UTC),
    "spring-forward-paris": before_transition(PARIS, forward=True, minutes=3),
    "fall-back-paris": before_transition(PARIS, forward=False, minutes=10),
    "spring-forward-new-york": before_transition(NEW_YORK, forward=True, minutes=3),
    "fall-back-new-york": before_transition(NEW_YORK, forward=False, minutes=10),
    "year-end-utc": lambda: next_year_end(UTC),
    "leap-day-utc": lambda: next_leap_day(UTC),
}


def run(name: str, pytest_args: list[str]) -> int:
    instant = INSTANTS[name]()
    offset = instant.timestamp() - time.time()
    if offset < 0:
        raise SystemExit(f"{name}: {instant.isoformat()} is in the past; pick a later instant")
    env = {**os.environ, "CCPULSE_CLOCK_OFFSET_SECONDS": f"{offset:.3f}"}
    print(f"== {name}: now = {instant.isoformat()} (offset {offset:.0f} s)", flush=True)
    workers = ["-n", os.environ.get("TEST_WORKERS", "2"), "--dist", "loadfile"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, *pytest_args]
    return subprocess.call(cmd, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--instant",
        action="append",
        choices=sorted(INSTANTS),
        help="run only these (repeatable); default: every instant",
    )
    parser.add_argument("pytest_args", nargs="*", help="default: the time-sensitive selection")
    args = parser.parse_args()
    names = args.instant or list(INSTANTS)
    failed = [n for n in names if run(n, args.pytest_args or SELECTION) != 0]
    print(
        f"clock matrix: {len(names) - len(failed)} of {len(names)} instants passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
