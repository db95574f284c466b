"""The live simulator's floor (simulator/floor.py), recounted from the events it emits, as the
wallboard would see them: capacity, routing, agent states, queues under load, abandons,
occupancy and the daily arrival curve. Every run starts from the injected clock's day."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services import kpis
from simulator import center
from simulator.center import CenterConfig
from simulator.floor import Floor
from tests.clock import clock

PARIS = ZoneInfo("Europe/Paris")
BUSY, IDLE = ("on_contact", "wrap_up"), ("available",)
Event = dict[str, Any]


def local_midnight(zone: ZoneInfo) -> float:
    today = datetime.fromtimestamp(clock.now(), zone).date()
    return datetime(today.year, today.month, today.day, tzinfo=zone).timestamp()


@dataclass
class Run:
    floor: Floor
    start: float
    end: float
    events: list[Event]
    queue_lengths: list[int] = field(default_factory=list)  # waiting contacts, once a minute


def simulate(config: CenterConfig, start: float, hours: float, seed: int = 7) -> Run:
    floor = Floor(config, seed, start, "t")
    run = Run(floor, start, start + hours * 3600, [])
    for minute in range(1, int(hours * 60) + 1):
        run.events += floor.advance(start + minute * 60)
        run.queue_lengths.append(len(floor.waiting))
    return run


@pytest.fixture(scope="module")
def day() -> Run:
    """A whole local day (today's, by the injected clock) of the default center."""
    return simulate(CenterConfig(peak_rate_per_s=0.15, zone=PARIS), local_midnight(PARIS), 24)


def overload_config() -> CenterConfig:
    team = {"voice": 4, "digital": 2, "email": 1}
    return CenterConfig(peak_rate_per_s=0.15, team=team, flat_curve=True, breaks=False)


@pytest.fixture(scope="module")
def overload() -> Run:
    """Demand far above what a fixed small team can take."""
    return simulate(overload_config(), clock.now(), 1.5)


@pytest.fixture(scope="module")
def light() -> Run:
    """The peak hour's team facing a tenth of the peak's demand."""
    team = center.peak_team(CenterConfig(peak_rate_per_s=0.15))
    config = CenterConfig(peak_rate_per_s=0.015, team=team, flat_curve=True)
    return simulate(config, clock.now(), 3)


def ms(event: Event) -> int:
    return int(datetime.fromisoformat(event["time"]).timestamp() * 1000)


def instants(events: list[Event]) -> Iterator[list[Event]]:
    """Events by instant, in the order made (ids sort that way: the aggregator's tie-break)."""
    ordered = sorted(events, key=lambda e: (ms(e), e["id"]))
    for _, group in groupby(ordered, key=ms):
        yield list(group)


# --- capacity and routing ---


@pytest.mark.parametrize("name", ["day", "overload", "light"])
def test_no_agent_ever_holds_more_than_its_capacity(name: str, request: Any) -> None:
    run: Run = request.getfixturevalue(name)
    channel = {e["contact"]: e["channel"] for e in run.events if e["type"] == "contact.offered"}
    held: dict[str, dict[str, str]] = defaultdict(dict)
    most = 0
    for event in sorted(run.events, key=lambda e: (ms(e), e["id"])):
        if event["type"] == "contact.answered":
            holding = held[event["agent"]]
            holding[event["contact"]] = channel[event["contact"]]
            kinds = list(holding.values())
            assert "voice" not in kinds or len(kinds) == 1, (event, holding)
            assert len(kinds) <= center.MAX_WRITTEN, (event, holding)
            for kind in set(kinds):
                assert kinds.count(kind) <= center.CAPACITY[kind], (event, holding)
            most = max(most, len(kinds))
        elif event["type"] == "contact.completed":
            held[event["agent"]].pop(event["contact"])
    if name == "overload":
        assert most >= 2  # written contacts are worked side by side when they wait


@pytest.mark.parametrize("name", ["day", "overload", "light"])
def test_a_contact_is_answered_only_by_a_ready_agent_serving_its_queue(
    name: str, request: Any
) -> None:
    run: Run = request.getfixturevalue(name)
    state: dict[str, str] = {}
    channel = {e["contact"]: e["channel"] for e in run.events if e["type"] == "contact.offered"}
    answers = 0
    for event in sorted(run.events, key=lambda e: (ms(e), e["id"])):
        if event["type"] == "agent.state":
            state[event["agent"]] = event["state"]
        elif event["type"] == "contact.answered":
            agent = run.floor.agents[event["agent"]]
            assert event["queue"] in agent.queues, event
            allowed = ("available",) if channel[event["contact"]] == "voice" else IDLE + BUSY[:1]
            assert state.get(agent.name) in allowed, (event, state.get(agent.name))
            answers += 1
    assert answers > 100


@pytest.mark.parametrize("name", ["day", "overload", "light"])
def test_agent_states_follow_the_contacts_they_hold(name: str, request: Any) -> None:
    """At every instant: `on_contact` exactly while holding a contact; after-contact work only
    after one; not ready always with a reason; offline holds nothing."""
    run: Run = request.getfixturevalue(name)
    held: dict[str, set[str]] = defaultdict(set)
    state: dict[str, str] = {}
    seen: set[str] = set()
    for group in instants(run.events):
        for event in group:
            agent: str = event.get("agent", "")
            if event["type"] == "contact.answered":
                held[agent].add(event["contact"])
            elif event["type"] == "contact.completed":
                held[agent].discard(event["contact"])
            elif event["type"] == "agent.state":
                if event["state"] == "wrap_up":
                    assert state.get(agent) == "on_contact", event
                if event["state"] == "not_ready":
                    assert event.get("reason"), event
                state[agent] = event["state"]
                seen.add(event["state"])
        for agent in {e["agent"] for e in group if "agent" in e}:
            assert (state.get(agent) == "on_contact") == bool(held[agent]), (group, agent)
    assert seen >= {"available", "on_contact", "wrap_up"}


def test_the_floor_has_breaks_with_reasons_and_shifts(day: Run) -> None:
    states = [e for e in day.events if e["type"] == "agent.state"]
    reasons = {e["reason"] for e in states if e["state"] == "not_ready"}
    assert {"break", "lunch"} <= reasons
    assert any(e["state"] == "offline" for e in states)  # the evening shift goes home


# --- queues, waits and abandons ---


def contacts(run: Run, channel: str) -> dict[str, dict[str, Event]]:
    ids = {e["contact"] for e in run.events if e.get("channel") == channel}
    out: dict[str, dict[str, Event]] = defaultdict(dict)
    for event in run.events:
        if event.get("contact") in ids:
            out[event["contact"]].setdefault(event["type"], event)
    return out


def waits(run: Run, channel: str, since: float, until: float) -> list[float]:
    """Seconds from queued to answered, for contacts answered in [since, until)."""
    out = []
    for sheet in contacts(run, channel).values():
        if (
            "contact.answered" in sheet
            and since * 1000 <= ms(sheet["contact.answered"]) < until * 1000
        ):
            out.append((ms(sheet["contact.answered"]) - ms(sheet["contact.queued"])) / 1000)
    return out


def queue_abandons(run: Run, channel: str) -> tuple[int, int]:
    """(abandoned while queued, queued)."""
    sheets = contacts(run, channel).values()
    queued = [s for s in sheets if "contact.queued" in s]
    return sum("contact.abandoned" in s for s in queued), len(queued)


def test_demand_above_capacity_grows_the_queue_and_the_waits_and_customers_abandon(
    overload: Run,
) -> None:
    q = overload.queue_lengths
    assert q[-1] > 30 and q[-1] > 3 * max(1, q[len(q) // 6])  # email/SMS queues keep growing
    early = waits(overload, "voice", overload.start, overload.start + 600)
    late = waits(overload, "voice", overload.end - 1800, overload.end)
    assert sum(late) / len(late) > 2 * sum(early) / max(1, len(early))
    assert sum(late) / len(late) > 40
    abandoned, queued = queue_abandons(overload, "voice")
    assert abandoned > 0.2 * queued
    assert queue_abandons(overload, "chat")[0] > 0


def test_demand_well_below_capacity_keeps_waits_short_and_abandons_near_zero(light: Run) -> None:
    voice = waits(light, "voice", light.start, light.end)
    assert len(voice) > 50 and sum(voice) / len(voice) < 10
    assert max(light.queue_lengths) <= 3
    for channel in ("voice", "chat"):
        abandoned, queued = queue_abandons(light, channel)
        assert queued > 10 and abandoned <= 0.02 * queued


def test_the_team_holds_through_a_drop_in_the_curve() -> None:
    """At 21:00 local the curve falls from 5 % to 2 % of the peak; a team sized only for the
    next 15 minutes left the floor short before it (a fifth of queued calls abandoned)."""
    today = datetime.fromtimestamp(clock.now(), PARIS).date()
    start = datetime(today.year, today.month, today.day, 20, 30, tzinfo=PARIS).timestamp()
    run = simulate(CenterConfig(peak_rate_per_s=8.0, zone=PARIS), start, 1)
    abandoned, queued = queue_abandons(run, "voice")
    assert queued > 300 and abandoned <= 0.05 * queued


def test_abandons_come_only_from_waiting_contacts(overload: Run, day: Run) -> None:
    for run in (overload, day):
        for sheet in contacts(run, "voice").values():
            if "contact.abandoned" in sheet:
                assert "contact.answered" not in sheet
        assert not [e for e in run.events if e["type"] == "contact.abandoned" and "agent" in e]


# --- occupancy ---


def occupancy(run: Run, agent: str | None = None) -> float:
    """On-contact and wrap-up time over those plus available time (the aggregator's definition),
    for one agent or the whole floor."""
    by_agent: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for e in run.events:
        if e["type"] == "agent.state" and agent in (None, e["agent"]):
            by_agent[e["agent"]].append((ms(e), e["id"], e["state"]))
    total: dict[str, float] = defaultdict(float)
    for changes in by_agent.values():
        seconds = kpis.time_in_state(changes, int(run.start * 1000), int(run.end * 1000))
        for state, s in seconds.items():
            total[state] += s
    return kpis.occupancy(total, BUSY, IDLE) or 0.0


@pytest.mark.parametrize("name", ["day", "overload", "light"])
def test_occupancy_stays_below_full(name: str, request: Any) -> None:
    run: Run = request.getfixturevalue(name)
    agents = {e["agent"] for e in run.events if e["type"] == "agent.state"}
    assert all(occupancy(run, a) < 0.995 for a in agents)
    assert occupancy(run) < 0.99


def test_occupancy_is_high_under_load_and_low_when_quiet(overload: Run, light: Run) -> None:
    assert occupancy(overload) > 0.85
    assert occupancy(light) < 0.5


# --- the daily curve ---


def test_arrivals_follow_the_daily_curve(day: Run) -> None:
    config = day.floor.config
    offered = [ms(e) / 1000 for e in day.events if e["type"] == "contact.offered"]
    observed, expected = [], []
    for hour in range(24):
        since, until = day.start + hour * 3600, day.start + (hour + 1) * 3600
        observed.append(sum(since <= t < until for t in offered))
        steps = [since + (i + 0.5) * 60 for i in range(60)]
        expected.append(sum(center.arrival_rate(config, t) * 60 for t in steps))
    for got, want in zip(observed, expected, strict=True):
        assert abs(got - want) <= 4 * math.sqrt(want) + 3, (observed, expected)
    busiest = max(range(24), key=lambda h: expected[h])
    quietest = min(range(24), key=lambda h: expected[h])
    assert observed[busiest] > 5 * max(1, observed[quietest])


def test_the_team_follows_the_curve(day: Run) -> None:
    logged_in: dict[int, set[str]] = defaultdict(set)
    state: dict[str, str] = {}
    for event in sorted(day.events, key=lambda e: (ms(e), e["id"])):
        if event["type"] == "agent.state":
            state[event["agent"]] = event["state"]
            hour = int((ms(event) / 1000 - day.start) // 3600)
            on = {a for a, s in state.items() if s != "offline"}
            logged_in[hour] |= on
    night = len(logged_in[3])
    peak = max(len(v) for v in logged_in.values())
    assert night < peak / 3


def test_the_same_seed_gives_the_same_floor() -> None:
    start = clock.now()
    one = simulate(overload_config(), start, 0.2, seed=3).events
    two = simulate(overload_config(), start, 0.2, seed=3).events
    assert one == two and one != simulate(overload_config(), start, 0.2, seed=4).events
