"""Agents by channel and queue in the live document, recounted here (issue 16, "agents
available"): agent states and contacts go through the aggregator's own plan-and-apply path into
the session's Redis, the api reads them, and every count is compared with one made in this test
from the table below (each agent's expected bucket written by hand, not by services.agentstates).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from api.documents import LiveDocument
from ccpulse.stack import EmbeddedRedis
from simulator.scenario import iso
from tests.apiserver import VIEWER, api_settings, asgi_client, bearer
from tests.clock import clock
from tests.integration.api.test_api_app_in_process import apply_events

QUEUES = {"sales": "voice", "support": "voice", "chat-support": "chat", "email-support": "email"}
# name: (state as the source sends it, the bucket it must land in, reason if not ready,
#        seconds in state, queues it was seen on)
AGENTS: dict[str, tuple[str, str, str | None, float, list[str]]] = {
    "ann": ("Available", "available", None, 95, ["sales"]),
    "bea": ("available", "available", None, 301, ["sales", "support"]),
    "cai": ("busy", "on_contact", None, 40, ["support"]),
    "dov": ("ACW", "after_contact_work", None, 21, ["support", "chat-support"]),
    "eli": ("Lunch", "not_ready", "Lunch", 600, ["sales"]),
    "fay": ("Lunch", "not_ready", "Lunch", 30, ["chat-support"]),
    "gus": ("Training", "not_ready", "Training", 200, ["sales"]),
    "hal": ("logged_out", "offline", None, 3000, ["email-support"]),
    "ida": ("available", "available", None, 12, ["chat-support"]),
    "jon": ("available", "available", None, 50, []),  # no queue: in no scope
}
BUCKETS = ("available", "on_contact", "after_contact_work", "not_ready", "offline")


def events(now: float) -> list[dict[str, Any]]:
    """One offered contact per queue (so every queue is listed), then each agent's state event,
    naming each of its queues on its own event."""
    out: list[dict[str, Any]] = []
    for n, (queue, channel) in enumerate(QUEUES.items()):
        out.append(
            {
                "type": "contact.offered",
                "time": iso(now - 200 + n),
                "contact": f"c-{queue}",
                "channel": channel,
                "queue": queue,
            }
        )
    for name, (state, _, _, age, queues) in AGENTS.items():
        for k, queue in enumerate(queues or [None]):
            event: dict[str, Any] = {
                "type": "agent.state",
                "time": iso(now - age - k * 0.001),  # the earliest names the newest state last
                "agent": name,
                "state": state,
            }
            if queue is not None:
                event.update(queue=queue, channel=QUEUES[queue])
            out.append(event)
    return out


def recount(members: list[str], late: float = 0.0) -> dict[str, Any]:
    """The summary a scope with these agents must show, from the table above; `late` is how long
    after the events' `now` the api read its document (its `as_of`)."""
    counts: dict[str, Any] = {bucket: 0 for bucket in BUCKETS}
    reasons: dict[str, int] = {}
    ages: dict[str, list[float]] = {bucket: [] for bucket in BUCKETS}
    for name in members:
        _, bucket, reason, age, _ = AGENTS[name]
        counts[bucket] += 1
        if reason is not None:
            reasons[reason] = reasons.get(reason, 0) + 1
        ages[bucket].append(age + late)
    counts["not_ready_by_reason"] = reasons
    counts["longest_available_seconds"] = max(ages["available"], default=None)
    counts["current_state_seconds"] = {
        bucket: {"longest_seconds": max(found, default=None), "total_seconds": sum(found)}
        for bucket, found in ages.items()
    }
    return counts


def assert_summary(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Counts exactly; times in state to the millisecond the events carry (per agent summed)."""
    longest = got.pop("longest_available_seconds")
    want_longest = want.pop("longest_available_seconds")
    timing = got.pop("current_state_seconds")
    want_timing = want.pop("current_state_seconds")
    assert got == want
    assert (longest is None) == (want_longest is None)
    if want_longest is not None:
        assert longest == pytest.approx(want_longest, abs=0.01)
        assert longest == timing["available"]["longest_seconds"]
    assert set(timing) == set(want_timing)
    for bucket, figures in want_timing.items():
        found = timing[bucket]
        assert (found["longest_seconds"] is None) == (figures["longest_seconds"] is None), bucket
        if figures["longest_seconds"] is not None:
            assert found["longest_seconds"] == pytest.approx(figures["longest_seconds"], abs=0.01)
        assert found["total_seconds"] == pytest.approx(figures["total_seconds"], abs=0.03)


async def test_agents_per_channel_and_queue_equal_a_recount(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    now = clock.now()
    await apply_events(clean_redis.url, events(now), -1, now)
    settings = api_settings(clean_redis.url, tmp_path)
    async with asgi_client(settings, clock) as api:
        live = await api.get("/api/v1/live?window=15m", headers=bearer(VIEWER))
    assert live.status_code == 200, live.text
    LiveDocument.model_validate(live.json())
    raw = live.json()
    late = datetime.fromisoformat(raw["as_of"].replace("Z", "+00:00")).timestamp() - now
    assert 0 <= late < 30
    assert set(raw["queues"]) == set(QUEUES)
    for queue in QUEUES:
        members = [name for name, spec in AGENTS.items() if queue in spec[4]]
        assert_summary(raw["queues"][queue]["agents"], recount(members, late))
    for channel in set(QUEUES.values()):
        members = [
            name for name, spec in AGENTS.items() if any(QUEUES[q] == channel for q in spec[4])
        ]
        assert_summary(raw["channels"][channel]["agents"], recount(members, late))
    # Every agent with a queue is in exactly one bucket of each scope it belongs to: over the
    # channels, the buckets add up to the agents seen on each (dov twice: voice and chat).
    per_channel = sum(
        sum(raw["channels"][c]["agents"][b] for b in BUCKETS) for c in set(QUEUES.values())
    )
    assert per_channel == sum(len({QUEUES[q] for q in spec[4]}) for spec in AGENTS.values())
