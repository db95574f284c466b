"""The staffing-shortfall rule kind: agents needed now (Erlang C on the window's arrivals and
AHT, at the scope's target) against agents staffed now.

The figure is checked against an independent Erlang C (the textbook sum, written here), the
agents against the wallboard's counting rule, and the rule's defaults against simulated days of
8 hours (arrivals on a working-day curve peaking at 30 a minute, AHT 4 minutes, agents as the
forecast asks at 80/20). Pages per seeded day, 5 normal days, then a day where 40 % of the agents
take a break for 30 minutes (measured with these tests' Floor):

| rule | normal days: pages | the drop |
|---|---|---|
| short by >= 1 agent (absolute), held 2 or 5 min | 5 to 12 a day | pages, then flaps all day |
| short by >= 3 agents, held 5 min | 5 to 9 a day | pages, then flaps all day |
| more than 10 % short, held 5 min | 1 to 3 a day | 1 page after 5 min |
| **more than 20 % short, held 2 min (default)** | **0** | **1 page after 2 min, 1 resolve** |

A floor staffed exactly to its forecast is an agent or two short whenever arrivals run above
the forecast, which they do half the time: only a share of the need separates that from a
real drop.
"""

from __future__ import annotations

import bisect
import functools
import math
import random

import pytest

from api.alerts.observe import staffed_by_scope, staffing_figure
from api.alerts.rules import Observation, step
from services import erlang, kpis
from services.alerting import AlertRule

RULE = AlertRule(name="short", metric="staffing_shortfall", channel="voice", queue="sales")


def reference_agents(rate: float, aht_s: float, target: float, threshold_s: float) -> int:
    """The textbook Erlang C: P(wait) = (A^N/N! * N/(N-A)) / (sum_{k<N} A^k/k! + that), then
    SL = 1 - P(wait) * exp(-(N-A) * t / AHT); the fewest N reaching the target."""
    a = rate * aht_s
    n = math.floor(a) + 1
    while True:
        top = a**n / math.factorial(n) * n / (n - a)
        wait = top / (sum(a**k / math.factorial(k) for k in range(n)) + top)
        if 1 - wait * math.exp(-(n - a) * threshold_s / aht_s) >= target:
            return n
        n += 1


@pytest.mark.parametrize(
    ("offered", "handled", "aht_s", "staffed"),
    [(60, 50, 240, 3), (150, 140, 180, 20), (12, 10, 600, 9), (300, 290, 90, 40)],
)
def test_the_figure_is_agents_needed_minus_staffed(
    offered: int, handled: int, aht_s: int, staffed: int
) -> None:
    c = {kpis.OFFERED: offered, kpis.HANDLED: handled, kpis.HANDLE_MS: handled * aht_s * 1000}
    value, volume = staffing_figure(c, 900, staffed, 0.8, 20)
    needed = reference_agents(offered / 900, aht_s, 0.8, 20)
    assert volume == offered
    assert value == pytest.approx((needed - staffed) / needed)


def test_no_figure_without_agents_or_a_handle_time() -> None:
    c = {kpis.OFFERED: 50, kpis.HANDLED: 40, kpis.HANDLE_MS: 40 * 200_000}
    assert staffing_figure(c, 900, None, 0.8, 20) == (None, 50)  # no agent states known
    assert staffing_figure({kpis.OFFERED: 50}, 900, 3, 0.8, 20) == (None, 50)  # nothing handled
    assert staffing_figure({}, 900, 3, 0.8, 20) == (None, 0)


def test_agents_count_as_the_wallboard_counts_them() -> None:
    active = ["ch|voice", "q|voice|sales", "q|chat|sales", "q|voice|billing", "ch|chat"]
    agents = {
        "ann": {"state": "available", "queues": {"sales": 1}},
        "bob": {"state": "on_contact", "queues": {"sales": 1, "billing": 1}},
        "cy": {"state": "Wrap-up", "queues": {"billing": 1}},  # a vendor's spelling
        "dee": {"state": "break", "queues": {"billing": 1}},  # not ready: not staffed
        "eve": {"state": "offline", "queues": {"sales": 1}},
        "fay": {"state": "available", "queues": {}},  # no queue seen yet: nowhere
    }
    staffed = staffed_by_scope(agents, active)
    assert staffed == {
        ("voice", "sales"): 2,
        ("chat", "sales"): 2,
        ("voice", "billing"): 2,
        ("voice", None): 3,
        ("chat", None): 2,
    }


def test_a_shortfall_rule_gets_its_own_defaults() -> None:
    assert (RULE.threshold, RULE.baseline_factor, RULE.window_seconds) == (0.2, None, 900)
    assert RULE.fast_window is None and RULE.for_seconds == 120
    assert AlertRule(metric="staffing_shortfall", threshold=0.3).threshold == 0.3


# --- simulated days -------------------------------------------------------------------------
EVERY_S = 15  # the evaluator's 5 s, coarser: each step runs an Erlang C
AHT_S = 240.0
DAY_S = 8 * 3600


class Floor:
    """Arrivals following a working-day curve (peak 30 a minute), handle times around 4
    minutes, and the agents the forecast asks for (Erlang C at 80/20 on the expected rate),
    minus the ones on a break."""

    def __init__(self, seed: int, drop: tuple[int, int] | None) -> None:
        rng = random.Random(seed)
        self.offers: list[float] = []
        self.ends: list[tuple[float, float]] = []  # (completed at, handle seconds)
        for t in range(DAY_S):
            if rng.random() < self.rate(t):
                handle = rng.expovariate(1 / AHT_S)
                self.offers.append(float(t))
                self.ends.append((t + 10 + handle, handle))
        self.ends.sort()
        self.end_times = [e for e, _ in self.ends]
        self.drop = drop

    @staticmethod
    def rate(t: float) -> float:
        return 0.5 * (0.4 + 0.6 * math.sin(math.pi * t / DAY_S))  # per second

    @staticmethod
    @functools.cache
    def planned(minute: int) -> int:
        return erlang.agents_erlang_c(Floor.rate(minute * 60), AHT_S, 0.8, 20).agents

    def staffed(self, t: float) -> int:
        planned = self.planned(int(t // 60))
        if self.drop is not None and self.drop[0] <= t < self.drop[1]:
            return planned - math.ceil(0.4 * planned)
        return planned

    def observe(self, now: float) -> Observation:
        start = (now // 60 + 1) * 60 - RULE.window_seconds
        offered = bisect.bisect_right(self.offers, now) - bisect.bisect_left(self.offers, start)
        lo, hi = bisect.bisect_left(self.end_times, start), bisect.bisect_right(self.end_times, now)
        handled = hi - lo
        handle_ms = int(sum(h for _, h in self.ends[lo:hi]) * 1000)
        c = {kpis.OFFERED: offered, kpis.HANDLED: handled, kpis.HANDLE_MS: handle_ms}
        value, volume = staffing_figure(c, max(60.0, now - start), self.staffed(now), 0.8, 20)
        return Observation(value=value, volume=volume)


def run(floor: Floor) -> list[tuple[str, float]]:
    state, moves = None, []
    for now in range(RULE.window_seconds, DAY_S, EVERY_S):
        state, done = step(RULE, state, floor.observe(float(now)), float(now), channel="voice")
        moves += [(m.kind, m.at) for m in done if m.notified]
    return moves


@pytest.mark.parametrize("seed", [1, 2])
def test_a_normal_day_staffed_to_forecast_pages_nobody(seed: int) -> None:
    assert run(Floor(seed, drop=None)) == []


def test_a_staffing_drop_pages_once_and_resolves_once() -> None:
    drop = (3 * 3600, 3 * 3600 + 1800)
    moves = run(Floor(7, drop=drop))
    assert [kind for kind, _ in moves] == ["firing", "resolved"]
    assert moves[0][1] - drop[0] <= 180
    assert drop[1] <= moves[1][1] <= drop[1] + 300
