"""`make test-clock`: run the time-sensitive tests with the whole stack shifted to chosen instants.

Each instant becomes one `CCPULSE_CLOCK_OFFSET_SECONDS` (instant minus the real time at that run's
start), which pytest, every process the tests start and the browser pages share (docs/testing.md).
Instants lie in the future: Redis expiry times are absolute on its own, real clock.
"""

from __future__ import annotations

import argparse
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
        now = datetime.now(zone)  # the real clock: this tool sets the offset for everything else
        day = now.date() + timedelta(days=(weekday - now.weekday()) % 7 or 7)
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)

    return at


def fixed(text: str, zone: ZoneInfo, fold: int = 0) -> Callable[[], datetime]:
    return lambda: datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold)


# name -> the instant the run starts at; a run lasts minutes, so each one also crosses its edge.
INSTANTS: dict[str, Callable[[], datetime]] = {
    "monday-0030-paris": next_weekday(0, 0, 30, PARIS),
    "sunday-2355-paris": next_weekday(6, 23, 55, PARIS),
    "thursday-noon-utc": next_weekday(3, 12, 0, UTC),
    "spring-forward-paris": fixed("2027-03-28T01:57:00", PARIS),
    "fall-back-paris": fixed("2027-10-31T02:50:00", PARIS),  # the first 02:50 (CEST)
    "spring-forward-new-york": fixed("2027-03-14T01:57:00", NEW_YORK),
    "fall-back-new-york": fixed("2027-11-07T01:50:00", NEW_YORK),  # the first 01:50 (EDT)
    "year-end-utc": fixed("2026-12-31T23:59:30", UTC),
    "leap-day-utc": fixed("2028-02-29T12:00:00", UTC),
}


def run(name: str, pytest_args: list[str]) -> int:
    instant = INSTANTS[name]()
    offset = instant.timestamp() - time.time()
    if offset < 0:
        raise SystemExit(f"{name}: {instant.isoformat()} is in the past; pick a later instant")
    env = {**os.environ, "CCPULSE_CLOCK_OFFSET_SECONDS": f"{offset:.3f}"}
    print(f"== {name}: now = {instant.isoformat()} (offset {offset:.0f} s)", flush=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args]
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
