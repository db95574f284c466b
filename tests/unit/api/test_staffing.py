"""Erlang C against published worked examples; Erlang A against its limits; history bucketing."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.live_reader import read_options
from api.planning.buckets import bucket_bounds, bucket_spans, local_floor, offset_segments
from api.planning.staffing import combine, heatmap, p90, staffing_by_channel, staffing_rows
from api.planning.sums import Cell, figures, options_for, reduce_live
from services import erlang, kpis
from services.settings import Settings

# Call Centre Helper's worked example: 100 calls in 30 minutes, AHT 180 s, 80 % in 20 s.
# Published: 10 erlangs; 11 agents -> P(wait) 68.21 %, SL 39.0 %; 14 agents needed (SL 88.8 %),
# 20 scheduled with 30 % shrinkage.
RATE = 100 / 1800


@pytest.mark.parametrize(
    ("agents", "p_wait", "sl"),
    [(11, 0.6821, 0.3896), (12, 0.4494, 0.6402), (13, 0.2853, 0.7956), (14, 0.1741, 0.8884)],
)
def test_erlang_c_reproduces_the_published_table(agents: int, p_wait: float, sl: float) -> None:
    assert erlang.erlang_c(agents, 10.0) == pytest.approx(p_wait, abs=5e-5)
    assert erlang.service_level_c(agents, 10.0, 180, 20) == pytest.approx(sl, abs=5e-5)


def test_erlang_c_agents_for_the_target() -> None:
    result = erlang.agents_erlang_c(RATE, 180, 0.8, 20)
    assert result.agents == 14
    assert result.occupancy == pytest.approx(10 / 14)
    assert math.ceil(result.agents / (1 - 0.3)) == 20


def test_erlang_c_large_center_stays_finite() -> None:
    # 500 erlangs: factorials would overflow; the Erlang B recursion does not.
    result = erlang.agents_erlang_c(5000 / 1800, 180, 0.9, 15)
    assert 500 < result.agents < 560 and result.service_level >= 0.9


def test_erlang_a_without_abandons_is_erlang_c() -> None:
    served, abandoned = erlang.erlang_a(13, RATE, 180, 1e9, 20)
    assert served == pytest.approx(erlang.service_level_c(13, 10.0, 180, 20), abs=1e-4)
    assert abandoned < 1e-5


@settings(max_examples=40, deadline=None)
@given(
    agents=st.integers(5, 40),
    patience=st.floats(30, 1200),
)
def test_erlang_a_is_a_distribution_and_more_agents_help(agents: int, patience: float) -> None:
    rate = 0.1
    served, abandoned = erlang.erlang_a(agents, rate, 180, patience, 20)
    assert 0 <= served <= 1 and 0 <= abandoned <= 1 and served + abandoned <= 1 + 1e-9
    more, fewer_abandons = erlang.erlang_a(agents + 1, rate, 180, patience, 20)
    assert more >= served - 1e-9 and fewer_abandons <= abandoned + 1e-9


def test_erlang_a_needs_no_more_agents_than_erlang_c_when_callers_hang_up() -> None:
    a = erlang.agents_erlang_a(RATE, 180, 120, 0.8, 20)
    c = erlang.agents_erlang_c(RATE, 180, 0.8, 20)
    assert a.agents <= c.agents and a.service_level >= 0.8
    assert a.abandon_probability is not None and 0 < a.abandon_probability < 0.2


def test_offset_segments_cut_at_dst() -> None:
    zone = ZoneInfo("Europe/Paris")
    start = int(datetime(2026, 3, 28, tzinfo=UTC).timestamp())
    segments = offset_segments(start, start + 3 * 86400, zone)
    assert [s.offset_s for s in segments] == [3600, 7200]
    assert segments[0].end_s == int(datetime(2026, 3, 29, 1, tzinfo=UTC).timestamp())


def test_daily_bucket_on_a_dst_day_has_23_hours() -> None:
    zone = ZoneInfo("Europe/Paris")
    day = datetime(2026, 3, 29, 12, tzinfo=zone)
    key = (int(day.timestamp()) + 7200) // 86400
    lo, hi = bucket_bounds(key, "1d", 7200, zone)
    assert hi - lo == 23 * 3600
    assert datetime.fromtimestamp(lo, zone).hour == 0


def test_weeks_start_on_monday_and_half_hour_zones_keep_local_hours() -> None:
    zone = ZoneInfo("Asia/Kolkata")
    t = datetime(2026, 11, 26, 10, 40, tzinfo=zone)  # a Thursday
    assert local_floor(t, "1w").weekday() == 0 and local_floor(t, "1w").hour == 0
    key = (int(t.timestamp()) + 19800) // 3600
    lo, _ = bucket_bounds(key, "1h", 19800, zone)
    assert datetime.fromtimestamp(lo, zone).strftime("%H:%M") == "10:00"


def test_figures_sum_service_level_parts_across_thresholds() -> None:
    # voice 20 s: 1 of 2 answered in time; chat 60 s: 2 of 2 -> (1 + 2) / 4, not a mean of rates
    voice = {kpis.OFFERED: 2, kpis.ANSWERED: 2, "aw:3": 1, "aw:6": 1}
    chat = {kpis.OFFERED: 2, kpis.ANSWERED: 2, "aw:3": 1, "aw:6": 1}
    settings = Settings(auth="off")
    cell = Cell(0, 3600)
    cell.add("voice", "", reduce_live(voice, read_options(settings, "voice")))
    cell.add("chat", "", reduce_live(chat, read_options(settings, "chat")))
    out = figures(cell, options_for(settings))
    assert out["service_level"] == pytest.approx(3 / 4)
    assert out["offered"] == 4


def test_heatmap_mean_and_p90() -> None:
    zone = ZoneInfo("UTC")
    weeks = [datetime(2026, 11, 2, tzinfo=zone), datetime(2026, 11, 9, tzinfo=zone)]
    monday_9 = int(datetime(2026, 11, 2, 9, tzinfo=zone).timestamp())
    cells = heatmap({monday_9: 10, monday_9 + 7 * 86400: 30}, weeks, zone)
    cell = next(c for c in cells if c["weekday"] == 0 and c["hour"] == 9)
    assert cell["mean"] == 20 and cell["p90"] == 30
    assert len(cells) == 7 * 24
    assert p90(list(range(1, 11))) == 9


def test_heatmap_puts_dst_hours_in_their_own_local_cell() -> None:
    """Paris: 2026-03-29 skips 02:00 (a spring Sunday); 2026-10-25 repeats 02:00 (autumn)."""
    zone = ZoneInfo("Europe/Paris")
    spring = [datetime(2026, 3, 23, tzinfo=zone), datetime(2026, 3, 30, tzinfo=zone)]
    three_am = int(datetime(2026, 3, 29, 3, tzinfo=zone).timestamp())  # 01:00 UTC
    hourly = {three_am: 8, three_am + 7 * 86400: 4}
    cells = {(c["weekday"], c["hour"]): c for c in heatmap(hourly, spring, zone)}
    assert cells[(6, 2)]["mean"] == 0  # the skipped hour has no contacts, not 03:00's
    assert cells[(6, 3)]["mean"] == 6
    autumn = [datetime(2026, 10, 19, tzinfo=zone)]
    first, second = 1_792_886_400, 1_792_890_000  # 00:00 and 01:00 UTC: both 02:00 in Paris
    assert datetime.fromtimestamp(first, zone).hour == datetime.fromtimestamp(second, zone).hour
    cells = {(c["weekday"], c["hour"]): c for c in heatmap({first: 5, second: 7}, autumn, zone)}
    assert cells[(6, 2)]["mean"] == 12  # both occurrences of the repeated hour
    assert sum(c["mean"] for c in cells.values()) == 12


def test_staffing_forecast_is_the_mean_of_past_weeks() -> None:
    zone = ZoneInfo("UTC")
    day = datetime(2026, 11, 30, tzinfo=zone)
    nine = int(datetime(2026, 11, 23, 9, tzinfo=zone).timestamp())
    week1 = {nine: {kpis.OFFERED: 60, kpis.HANDLED: 60, kpis.HANDLE_MS: 60 * 180_000}}
    week2 = {
        nine - 7 * 86400 + 1800: {
            kpis.OFFERED: 140,
            kpis.HANDLED: 140,
            kpis.HANDLE_MS: 140 * 180_000,
        }
    }
    rows = staffing_rows([week1, week2], 2, day, 3600, 0.8, 20, 0.3)
    nine_row = rows[9]
    assert nine_row["forecast_offered"] == 100  # (60 + 140) / 2 in the 09:00 hour
    assert nine_row["agents_erlang_c"] == erlang.agents_erlang_c(100 / 3600, 180, 0.8, 20).agents
    assert rows[3]["agents_erlang_c"] == 0


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(0.001, 5.0),
    aht=st.floats(30, 900),
    target=st.floats(0.5, 0.999),
    threshold=st.integers(5, 120),
)
def test_erlang_c_agents_are_the_fewest_that_reach_the_target(
    rate: float, aht: float, target: float, threshold: int
) -> None:
    n = erlang.agents_erlang_c(rate, aht, target, threshold).agents
    traffic = rate * aht
    assert erlang.service_level_c(n, traffic, aht, threshold) >= target
    assert n - 1 <= traffic or erlang.service_level_c(n - 1, traffic, aht, threshold) < target


def test_bucket_spans_tile_the_range_in_local_buckets_across_dst() -> None:
    dt = datetime
    paris = ZoneInfo("Europe/Paris")
    spring = dt(2027, 3, 28, tzinfo=paris)  # 23 local hours
    hours = bucket_spans("1h", spring, dt(2027, 3, 29, tzinfo=paris))
    assert len(hours) == 23 and hours[0][0] == int(spring.timestamp())
    assert all(a[1] == b[0] for a, b in itertools.pairwise(hours))
    assert hours[-1][1] == int(dt(2027, 3, 29, tzinfo=paris).timestamp())
    days = bucket_spans("1d", dt(2027, 10, 30, tzinfo=paris), dt(2027, 11, 1, tzinfo=paris))
    assert [hi - lo for lo, hi in days] == [86400, 90000]  # the fall-back day has 25 hours
    quarters = bucket_spans("15m", dt(2027, 1, 4, tzinfo=paris), dt(2027, 1, 4, 2, tzinfo=paris))
    assert len(quarters) == 8
    for lo, _ in hours + days + quarters:  # every span starts where local_floor puts a bucket
        start = dt.fromtimestamp(lo, paris)
        assert any(local_floor(start, i) == start for i in ("1h", "1d", "15m"))


def test_each_channel_is_staffed_against_its_own_threshold_and_the_agents_add_up() -> None:
    """E-mail answered within a day needs far fewer agents than the same load within 20 s; the
    day's rows add the channels' agents and weigh their rates by forecast (issue 16)."""
    start = datetime(2030, 1, 7, tzinfo=UTC)
    busy = {
        int(start.timestamp()) + 9 * 3600 + i * 900: {
            kpis.OFFERED: 100,
            kpis.HANDLED: 100,
            kpis.HANDLE_MS: 100 * 300_000,
        }
        for i in range(4)
    }
    days = {"voice": [busy], "email": [busy]}
    own = staffing_by_channel(days, {"voice": 20, "email": 86400}, 1, start, 3600, 0.8, 0.3)
    same = staffing_by_channel(days, {"voice": 20, "email": 20}, 1, start, 3600, 0.8, 0.3)
    nine_own, nine_same = own[9], same[9]
    voice, email = nine_own["by_channel"]["voice"], nine_own["by_channel"]["email"]
    assert voice["agents_erlang_c"] == nine_same["by_channel"]["email"]["agents_erlang_c"]
    assert email["agents_erlang_c"] < voice["agents_erlang_c"]
    assert nine_own["agents_erlang_c"] == voice["agents_erlang_c"] + email["agents_erlang_c"]
    assert nine_own["agents_erlang_c"] < nine_same["agents_erlang_c"]
    assert nine_own["forecast_offered"] == 800
    assert nine_own["aht_seconds"] == 300
    want_sl = (voice["service_level_erlang_c"] + email["service_level_erlang_c"]) / 2
    assert nine_own["service_level_erlang_c"] == pytest.approx(want_sl, abs=1e-4)
    # One channel: its own rows unchanged, with the mix of one.
    alone = staffing_rows([busy], 1, start, 3600, 0.8, 20, 0.3)
    single = combine({"voice": alone})
    assert [{k: v for k, v in r.items() if k != "by_channel"} for r in single] == alone
    assert combine({}) == [] and combine({"voice": []}) == []


def test_the_current_week_counts_in_the_heat_map_where_its_hour_is_over() -> None:
    """A first run has days, not weeks, of history: the current week so far joins the cells
    whose hour has ended, and each cell says how many weeks it holds (issue 16)."""
    zone = ZoneInfo("Europe/Paris")
    this_week = datetime(2030, 3, 25, tzinfo=zone)  # a Monday, DST began the day before
    weeks = [datetime(2030, 3, 11, tzinfo=zone), datetime(2030, 3, 18, tzinfo=zone)]
    now = datetime(2030, 3, 27, 10, 30, tzinfo=zone)  # Wednesday 10:30
    tue_nine = [int(datetime(2030, 3, day, 9, tzinfo=zone).timestamp()) for day in (12, 19, 26)]
    wed_ten = int(datetime(2030, 3, 27, 10, tzinfo=zone).timestamp())  # not over at 10:30
    hourly = {tue_nine[0]: 4, tue_nine[1]: 6, tue_nine[2]: 11, wed_ten: 50}
    cells = {(c["weekday"], c["hour"]): c for c in heatmap(hourly, weeks, zone, now)}
    tue = cells[(1, 9)]
    assert tue["weeks"] == 3 and tue["current_week"] and tue["mean"] == 7 and tue["p90"] == 11
    wed = cells[(2, 10)]
    assert wed["weeks"] == 2 and not wed["current_week"] and wed["mean"] == 0
    assert cells[(2, 9)]["current_week"] and not cells[(6, 23)]["current_week"]
    before = {(c["weekday"], c["hour"]): c for c in heatmap(hourly, weeks, zone)}
    assert before[(1, 9)]["mean"] == 5 and before[(1, 9)]["weeks"] == 2
    assert not any(c["current_week"] for c in before.values())
    assert this_week == weeks[-1] + timedelta(weeks=1)
