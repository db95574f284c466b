"""Outages: broker or Redis stops answering; nothing acknowledged is lost, figures stay exact."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from redis import Redis

from ccpulse.stack import EmbeddedBroker, EmbeddedRedis
from services import keys
from simulator.scenario import iso
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.harness import Child, Pipeline, wait_until
from tests.tools.chaos_tools import ws_connect

pytestmark = pytest.mark.e2e


def offered(n: int, prefix: str) -> list[dict[str, object]]:
    now = clock.now()
    return [
        {
            "id": f"{prefix}{i}",
            "type": "contact.offered",
            "time": iso(now - 30 + i / 100),
            "contact": f"{prefix}{i}",
            "channel": "chat",
        }
        for i in range(n)
    ]


def test_broker_down_gives_503_then_recovers_without_loss(
    pipeline: Pipeline, broker: EmbeddedBroker
) -> None:
    assert pipeline.post(offered(50, "before")) == 50
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = httpx.post(
            f"{pipeline.ingest_url}/v1/events", json=offered(5, "down"), timeout=30
        )
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) >= 1
        assert time.monotonic() - started < 15, "answers within its own timeout"
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    accepted = wait_until(
        lambda: (
            httpx.post(
                f"{pipeline.ingest_url}/v1/events", json=offered(20, "after"), timeout=30
            ).status_code
            == 202
        ),
        60,
        "ingest to recover by itself",
    )
    assert accepted
    # 50 before + 20 after were acknowledged; the 5 refused may or may not have reached Kafka.
    wait_until(lambda: pipeline.live()["channels"]["chat"]["offered"] >= 70, 60, "all counted")
    assert pipeline.live()["channels"]["chat"]["offered"] in (70, 75)


def test_redis_pause_makes_live_503_and_the_aggregator_resumes_exactly(
    pipeline: Pipeline, redis_server: EmbeddedRedis
) -> None:
    assert pipeline.post(offered(40, "r1")) == 40
    wait_until(lambda: pipeline.live()["channels"]["chat"]["offered"] == 40, 60, "first batch")
    redis_server.pause()
    try:
        assert pipeline.post(offered(60, "r2")) == 60  # Kafka still takes them
        response = httpx.get(f"{pipeline.api_url}/api/v1/live", timeout=30)
        assert response.status_code == 503 and "Redis" in response.text
        time.sleep(7)  # past the clients' 5 s socket timeout: the aggregator must back off
    finally:
        redis_server.resume()
    wait_until(lambda: pipeline.live()["channels"]["chat"]["offered"] == 100, 90, "resumed")
    time.sleep(2)
    assert pipeline.live()["channels"]["chat"]["offered"] == 100, "nothing counted twice"


def test_redis_down_during_a_rebalance_leaves_no_partition_unread(
    pipeline_factory: PipelineFactory, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    """A second aggregator joins while Redis is paused: every assignment fails to read the
    stored offsets. The partitions must still be positioned and read once Redis is back."""
    pipeline = pipeline_factory()
    assert pipeline.post(offered(30, "b1")) == 30
    wait_until(lambda: pipeline.live()["channels"]["chat"]["offered"] == 30, 60, "first batch")
    second = Child("aggregator2", "aggregator", pipeline.env, tmp_path / "aggregator2.log")
    redis_server.pause()
    try:
        second.start()  # the group rebalances while Redis cannot answer
        time.sleep(12)  # past the 5 s socket timeout and the embedded broker's join delay
    finally:
        redis_server.resume()
    try:
        assert pipeline.post(offered(90, "b2")) == 90  # spread over every partition
        wait_until(lambda: pipeline.live()["channels"]["chat"]["offered"] == 120, 90, "all read")
        time.sleep(2)
        assert pipeline.live()["channels"]["chat"]["offered"] == 120, "nothing counted twice"
    finally:
        second.stop()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_stalled_websocket_clients_are_shed_counted_and_memory_stays_flat(
    pipeline: Pipeline, redis_server: EmbeddedRedis
) -> None:
    """Clients that never read: each keeps one pending update per kind, what is replaced is
    counted on /metrics, and the api's memory does not grow with what they failed to take."""
    now = clock.now()
    agents = [
        {
            "id": f"st{i}",
            "type": "agent.state",
            "time": iso(now - 60 + i / 100),
            "agent": f"agent-{i:04d}",
            "state": "available",
        }
        for i in range(1500)
    ]
    assert pipeline.post(agents) == len(agents)
    wait_until(lambda: len(pipeline.live()["agents"]) == len(agents), 60, "agents on the floor")
    update_bytes = len(httpx.get(f"{pipeline.api_url}/api/v1/live", timeout=30).content)
    api = pipeline.children["api"].process
    assert api is not None
    stalled = [ws_connect(pipeline.api_port, 4096) for _ in range(4)]
    redis = Redis.from_url(redis_server.url)
    shed_total = "ccpulse_websocket_updates_shed_total"
    try:
        # Bounded: change notices 0.1 s apart (the api sends at most one update per 0.2 s);
        # the first 30 fill the kernel's socket buffers and warm the api up.
        for _ in range(30):
            redis.publish(keys.CHANGES_CHANNEL, "1")
            time.sleep(0.1)
        before, shed_before = _rss_mb(api.pid), pipeline.metric(shed_total)
        for _ in range(150):
            redis.publish(keys.CHANGES_CHANNEL, "1")
            time.sleep(0.1)
        time.sleep(1)
        after, shed = _rss_mb(api.pid), pipeline.metric(shed_total)
    finally:
        for sock in stalled:
            sock.close()
        redis.close()
    held_back = (shed - shed_before) * update_bytes / 2**20
    print(
        f"update {update_bytes / 1024:.0f} KiB; shed {shed_before} then {shed} updates "
        f"(~{held_back:.0f} MiB not held); api RSS {before:.0f} -> {after:.0f} MiB"
    )
    assert shed - shed_before >= 4 * 10, "each stalled client had updates replaced"
    # Had the api queued what it shed, it would have grown by held_back MiB.
    assert after - before < held_back / 4, (before, after, held_back)
