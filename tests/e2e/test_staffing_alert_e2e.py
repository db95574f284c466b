"""The staffing-shortfall alert end to end: contacts and agent states posted to the real ingest,
the real aggregator and api, pages caught by a receiver on loopback.

32 agents have served the sales queue; 30 of them go on a break while the last minutes' calls
need about 22: one page names the queue, and when the 30 are back it resolves once.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from simulator.scenario import iso
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.e2e.test_alerts import Receiver, alert_env, receiver, spread
from tests.harness import wait_until

pytestmark = pytest.mark.e2e
__all__ = ["receiver"]  # the fixture, used by name

AGENTS = [f"agent{i:02d}" for i in range(32)]
RULE = {
    "name": "sales_short",
    "metric": "staffing_shortfall",
    "channel": "voice",
    "queue": "sales",
    "window_seconds": 300,
    "for_seconds": 10,
    "resolve_for_seconds": 5,
}


def calls(offered_at: list[float]) -> list[dict[str, Any]]:
    """Sales calls answered after 5 s by the agents in turn, completed 2 minutes later."""
    events: list[dict[str, Any]] = []
    for i, at in enumerate(offered_at):
        c, agent = f"call{i}", AGENTS[i % len(AGENTS)]
        base = {"contact": c, "channel": "voice", "queue": "sales"}
        events += [
            {"id": f"{c}o", "type": "contact.offered", "time": iso(at), **base},
            {
                "id": f"{c}a",
                "type": "contact.answered",
                "time": iso(at + 5),
                **base,
                "agent": agent,
            },
            {"id": f"{c}c", "type": "contact.completed", "time": iso(at + 125), "contact": c},
        ]
    return events


def states(agents: list[str], state: str, at: float) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{a}-{state}-{at:.0f}",
            "type": "agent.state",
            "time": iso(at),
            "agent": a,
            "state": state,
        }
        for a in agents
    ]


def test_a_break_taken_by_most_agents_pages_once_and_resolves_once(
    pipeline_factory: PipelineFactory, receiver: tuple[Receiver, str]
) -> None:
    record, url = receiver
    pipeline = pipeline_factory(alert_env(url, RULE, interval=2.0))
    now = clock.now()
    # 40 calls over the last 4 minutes, all completed: about 22 agents needed at 80/20.
    events = calls(spread(40, now - 230, now - 140))
    events += states(AGENTS[:2], "available", now - 100)
    events += states(AGENTS[2:], "break", now - 100)
    pipeline.post(events)
    pages = wait_until(lambda: record.got("/webhook"), 90, "the shortfall page")
    firing = pages[0][1]
    assert firing["status"] == "firing"
    labels = firing["alerts"][0]["labels"]
    assert (labels["alertname"], labels["channel"], labels["queue"]) == (
        "sales_short",
        "voice",
        "sales",
    )
    assert "short of those needed" in firing["alerts"][0]["annotations"]["summary"]
    value = firing["alerts"][0]["annotations"]["value"]
    assert value.endswith("% short") and int(value.split("%")[0]) > 80  # 2 of ~22 staffed

    back = clock.now()
    pipeline.post(states(AGENTS[2:], "available", back))
    resolved = wait_until(
        lambda: [b for _, b in record.got("/webhook") if b["status"] == "resolved"],
        90,
        "the resolve",
    )
    time.sleep(5)  # nothing more follows
    statuses = [b["status"] for _, b in record.got("/webhook")]
    assert statuses == ["firing", "resolved"], json.dumps(statuses)
    assert resolved[0]["alerts"][0]["labels"]["queue"] == "sales"
