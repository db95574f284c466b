"""Demo history rows: one per quarter hour, channel and queue, across DST nights; a working
week's shape; the same seed gives the same file."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

from simulator.history import demo_intervals
from simulator.scenario import QUEUES

PARIS = ZoneInfo("Europe/Paris")


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_spring_forward_week_has_each_quarter_hour_once() -> None:
    end = datetime(2030, 4, 1, tzinfo=PARIS)  # the Monday after the night of 31 March 2030
    got = rows(demo_intervals(end, 1, PARIS))
    keys = Counter((r["start"], r["channel"], r["queue"]) for r in got)
    assert max(keys.values()) == 1  # a skipped local hour never maps twice
    starts = {datetime.fromisoformat(r["start"]) for r in got}
    assert all(s.minute % 15 == 0 and s.second == 0 for s in starts)
    assert len(starts) <= 7 * 96 - 4  # 23-hour Sunday
    assert {r["queue"] for r in got} == {q for qs in QUEUES.values() for q in qs}
    for r in got:
        assert int(r["answered"]) + int(r["abandoned"]) == int(r["offered"]) > 0
        assert int(r["answered_within_sl"]) <= int(r["answered"])


def test_weekdays_are_busier_than_weekends_and_the_seed_decides() -> None:
    end = datetime(2030, 6, 3, tzinfo=PARIS)  # a Monday: the week before is Monday to Sunday
    text = demo_intervals(end, 2, PARIS, seed=7)
    assert text == demo_intervals(end, 2, PARIS, seed=7)
    per_day: Counter[int] = Counter()
    for r in rows(text):
        per_day[datetime.fromisoformat(r["start"]).astimezone(PARIS).weekday()] += int(r["offered"])
    assert min(per_day[d] for d in range(5)) > max(per_day[5], per_day[6])


def test_the_past_runs_at_the_live_simulators_peak() -> None:
    """`up --simulate --rate R` seeds a past whose busiest weekday hour holds about R x 3600
    contacts, as the live floor then offers (simulator/center.py uses the same curve)."""
    end = datetime(2030, 6, 3, tzinfo=PARIS)
    for peak in (120.0, 1080.0):
        at_peak: Counter[str] = Counter()
        for r in rows(demo_intervals(end, 2, PARIS, seed=3, peak_per_hour=peak)):
            local = datetime.fromisoformat(r["start"]).astimezone(PARIS)
            if local.weekday() < 5 and local.hour == 10:  # the morning hump, 10:00 to 11:00
                at_peak[local.date().isoformat()] += int(r["offered"])
        mean = sum(at_peak.values()) / len(at_peak)
        assert 0.85 * peak <= mean <= 1.05 * peak, (peak, mean)


def test_demo_agents_carry_exactly_the_handled_work_of_the_rows() -> None:
    """Cost per case on a first run rests on these: every handled contact and handle second
    of the demo rows belongs to one demo agent, and each agent's busy time fits its interval."""
    import csv as _csv
    import io as _io
    from datetime import datetime as _dt
    from zoneinfo import ZoneInfo as _Zone

    from services import kpis
    from simulator.history import INTERVAL_MS, demo_agents, demo_intervals

    zone = _Zone("Europe/Paris")
    text = demo_intervals(_dt(2026, 3, 30, tzinfo=zone), 1, zone, seed=4)
    times, counters = demo_agents(text)
    want: dict[tuple[int, str, str], tuple[int, int]] = {}
    for row in _csv.DictReader(_io.StringIO(text)):
        start = int(_dt.fromisoformat(row["start"]).timestamp())
        h, ms = want.get((start, row["channel"], row["queue"]), (0, 0))
        want[(start, row["channel"], row["queue"])] = (
            h + int(row["handled"]),
            ms + int(row["handle_seconds"]) * 1000,
        )
    got: dict[tuple[int, str, str], tuple[int, int]] = {}
    for (start, agent), c in counters.items():
        channel = agent.split("-")[1]
        for name, value in c.items():
            group = kpis.parse_queue_handle_field(name)
            if group is not None:
                assert group[0] == channel
                h, ms = got.get((start, *group), (0, 0))
                got[(start, *group)] = (h, ms + value)
        assert (start, agent) in times
    for c in counters.values():
        share = [k for k in c if k.startswith(kpis.QUEUE_HANDLE_MS)]
        assert sum(c[k] for k in share) == c["handle_ms"]
    assert {k: v[1] for k, v in got.items() if v[1]} == {k: v[1] for k, v in want.items() if v[1]}
    handled = sum(c["handled"] for c in counters.values())
    assert handled == sum(v[0] for v in want.values()) > 100
    for row in times.values():
        assert row["logged_in_ms"] == INTERVAL_MS
        assert row["on_contact_ms"] + row["available_ms"] == INTERVAL_MS
