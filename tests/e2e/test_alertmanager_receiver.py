"""The built-in alerter through a real Alertmanager (Debian's prometheus-alertmanager 0.25).

A spike posted to ingest goes ingest -> Kafka -> aggregator -> Redis -> the api's alerter ->
`POST /api/v2/alerts` -> the shipped deploy/alertmanager/alertmanager.yml -> its webhook
notification to a receiver in this test: one notification group per alert, channel and queue;
a silence created through Alertmanager's API keeps the silenced queue quiet; the alerter keeps
re-sending a firing alert (Alertmanager would end it otherwise) and ends it on resolve.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.scenario import iso
from tests.alertmanager import (
    BINARY,
    MISSING,
    Webhook,
    alerts,
    running_alertmanager,
    running_webhook,
    silence,
)
from tests.clock import OFFSET_S, clock
from tests.conftest import PipelineFactory
from tests.harness import Pipeline, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(BINARY is None, reason=MISSING)]

PUBLIC = "https://wallboard.example.com"
RULE = "abandon_spike_queue"
RESEND_S = 3.0  # Alertmanager ends a firing alert 3 x this after it was last sent


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with running_webhook() as hook:
        yield hook


@pytest.fixture
def alertmanager(tmp_path: Path, webhook: Webhook) -> Iterator[str]:
    workdir = tmp_path / "alertmanager"
    workdir.mkdir()
    with running_alertmanager(workdir, webhook) as base:
        yield base


def contacts(
    prefix: str, channel: str, queue: str, count: int, abandoned: int
) -> list[dict[str, Any]]:
    """`count` contacts queued over the last 40 s; the first `abandoned` hang up after 20 s
    (not short abandons), the others are answered after 8 s."""
    now = clock.now()
    events: list[dict[str, Any]] = []
    for i in range(count):
        c, at = f"{prefix}{i}", now - 40 + 19 * i / max(1, count - 1)
        base = {"contact": c, "channel": channel, "queue": queue}
        gone = i < abandoned
        events += [
            {"id": f"{c}o", "type": "contact.offered", "time": iso(at), **base},
            {"id": f"{c}q", "type": "contact.queued", "time": iso(at), "contact": c},
            {
                "id": f"{c}e",
                "type": "contact.abandoned" if gone else "contact.answered",
                "time": iso(at + (20 if gone else 8)),
                "contact": c,
                **({} if gone else {"agent": "alice"}),
            },
        ]
    return events


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def firing(pipeline: Pipeline) -> dict[tuple[str, str | None], dict[str, Any]]:
    doc = httpx.get(f"{pipeline.api_url}/api/v1/alerts", timeout=10).json()
    return {(a["channel"], a["queue"]): a for a in doc["firing"]}


def test_a_spike_reaches_alertmanager_grouped_per_queue_and_a_silence_holds(
    pipeline_factory: PipelineFactory, alertmanager: str, webhook: Webhook
) -> None:
    silenced = silence(
        alertmanager, {"alertname": RULE, "channel": "voice", "queue": "billing"}, "billing works"
    )
    rule = {"name": RULE, "queue": "*", "for_seconds": 2, "resolve_for_seconds": 1}
    rule["page_without_baseline"] = True  # no 4-week baseline here: a page only when asked
    pipeline = pipeline_factory(
        {
            "CCPULSE_ALERT_RULES": json.dumps([rule]),
            "CCPULSE_ALERT_EVAL_INTERVAL_SECONDS": "1",
            "CCPULSE_ALERTMANAGER_URLS": json.dumps([alertmanager]),
            "CCPULSE_ALERTMANAGER_RESEND_SECONDS": str(RESEND_S),
            "CCPULSE_PUBLIC_URL": PUBLIC,
        }
    )
    pipeline.post(
        contacts("s", "voice", "sales", 30, abandoned=18)
        + contacts("b", "voice", "billing", 30, abandoned=18)
        + contacts("c", "chat", "support", 30, abandoned=18)
        + contacts("n", "voice", "claims", 30, abandoned=0)  # normal traffic: no alert
    )

    # The page route's group_wait is 10 s; the alerter fires 2 s after it sees the breach.
    deadline = time.monotonic() + 60
    path, sales = webhook.find({"channel": "voice", "queue": "sales"}, deadline)
    assert path == "/oncall" and sales["status"] == "firing"
    assert sales["groupLabels"] == {"alertname": RULE, "channel": "voice", "queue": "sales"}
    [alert] = sales["alerts"]
    assert alert["labels"]["severity"] == "critical" and alert["labels"]["service"] == "ccpulse"
    assert alert["generatorURL"] == f"{PUBLIC}/?channel=voice&queue=sales"
    notes = alert["annotations"]
    assert notes["summary"].startswith(f"{RULE} on voice/sales: abandon rate 60.0% > 15.0%")
    assert notes["runbook_url"] == "docs/runbook.md#abandon-rate" and notes["description"]
    _, chat = webhook.find({"channel": "chat", "queue": "support"}, deadline)
    assert chat["groupKey"] != sales["groupKey"]

    # startsAt is when the alerter first saw the breach, as /api/v1/alerts says.
    now_firing = firing(pipeline)
    assert set(now_firing) == {("voice", "sales"), ("voice", "billing"), ("chat", "support")}
    seen = now_firing[("voice", "sales")]["breach_seen_at"]
    assert abs(when(alert["startsAt"]) - when(seen)) < timedelta(milliseconds=2)

    [held] = alerts(alertmanager, 'queue="sales"')
    # billing fired in the same evaluation: Alertmanager holds it, silenced, and sends nothing.
    billing = alerts(alertmanager, 'queue="billing"')
    assert [(a["status"]["state"], a["status"]["silencedBy"]) for a in billing] == [
        ("suppressed", [silenced])
    ]
    time.sleep(3 * RESEND_S + 2)  # past the hold of one send: only re-sending keeps it firing
    received = webhook.drain()
    assert [b for _, b in received if b["groupLabels"].get("queue") == "billing"] == []
    assert [b for _, b in received if b["groupLabels"].get("queue") == "claims"] == []
    [kept] = alerts(alertmanager, 'queue="sales"')
    assert kept["status"]["state"] == "active"
    assert when(kept["endsAt"]) > when(held["endsAt"])  # re-sent, so held longer

    # Recovery on sales: the alerter resolves it and ends it in Alertmanager.
    pipeline.post(contacts("r", "voice", "sales", 150, abandoned=0))
    wait_until(lambda: ("voice", "sales") not in firing(pipeline), 30, "sales resolved")
    if OFFSET_S == 0:  # a shifted suite ends it in Alertmanager's future: still active there
        # Well before the 9 s hold of the last re-send: the resolve itself ended it.
        wait_until(lambda: alerts(alertmanager, 'queue="sales"') == [], 4, "ended in AM")
    assert [a["status"]["state"] for a in alerts(alertmanager, 'queue="support"')] == ["active"]
