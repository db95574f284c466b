"""The service observes itself, over the real pipeline: JSON access logs with request ids and no
personal data, process_* figures on the ingest's and api's /metrics, and the aggregator's own
/metrics (lag, batches, apply time, rebalances, partitions, RSS) after events flowed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from simulator.scenario import iso
from tests.clock import clock
from tests.conftest import PARTITIONS, PipelineFactory
from tests.harness import free_port, wait_until

pytestmark = pytest.mark.e2e

PHONE = "+44 20 7946 0717"
PHONE_DIGITS = "2079460717"
EMAIL = "rosalind.vance@example.org"
CLIENT_ID = "0b7c9e4a-ccpulse-test-id"


def events(count: int, now: float) -> list[dict[str, Any]]:
    return [
        {
            "id": f"so{i}",
            "type": "contact.offered",
            "time": iso(now - 60 + i / 100),
            "contact": f"so{i}",
            "channel": "voice",
            "queue": "sales",
            "customer": PHONE,
            "attributes": {"email": EMAIL},
        }
        for i in range(count)
    ]


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's log as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def access_lines(path: Path) -> list[dict[str, Any]]:
    return [line for line in json_lines(path) if line["logger"] == "ccpulse.access"]


def live_logged(path: Path) -> bool:
    return any(line["path"] == "/api/v1/live?window" for line in access_lines(path))


def samples(text: str) -> dict[str, float]:
    """Unlabelled samples (and `_bucket` at +Inf) of an exposition, by sample name."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if not s.labels or s.labels == {"le": "+Inf"}:
                out[s.name] = s.value
    return out


def test_json_access_logs_carry_request_ids_and_no_personal_data(
    pipeline_factory: PipelineFactory,
) -> None:
    pipeline = pipeline_factory({"CCPULSE_LOG_FORMAT": "json"})
    now = clock.now()
    with httpx.Client(base_url=pipeline.ingest_url, timeout=30) as client:
        # a phone number and an e-mail address in the body and in the query's values
        sent = client.post(
            "/v1/events",
            params={"caller": PHONE, "reply_to": EMAIL},
            json=events(3, now),
            headers={"X-Request-ID": CLIENT_ID},
        )
        assert sent.status_code == 202, sent.text
        assert sent.headers["x-request-id"] == CLIENT_ID
        made = client.post("/v1/events", json=events(1, now), headers={"X-Request-ID": PHONE})
        assert made.status_code == 202
        generated = made.headers["x-request-id"]
        assert generated != PHONE and len(generated) == 32  # not well formed: replaced
    pipeline.wait_applied(3)
    key = "k" * 40  # a secret in a query value: never logged
    assert httpx.get(f"{pipeline.api_url}/login", params={"key": key}, timeout=10).status_code
    live = httpx.get(f"{pipeline.api_url}/api/v1/live", params={"window": "1h"}, timeout=10)
    assert live.status_code == 200 and live.headers["x-request-id"]
    for name in ("ingest", "api"):
        process = httpx.get(f"{getattr(pipeline, f'{name}_url')}/metrics", timeout=10).text
        assert samples(process)["process_resident_memory_bytes"] > 0, name

    # a line is written within 0.1 s of its request (services/logs.py): wait for the last ones
    api_log, ingest_log = pipeline.children["api"].log_path, pipeline.children["ingest"].log_path
    wait_until(lambda: live_logged(api_log), 10, "the api's access line of /api/v1/live")
    wait_until(
        lambda: any(line["request_id"] == generated for line in access_lines(ingest_log)),
        10,
        "the ingest's access line of the second post",
    )
    access = access_lines(ingest_log)
    ours = [line for line in access if line["request_id"] == CLIENT_ID]
    assert len(ours) == 1, access
    assert ours[0]["method"] == "POST" and ours[0]["status"] == 202
    assert ours[0]["path"] == "/v1/events?caller&reply_to"
    assert ours[0]["duration_ms"] >= 0
    assert any(line["request_id"] == generated for line in access)
    assert live_logged(api_log)
    json_lines(pipeline.children["aggregator"].log_path)  # every process: JSON lines only

    for child in pipeline.children.values():
        text = child.log_path.read_text()
        for value in (PHONE, PHONE_DIGITS, "7946 0717", EMAIL, "rosalind", key):
            assert value not in text, (child.name, value)


def test_aggregator_serves_its_own_metrics(pipeline_factory: PipelineFactory) -> None:
    port = free_port()
    pipeline = pipeline_factory({"CCPULSE_AGGREGATOR_METRICS_PORT": str(port)})
    url = f"http://127.0.0.1:{port}/metrics"
    count = 500
    assert pipeline.post(events(count, clock.now())) == count
    pipeline.wait_applied(count)

    def caught_up() -> dict[str, float] | None:
        got = samples(httpx.get(url, timeout=5).text)
        done = got["ccpulse_aggregator_instance_batch_records_sum"] >= count
        return got if done and got["ccpulse_aggregator_instance_lag_records"] == 0 else None

    got = wait_until(caught_up, 30, "the aggregator's own figures")
    assert got["ccpulse_aggregator_instance_assigned_partitions"] == PARTITIONS
    assert got["ccpulse_aggregator_instance_rebalances_total"] >= 1
    assert got["ccpulse_aggregator_instance_group_conflicts_total"] == 0  # the only aggregator
    assert got["ccpulse_aggregator_instance_batch_records_count"] >= 1
    assert got["ccpulse_aggregator_instance_apply_seconds_count"] >= 1
    assert got["ccpulse_aggregator_instance_apply_seconds_sum"] > 0
    assert got["process_resident_memory_bytes"] > 0
    promtool = shutil.which("promtool")
    if promtool is not None:
        exposition = httpx.get(url, timeout=5).content
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=30
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
