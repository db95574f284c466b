"""deploy/alertmanager/alertmanager.yml in a real Alertmanager (Debian's prometheus-alertmanager,
`.ci/system-deps` installs it): an alert of deploy/prometheus's rules, posted as Prometheus posts
it, reaches the receiver its route names as one notification per alert, channel and queue; a
silence keeps a matching alert from being notified while others still are.

The shipped receivers' URLs are replaced by a webhook receiver in this test, on loopback; the
routes, grouping and timings are the shipped ones. Alertmanager runs with gossip off.
"""

from __future__ import annotations

import json
import queue
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
import pytest
import yaml

from ccpulse.processes import free_port, spawn, terminate

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
SPIKE = "CcpulseAbandonRateSpike"
WAIT_S = 45.0  # the page route's group_wait is 10 s

pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason="alertmanager not found: install Debian's prometheus-alertmanager (make system-deps)",
)

Notification = dict[str, Any]


def spike_rule() -> dict[str, Any]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "ccpulse-alerts.yml").read_text())
    found = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == SPIKE]
    assert len(found) == 1
    rule: dict[str, Any] = found[0]
    return rule


@dataclass
class Webhook:
    url: str
    received: queue.Queue[tuple[str, Notification]]
    seen: list[tuple[str, Notification]]

    def next_for(self, wanted: dict[str, str], deadline: float) -> tuple[str, Notification]:
        """The first notification whose groupLabels include `wanted` (bounded wait)."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no notification for {wanted}; got {self.seen}")
            try:
                path, body = self.received.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append((path, body))
            if wanted.items() <= body["groupLabels"].items():
                return path, body


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    received: queue.Queue[tuple[str, Notification]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.put((self.path, json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Webhook(f"http://127.0.0.1:{server.server_address[1]}", received, [])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def alertmanager(tmp_path: Path, webhook: Webhook) -> Iterator[str]:
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook.url}/{receiver['name']}"
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    assert BINARY is not None
    proc: Popen[bytes] = spawn(
        [
            BINARY,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        tmp_path / "alertmanager.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()
            try:
                if httpx.get(f"{base}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Alertmanager not ready within 30 s"
            time.sleep(0.2)
        yield base
    finally:
        terminate(proc)


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

    # A silence on voice, timed by Alertmanager's own clock (its Date header).
    now = parsedate_to_datetime(httpx.get(f"{alertmanager}/-/ready", timeout=5).headers["Date"])
    silence = {
        "matchers": [
            {"name": "alertname", "value": SPIKE, "isRegex": False, "isEqual": True},
            {"name": "channel", "value": "voice", "isRegex": False, "isEqual": True},
        ],
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "ccpulse tests",
        "comment": "maintenance on the voice queues",
    }
    created = httpx.post(f"{alertmanager}/api/v2/silences", json=silence, timeout=10)
    assert created.status_code == 200, created.text
    silence_id = created.json()["silenceID"]

    post_alert(alertmanager, "voice", "billing")  # silenced
    post_alert(alertmanager, "email", "backoffice")  # the control: same route, not silenced
    _, email = webhook.next_for({"channel": "email"}, time.monotonic() + WAIT_S)
    assert email["groupLabels"]["queue"] == "backoffice"
    while not webhook.received.empty():
        webhook.seen.append(webhook.received.get_nowait())
    billing = [b for _, b in webhook.seen if b["groupLabels"].get("queue") == "billing"]
    assert billing == []
    state = httpx.get(
        f"{alertmanager}/api/v2/alerts", params={"filter": 'queue="billing"'}, timeout=10
    ).json()
    assert [a["status"]["state"] for a in state] == ["suppressed"]
    assert state[0]["status"]["silencedBy"] == [silence_id]
