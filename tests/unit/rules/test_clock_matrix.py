"""The clock matrix's instants are computed from the real now: each must lie ahead and sit where
its name says (a DST night crosses its change), in any year the suite runs."""

from __future__ import annotations

import calendar
from datetime import UTC, timedelta

from tests.clock import OFFSET_S, clock
from tests.tools.clock_matrix import INSTANTS, NEW_YORK, PARIS


def test_every_instant_lies_ahead() -> None:
    real_now = clock.now() - OFFSET_S  # the matrix computes its instants from the real clock
    for name, at in INSTANTS.items():
        assert at().timestamp() > real_now - 1, name


def test_dst_instants_cross_their_change_in_the_right_direction() -> None:
    for name, zone, ahead in [
        ("spring-forward-paris", PARIS, True),
        ("fall-back-paris", PARIS, False),
        ("spring-forward-new-york", NEW_YORK, True),
        ("fall-back-new-york", NEW_YORK, False),
    ]:
        start = INSTANTS[name]()
        before = start.astimezone(zone).utcoffset()
        after = (start.astimezone(UTC) + timedelta(minutes=15)).astimezone(zone).utcoffset()
        assert before is not None and after is not None, name
        assert (after > before) if ahead else (after < before), name


def test_calendar_edges() -> None:
    year_end, leap = INSTANTS["year-end-utc"](), INSTANTS["leap-day-utc"]()
    assert (year_end.month, year_end.day, year_end.hour, year_end.minute) == (12, 31, 23, 59)
    assert (leap.month, leap.day) == (2, 29) and calendar.isleap(leap.year)
    assert INSTANTS["monday-0030-paris"]().weekday() == 0
    assert INSTANTS["sunday-2355-paris"]().weekday() == 6
