"""Cost per case end to end: agent shifts and contacts in over HTTP, through the broker, the
aggregator and the history rollup, out of `/api/v1/volume` and `/api/v1/productivity`; every
figure equals the recount of docs/metrics.md#cost (tests/oracle.py `labour`), also after
state changes and contacts that arrive hours late (their intervals were already rolled).

The data sit in the 28 hours before the current interval, in a zone with a half-hour offset,
so local days (the allocation's unit) are not UTC days, whatever the instant.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services import keys
from simulator.scenario import iso
from tests import oracle
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.harness import Pipeline, wait_until

pytestmark = pytest.mark.e2e

ZONE = "Asia/Kolkata"
AGENTS: dict[
    str, list[tuple[str, str | None]]
] = {  # each agent's queues: Ana one, Ben and Cho blended, Dev logs in but handles none
    "cp-ana": [("voice", "sales")],
    "cp-ben": [("voice", "sales"), ("voice", "vip"), ("chat", "support")],
    "cp-cho": [("chat", "support"), ("email", None)],
    "cp-dev": [],
}
ENV = {
    "CCPULSE_TIMEZONE": ZONE,
    "CCPULSE_COST_PER_HOUR": "20",
    "CCPULSE_CHANNEL_COST_PER_HOUR": '{"voice": 30}',
    "CCPULSE_QUEUE_COST_PER_HOUR": '{"vip": 45}',
    "CCPULSE_HISTORY_INTERVAL_SECONDS": "1",
}


def rate(channel: str, queue: str) -> float:
    """The hourly costs of ENV, spelled out again: queue first, then channel, then default."""
    return 45.0 if queue == "vip" else 30.0 if channel == "voice" else 20.0


def shifts(now: float, seed: int = 11) -> tuple[list[dict[str, Any]], int, int]:
    """Two or three shifts per agent over 28 hours ending before the current interval."""
    end = keys.interval_start_s(now) - 120
    start = end - 28 * 3600
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []

    def emit(kind: str, t: float, **fields: Any) -> None:
        events.append({"id": f"cp-{len(events)}", "type": kind, "time": iso(t), **fields})

    for agent, queues in AGENTS.items():
        t = start + rng.uniform(0, 1800)
        while t < end - 3600:
            shift_end = min(end - 60, t + rng.uniform(3 * 3600, 7 * 3600))
            emit("agent.state", t, agent=agent, state="available")
            while t < shift_end - 1200:
                t += rng.uniform(30, 500)
                if not queues or rng.random() < 0.1:  # a break, and back
                    emit("agent.state", t, agent=agent, state="not_ready")
                    t += rng.uniform(60, 600)
                    emit("agent.state", t, agent=agent, state="available")
                    continue
                channel, queue = rng.choice(queues)
                contact = f"cp-c{len(events)}"
                where = {"channel": channel, **({"queue": queue} if queue else {})}
                emit("contact.offered", t - rng.uniform(5, 90), contact=contact, **where)
                emit("contact.answered", t, contact=contact, agent=agent)
                emit("agent.state", t, agent=agent, state="on_contact")
                t += rng.uniform(40, 700)
                emit("contact.completed", t, contact=contact)
                emit("agent.state", t, agent=agent, state="wrap_up")
                t += rng.uniform(5, 90)
                emit("agent.state", t, agent=agent, state="available")
            t = max(t + 1, shift_end)
            emit("agent.state", t, agent=agent, state="offline")
            t += rng.uniform(3600, 4 * 3600)
    for n in range(15):  # abandoned, no agent: in the volume, never in anyone's cost
        t = rng.uniform(start, end - 600)
        emit("contact.offered", t, contact=f"cp-ab{n}", channel="voice", queue="sales")
        emit("contact.abandoned", t + 40, contact=f"cp-ab{n}")
    return events, start, end


def local_days(start: int, end: int) -> list[tuple[int, int]]:
    zone = ZoneInfo(ZONE)
    day = datetime.fromtimestamp(start, zone).date()
    out: list[tuple[int, int]] = []
    while True:
        lo = int(datetime.combine(day, datetime.min.time(), zone).timestamp())
        if lo >= end:
            return out
        day += timedelta(days=1)
        out.append((lo, int(datetime.combine(day, datetime.min.time(), zone).timestamp())))


def handled(events: list[dict[str, Any]], lo: int, hi: int) -> dict[tuple[str, str, str], int]:
    """Contacts completed after an answer in [lo, hi), per (agent, channel, queue)."""
    out: dict[tuple[str, str, str], int] = {}
    for c in oracle.contacts(events).values():
        o = oracle.outcome(c)
        if o.handle_ms is None or o.completed is None or o.channel is None:
            continue
        if lo * 1000 <= o.completed < hi * 1000:
            key = (o.agent or "", o.channel, o.queue or "")
            out[key] = out.get(key, 0) + 1
    return out


def get(p: Pipeline, path: str, **params: Any) -> dict[str, Any]:
    r = httpx.get(f"{p.api_url}{path}", params={"tz": ZONE, **params}, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def close(got: Any, want: float | None) -> bool:
    if want is None or got is None:
        return bool(got == want)
    return bool(abs(float(got) - want) <= 2e-6 + 1e-9 * abs(want))


def expected(count: int, ms: float, cost: float) -> dict[str, float | None]:
    """A row's cost columns by docs/metrics.md#cost, from its handled, logged-in ms and cost."""
    return {
        "handled": count,
        "logged_in_hours": ms / 3_600_000,
        "labour_cost": cost,
        "cost_per_handled": cost / count if count else None,
        "handled_per_logged_in_hour": count / (ms / 3_600_000) if ms else None,
    }


def volume_problems(
    p: Pipeline, events: list[dict[str, Any]], days: list[tuple[int, int]], now_ms: int, **q: Any
) -> list[str]:
    doc = get(p, "/api/v1/volume", **q)
    assert doc["cost"] == {"currency": "EUR", "configured": True}
    group = q.get("group_by", "")
    problems = []
    for row in doc["rows"]:
        lo = int(datetime.fromisoformat(row["start"].replace("Z", "+00:00")).timestamp())
        hi = int(datetime.fromisoformat(row["end"].replace("Z", "+00:00")).timestamp())
        ms = cost = 0.0
        for (_, channel, queue), part in oracle.labour(events, lo, hi, days, now_ms).items():
            if (channel, queue) == ("", "") and group:
                continue  # idle time: the centre's rows only
            if group == "channel" and channel != row["channel"]:
                continue
            if group == "queue" and queue != row["queue"]:
                continue
            ms += part
            cost += part / 3_600_000 * rate(channel, queue)
        count = sum(
            n
            for (_, channel, queue), n in handled(events, lo, hi).items()
            if group != "channel" or channel == row["channel"]
            if group != "queue" or queue == row["queue"]
        )
        want = expected(count, ms, cost)
        problems += [
            f"{q} {row['start']} {row.get(group)} {name}: {row[name]} != {value}"
            for name, value in want.items()
            if not close(row[name], value)
        ]
    return problems


def productivity_problems(
    p: Pipeline, events: list[dict[str, Any]], days: list[tuple[int, int]], now_ms: int
) -> list[str]:
    doc = get(p, "/api/v1/productivity", interval="1d", **{"from": iso(days[0][0])})
    rows = {(r["start"], r["agent"]): r for r in doc["rows"]}
    problems = []
    for lo, hi in days:
        labour = oracle.labour(events, lo, hi, days, now_ms)
        counts = handled(events, lo, hi)
        for agent in AGENTS:
            ms = sum(v for (a, _, _), v in labour.items() if a == agent)
            cost = sum(v / 3_600_000 * rate(c, q) for (a, c, q), v in labour.items() if a == agent)
            count = sum(n for (a, _, _), n in counts.items() if a == agent)
            row = rows.get((iso_z(lo), agent))
            if not ms and not count:
                continue
            if row is None:
                problems.append(f"{agent} {iso_z(lo)}: no row")
                continue
            want = expected(count, ms, cost)
            problems += [
                f"{agent} {iso_z(lo)} {name}: {row[name]} != {value}"
                for name, value in want.items()
                if not close(row[name], value)
            ]
    return problems


def iso_z(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")


def test_cost_per_case_equals_the_recount_with_late_events(
    pipeline_factory: PipelineFactory,
) -> None:
    p = pipeline_factory(ENV)
    now = clock.now()
    events, start, end = shifts(now)
    days = local_days(start, end)
    assert sum(1 for e in events if e["type"] == "contact.completed") > 100
    rng = random.Random(5)
    order = list(events)
    rng.shuffle(order)
    first, late = order[: len(order) * 2 // 3], order[len(order) * 2 // 3 :]
    assert p.post(first) == len(first)
    p.wait_applied(len(first))
    base = {"from": iso(days[0][0]), "to": iso(end + 60)}
    wait_until(  # the first part rolled, so the late part corrects rows already written
        lambda: sum(r["logged_in_hours"] or 0 for r in get(p, "/api/v1/volume", **base)["rows"]),
        60,
        "logged-in time in history",
        1.0,
    )
    assert p.post(late) == len(late)
    p.wait_applied(len(events))
    now_ms = int(clock.now() * 1000)
    queries = [
        {"interval": "1h", **base},
        {"interval": "1h", "group_by": "channel", **base},
        {"interval": "1d", "group_by": "queue", **base},
        {"interval": "1d", **base},
    ]
    seen: list[list[str]] = []

    def settled() -> bool:
        seen.clear()
        seen.extend(volume_problems(p, events, days, now_ms, **q) for q in queries)
        seen.append(productivity_problems(p, events, days, now_ms))
        return not any(seen)

    try:
        wait_until(settled, 90, "cost figures equal to the recount", 2.0)
    except AssertionError as exc:
        raise AssertionError([problem for part in seen for problem in part][:20]) from exc
    doc = get(p, "/api/v1/volume", **{**base, "interval": "1d"})
    assert any(r["labour_cost"] and r["cost_per_handled"] for r in doc["rows"])


def test_without_an_hourly_cost_there_is_time_but_no_cost(pipeline: Pipeline) -> None:
    doc = get(pipeline, "/api/v1/volume", interval="1h")
    assert doc["cost"]["configured"] is False
    assert all(r["labour_cost"] is None and r["cost_per_handled"] is None for r in doc["rows"])
