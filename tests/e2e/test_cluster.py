"""The exactness e2e on a local Redis Cluster (three primaries) with three aggregators sharing the
consumer group: reordered and duplicated deliveries, an aggregator killed mid-stream, and the
live figures, gauges and agents' states must equal the recount, measured FCR included (its
customer x issue groups live in their shards' slots, docs/aggregation.md).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ccpulse.stack import EmbeddedBroker
from services.settings import DEFAULT_SL_THRESHOLDS_SECONDS
from simulator.scenario import Day, generate, iso, shuffle_within_contacts
from tests import oracle
from tests.clock import clock
from tests.e2e.test_alerts import alert_env, contacts, receiver, spread
from tests.harness import Pipeline, epoch_of, same, wait_until
from tests.stackfixtures import LocalCluster
from tests.tools.chaos_tools import last_states

pytestmark = [pytest.mark.e2e]
__all__ = ["receiver"]  # a fixture of test_alerts.py, used here

CLUSTER_ENV = {"CCPULSE_REDIS_CLUSTER": "true"}
FIGURES = (
    "offered",
    "answered",
    "abandoned",
    "handled",
    "asa_seconds",
    "aht_seconds",
    "service_level",
    "abandon_rate",
    "resolved",
    "fcr_rate",
)


@pytest.fixture
def cluster_pipeline(broker: EmbeddedBroker, clean_cluster: LocalCluster, tmp_path: Path) -> Any:
    pipeline = Pipeline(broker.bootstrap, clean_cluster.url, tmp_path, CLUSTER_ENV, aggregators=3)
    pipeline.start()
    try:
        yield pipeline
    finally:
        pipeline.stop()
        for child in pipeline.children.values():
            if child.process is not None and child.process.returncode not in (0, -15, None):
                print(f"--- {child.name} log ---\n{child.log_tail()}")


def test_three_aggregators_on_a_cluster_are_exact(cluster_pipeline: Pipeline) -> None:
    now = clock.now()
    events = generate(
        Day(seed=21, agents=30, busy_factor=1.5, prefix="cl"), now - 3 * 3600, 900, 900 / (3 * 3600)
    )
    events = [e for e in events if e["time"] <= iso(now - 1)]
    delivered = shuffle_within_contacts(events, seed=5, dup_rate=0.05)
    chunks = [delivered[i : i + 1000] for i in range(0, len(delivered), 1000)]
    for number, chunk in enumerate(chunks):
        assert cluster_pipeline.post(chunk) == len(chunk)
        if number == 3:
            cluster_pipeline.children["aggregator2"].kill()  # its partitions move to the others
        if number == 6:
            cluster_pipeline.children["aggregator2"].start()
    cluster_pipeline.wait_applied(len(delivered), timeout=240)
    doc = cluster_pipeline.live(**{"from": clock.now() - 4 * 3600, "to": clock.now()})
    start, end = int(epoch_of(doc["from"])), int(epoch_of(doc["to"]))
    expected = oracle.recount(events, start, end, DEFAULT_SL_THRESHOLDS_SECONDS)
    for kind in ("channels", "queues"):
        for name, want in expected[kind].items():
            for figure in FIGURES:
                same(doc[kind][name][figure], want[figure], f"{kind}/{name}/{figure}")
    measured = oracle.fcr_measured(events, start, end)
    assert sum(eligible for eligible, _ in measured.values()) > 0
    for channel, (eligible, met) in measured.items():
        got = doc["channels"][channel]
        assert got["fcr_measured_resolved"] == eligible, channel
        same(got["fcr_measured_rate"], met / eligible if eligible else None, f"fcr/{channel}")
    for channel, figures in doc["channels"].items():
        assert figures["in_queue"] == oracle.waiting_now(events).get(channel, 0), channel
    for agent, (state, since) in last_states(events).items():
        got = doc["agents"][agent]
        assert (got["state"], got["state_since"]) == (state, since), agent


def test_the_alerter_pages_once_on_a_cluster(
    broker: EmbeddedBroker, clean_cluster: LocalCluster, tmp_path: Path, receiver: Any
) -> None:
    """The alerter's state, outbox and history share one slot (`{alerts}`): an abandonment
    spike pages the webhook once on a cluster too, after a failed delivery is retried."""
    record, url = receiver
    record.fail_first = 1
    env = {
        "CCPULSE_REDIS_CLUSTER": "true",
        **alert_env(url, {"for_seconds": 1, "resolve_for_seconds": 1}, interval=0.5),
    }
    pipeline = Pipeline(broker.bootstrap, clean_cluster.url, tmp_path, env)
    pipeline.start()
    try:
        now = clock.now()
        pipeline.post(contacts("k", "voice", spread(25, now - 60, now - 21), abandoned=10))
        wait_until(lambda: record.got("/webhook"), 60, "a page from the cluster's alerter")
        time.sleep(3)  # several evaluations and delivery rounds later: still one page
        assert record.attempts["/webhook"] == 2 and len(record.got("/webhook")) == 1
        firing = httpx.get(f"{pipeline.api_url}/api/v1/alerts", timeout=10).json()["firing"]
        assert [a["channel"] for a in firing] == ["voice"]
    finally:
        pipeline.stop()
