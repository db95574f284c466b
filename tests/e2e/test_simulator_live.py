"""`ccpulse simulate` (the traffic of `ccpulse up --simulate`) against the real pipeline: every
event it posts is accepted, and the wallboard's figures agree with each other as the aggregator
counts them (issue 16: all agents "on contact" while 68 contacts waited at an ASA of 10 s)."""

from __future__ import annotations

import re
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from simulator import center
from tests.clock import clock
from tests.harness import Pipeline

pytestmark = pytest.mark.e2e
NOW_RATE = 0.4  # contacts a second at the test's instant, whatever the hour of the day


def test_the_simulated_floor_gives_a_consistent_wallboard(pipeline: Pipeline) -> None:
    peak = NOW_RATE / center.curve_share(clock.now(), ZoneInfo("UTC"))  # the stack runs in UTC
    argv = [sys.executable, "-m", "ccpulse", "simulate", "--rate", f"{peak:.4f}"]
    argv += ["--duration", "45", "--seed", "5", "--url", pipeline.ingest_url]
    done = subprocess.run(argv, env=pipeline.env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "refused" not in done.stderr and "dropped" not in done.stderr, done.stderr
    found = re.search(r"accepted (\d+) events", done.stdout)
    assert found, done.stdout
    accepted = int(found[1])
    assert accepted > 100
    pipeline.wait_applied(accepted)

    live = pipeline.live()
    agents = live["agents"]
    assert len(agents) >= 5
    for name, agent in agents.items():
        holds = agent["answered"] - agent["handled"]
        assert (agent["state"] == "on_contact") == (holds > 0), (name, agent)
        assert agent["occupancy"] is None or agent["occupancy"] < 1.0, (name, agent)
        if agent["state"] == "not_ready":
            assert agent["state_reason"], (name, agent)
    channels = live["channels"]
    offered = sum(c["offered"] for c in channels.values())
    answered = sum(c["answered"] for c in channels.values())
    assert offered > 10 and answered > 0.7 * offered
    held = sum(a["answered"] - a["handled"] for a in agents.values())
    assert held == sum(c["answered"] - c["handled"] for c in channels.values())
    voice = channels.get("voice")
    if voice and voice["answered"]:
        assert voice["asa_seconds"] < 30  # staffed for its traffic: waits are short
        assert voice["abandoned_queue"] <= 0.1 * voice["queued"]
    on_contact = live["agent_states"].get("on_contact", 0)
    assert on_contact < len(agents)  # a team sized for its traffic has agents available
