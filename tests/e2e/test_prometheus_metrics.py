"""`/metrics` over the real pipeline equals the reference recount of the same events.

The families are "today" gauges and histograms, so the test runs the api in a time zone where
local midnight is hours behind: every generated event falls in today's window whatever the hour.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.settings import DEFAULT_SL_THRESHOLDS_SECONDS
from simulator.scenario import Day, generate, iso, shuffle_within_contacts
from tests import oracle
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.harness import wait_until

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
AGENT_CAP = 3


def midday_zone(now_s: float) -> str:
    """A fixed-offset zone whose local time is nearest noon: today began hours ago there."""
    zones = ["Etc/GMT"] + [f"Etc/GMT{sign}{n}" for n in range(1, 13) for sign in "+-"]
    zones += ["Etc/GMT-13", "Etc/GMT-14"]

    def distance(zone: str) -> float:
        local = datetime.fromtimestamp(now_s, ZoneInfo(zone))
        return abs(local.hour + local.minute / 60 - 12)

    return min(zones, key=distance)


def local_midnight_s(now_s: float, zone: str) -> int:
    local = datetime.fromtimestamp(now_s, ZoneInfo(zone))
    return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())


def recent_day(contacts: int, seed: int, hours: float) -> list[dict[str, Any]]:
    """Contacts of the last hours, only what has already happened."""
    now = clock.now()
    day = Day(seed=seed, busy_factor=1.5, prefix=f"prom{seed}")
    events = generate(day, now - hours * 3600, contacts, contacts / (hours * 3600))
    return [e for e in events if e["time"] <= iso(now - 1)]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page keyed by (sample name, labels)."""
    response = httpx.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def series(samples: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """Samples of one name whose labels include `labels`."""
    want = set(labels.items())
    return {lab: v for (n, lab), v in samples.items() if n == name and want <= set(lab)}


def waits_by_scope(events: list[dict[str, Any]], start_s: int, end_s: int) -> dict[str, list[int]]:
    """Answer waits (ms) of contacts answered in the window, per channel and per queue."""
    out: dict[str, list[int]] = defaultdict(list)
    for contact in oracle.contacts(events).values():
        o = oracle.outcome(contact)
        if o.channel is None or not oracle.within(o.answered, start_s, end_s):
            continue
        out[o.channel].append(o.wait_ms or 0)
        if o.queue is not None:
            out[o.queue].append(o.wait_ms or 0)
    return out


@pytest.fixture(scope="module")
def zone() -> str:
    return midday_zone(clock.now())


def test_metrics_equal_the_recount(pipeline_factory: PipelineFactory, zone: str) -> None:
    events = recent_day(contacts=400, seed=31, hours=2)
    delivered = shuffle_within_contacts(events, seed=5, dup_rate=0.05)
    pipeline = pipeline_factory(
        {
            "CCPULSE_TIMEZONE": zone,
            "CCPULSE_METRICS_PER_AGENT": "true",
            "CCPULSE_METRICS_AGENT_CAP": str(AGENT_CAP),
        }
    )
    pipeline.post(delivered)
    pipeline.wait_applied(len(delivered))
    now = clock.now()
    samples = scrape(pipeline.api_url)
    start, end = local_midnight_s(now, zone), (int(now) // 60 + 1) * 60
    expected = oracle.recount(events, start, end, DEFAULT_SL_THRESHOLDS_SECONDS)
    queue_channel = {e["queue"]: e["channel"] for e in events if e.get("queue") and "channel" in e}
    assert expected["channels"] and expected["queues"]
    for channel, want in expected["channels"].items():
        check_scope(samples, want, level="channel", channel=channel, queue="")
    for queue, want in expected["queues"].items():
        check_scope(samples, want, level="queue", channel=queue_channel[queue], queue=queue)
    waits = waits_by_scope(events, start, end)
    for channel in expected["channels"]:
        check_histogram(samples, waits[channel], level="channel", channel=channel, queue="")
    for queue in expected["queues"]:
        check_histogram(
            samples, waits[queue], level="queue", channel=queue_channel[queue], queue=queue
        )
    check_levels(samples, expected)
    check_waiting_now(samples, events)
    check_agents(samples, events, start, end)
    consumed = value(samples, "ccpulse_aggregator_events_applied_total") + value(
        samples, "ccpulse_aggregator_dead_letters_total"
    )
    assert consumed == len(delivered)
    assert value(samples, "ccpulse_aggregator_consumer_lag") >= 0
    assert value(samples, "ccpulse_websocket_updates_shed_total") == 0


def check_scope(samples: Samples, want: dict[str, Any], **scope: str) -> None:
    where = f"{scope}"
    for figure in ("offered", "queued", "answered", "timed_out"):
        got = value(samples, f"ccpulse_contacts_{figure}_today", **scope)
        assert got == want[figure], (where, figure, got, want[figure])
    stages = series(samples, "ccpulse_contacts_abandoned_today", **scope)
    by_stage = {dict(labels)["stage"]: v for labels, v in stages.items()}
    assert {s: v for s, v in by_stage.items() if v} == want["abandoned_by_stage"], where
    assert sum(by_stage.values()) == want["abandoned"], where
    for figure in ("service_level", "abandon_rate"):
        name = f"ccpulse_{figure}_today_ratio"
        if want[figure] is None:
            assert not series(samples, name, **scope), (where, figure)
        else:
            assert abs(value(samples, name, **scope) - want[figure]) < 1e-9, (where, figure)
    handled = value(samples, "ccpulse_handle_time_today_seconds_count", **scope)
    assert handled == want["handled"], where
    abandons = value(samples, "ccpulse_abandon_wait_today_seconds_count", **scope)
    assert abandons == want["abandoned"], where
    short = value(samples, "ccpulse_abandon_wait_today_seconds_bucket", le="5.0", **scope)
    assert short == want["short_abandoned"], where
    # The monotonic counters (every event today here, delivered shuffled with duplicates):
    # increases less corrections are the recount's figures.
    for figure in ("offered", "answered", "abandoned"):
        up = value(samples, f"ccpulse_contacts_{figure}_total", **scope)
        down = value(samples, f"ccpulse_contacts_{figure}_corrected_total", **scope)
        assert up - down == want[figure] and down >= 0, (where, figure, up, down)


def check_levels(samples: Samples, expected: dict[str, Any]) -> None:
    """Each level alone sums to the truth: level="channel" to every contact offered, and no
    sum() counts a contact twice (queue series never carry level="channel")."""
    offered = "ccpulse_contacts_offered_today"
    channels = series(samples, offered, level="channel")
    assert sum(channels.values()) == sum(w["offered"] for w in expected["channels"].values())
    assert all(dict(labels).get("queue", "") == "" for labels in channels)
    queues = series(samples, offered, level="queue")
    assert sum(queues.values()) == sum(w["offered"] for w in expected["queues"].values())
    assert len(channels) + len(queues) == len(series(samples, offered))


def check_histogram(samples: Samples, waits_ms: list[int], **scope: str) -> None:
    """Cumulative buckets on the catalogue's edges; each one equals the recounted waits."""
    name = "ccpulse_answer_wait_today_seconds"
    buckets = series(samples, f"{name}_bucket", **scope)
    les = sorted((float(dict(labels)["le"]), v) for labels, v in buckets.items())
    assert [le for le, _ in les] == [*map(float, oracle.EDGES), float("inf")]
    assert set(DEFAULT_SL_THRESHOLDS_SECONDS.values()) <= {le for le, _ in les}
    counts = [v for _, v in les]
    assert counts == sorted(counts), f"{scope}: buckets must be cumulative"
    for le, got in les:
        assert got == sum(1 for w in waits_ms if w <= le * 1000), (scope, le)
    assert value(samples, f"{name}_count", **scope) == len(waits_ms) == counts[-1]
    total = value(samples, f"{name}_sum", **scope)
    assert abs(total - sum(waits_ms) / 1000) < 1e-6, scope
    answered = value(samples, "ccpulse_contacts_answered_today", **scope)
    assert answered == counts[-1], scope


def check_waiting_now(samples: Samples, events: list[dict[str, Any]]) -> None:
    waiting = oracle.waiting_now(events)
    for labels, got in series(samples, "ccpulse_contacts_waiting", level="channel").items():
        assert got == waiting.get(dict(labels)["channel"], 0), labels
    for labels, got in series(samples, "ccpulse_longest_wait_seconds").items():
        assert got >= 0, labels


def check_agents(samples: Samples, events: list[dict[str, Any]], start: int, end: int) -> None:
    """Per-agent series are capped; the cap keeps the busiest agents and counts the rest."""
    want = oracle.agents(events, start, end, int(clock.now() * 1000))
    answered = {
        dict(labels)["agent"]: v
        for labels, v in series(samples, "ccpulse_agent_contacts_answered_today").items()
    }
    assert len(answered) == min(AGENT_CAP, len(want))
    ranked = sorted(want.items(), key=lambda item: (-item[1]["answered"], item[0]))
    assert answered == {name: row["answered"] for name, row in ranked[:AGENT_CAP]}
    omitted = value(samples, "ccpulse_metrics_agents_omitted")
    assert omitted == max(0, len(want) - AGENT_CAP)
    by_state = sum(v for _, v in series(samples, "ccpulse_agents").items())
    assert by_state == len({e["agent"] for e in events if e["type"] == "agent.state"})
    assert all(dict(labels).get("agent") is None for (n, labels) in samples if "_bucket" in n)


def test_consumer_lag_shows_a_backlog_then_falls_to_zero_when_idle(
    pipeline_factory: PipelineFactory,
) -> None:
    """Two consumers share the partitions: the gauge sums their reports, and an aggregator that
    has caught up reports 0 while idle (not the last figure it wrote mid-backlog)."""
    # reports every 0.5 s: a backlog the aggregator drains in a few seconds is always seen
    pipeline = pipeline_factory({"CCPULSE_LAG_REPORT_SECONDS": "0.5"})
    lag = "ccpulse_aggregator_consumer_lag"
    aggregator = pipeline.children["aggregator"]
    aggregator.stop()
    now = clock.now()
    backlog = [
        {
            "id": f"lag{i}",
            "type": "contact.offered",
            "time": iso(now - 120 + i / 1000),
            "contact": f"lag{i}",
            "channel": "chat",
        }
        for i in range(30_000)
    ]
    assert pipeline.post(backlog) == len(backlog)
    aggregator.start()
    seen = wait_until(lambda: scrape(pipeline.api_url).get((lag, frozenset())), 30, "a backlog")
    assert 0 < seen <= len(backlog)
    pipeline.wait_applied(len(backlog))
    wait_until(lambda: value(scrape(pipeline.api_url), lag) == 0, 20, "lag 0 once caught up")
