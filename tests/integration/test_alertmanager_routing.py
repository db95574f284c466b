"""deploy/alertmanager/alertmanager.yml in a real Alertmanager (Debian's prometheus-alertmanager,
`.ci/system-deps` installs it): an alert of deploy/prometheus's rules, posted as Prometheus posts
it, reaches the receiver its route names as one notification per alert, channel and queue; a
silence keeps a matching alert from being notified while others still are.

The shipped receivers' URLs are replaced by a webhook receiver in this test, on loopback; the
routes, grouping and timings are the shipped ones. Alertmanager runs with gossip off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.alertmanager import (
    BINARY,
    DEPLOY,
    MISSING,
    Webhook,
    alerts,
    running_alertmanager,
    running_webhook,
    silence,
)

SPIKE = "CcpulseAbandonRateSpike"
WAIT_S = 45.0  # the page route's group_wait is 10 s

pytestmark = pytest.mark.skipif(BINARY is None, reason=MISSING)


def spike_rule() -> dict[str, Any]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "ccpulse-alerts.yml").read_text())
    found = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == SPIKE]
    assert len(found) == 1
    rule: dict[str, Any] = found[0]
    return rule


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with running_webhook() as hook:
        yield hook


@pytest.fixture
def alertmanager(tmp_path: Path, webhook: Webhook) -> Iterator[str]:
    with running_alertmanager(tmp_path, webhook) as base:
        yield base


def post_alert(base: str, channel: str, queue_name: str) -> None:
    """As Prometheus posts a firing alert: the rule's labels over the series' labels, its
    annotations. startsAt/endsAt are left to Alertmanager's clock (the suite's may be shifted)."""
    rule = spike_rule()
    labels = {"alertname": SPIKE, "channel": channel, "queue": queue_name, **rule["labels"]}
    alert = {
        "labels": labels,
        "annotations": {"summary": f"Abandon rate 40% on {channel} {queue_name}"},
        "generatorURL": "http://prometheus:9090/graph?g0.expr=ccpulse",
    }
    response = httpx.post(f"{base}/api/v2/alerts", json=[alert], timeout=10)
    assert response.status_code == 200, response.text


def test_a_spike_is_routed_grouped_and_silenced(alertmanager: str, webhook: Webhook) -> None:
    assert spike_rule()["labels"]["severity"] == "page"
    post_alert(alertmanager, "voice", "sales")
    post_alert(alertmanager, "chat", "support")
    deadline = time.monotonic() + WAIT_S
    path, voice = webhook.next_for({"channel": "voice"}, deadline)
    assert path == "/oncall" and voice["receiver"] == "oncall"
    assert voice["status"] == "firing"
    assert voice["groupLabels"] == {"alertname": SPIKE, "channel": "voice", "queue": "sales"}
    assert [a["labels"]["queue"] for a in voice["alerts"]] == ["sales"]
    _, chat = webhook.next_for({"channel": "chat"}, deadline)
    assert chat["groupKey"] != voice["groupKey"]

    silence_id = silence(
        alertmanager,
        {"alertname": SPIKE, "channel": "voice"},
        "maintenance on the voice queues",
    )

    post_alert(alertmanager, "voice", "billing")  # silenced
    post_alert(alertmanager, "email", "backoffice")  # the control: same route, not silenced
    _, email = webhook.next_for({"channel": "email"}, time.monotonic() + WAIT_S)
    assert email["groupLabels"]["queue"] == "backoffice"
    billing = [b for _, b in webhook.drain() if b["groupLabels"].get("queue") == "billing"]
    assert billing == []
    state = alerts(alertmanager, 'queue="billing"')
    assert [a["status"]["state"] for a in state] == ["suppressed"]
    assert state[0]["status"]["silencedBy"] == [silence_id]
