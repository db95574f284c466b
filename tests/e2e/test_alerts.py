"""The built-in alerter end to end: real pipeline, real receivers on loopback, real websocket.

An abandonment spike posted to ingest must page a generic webhook (Alertmanager v4), Slack and
PagerDuty once each within 60 s of being reported, with the default for-duration and evaluation
interval; recovery resolves once; a receiver that fails is retried; a spike below the minimum
volume pages nobody.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from redis import Redis
from websockets.sync.client import ClientConnection, connect

from services import keys
from simulator.scenario import iso
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.harness import Child, Pipeline, free_port, wait_until

pytestmark = pytest.mark.e2e

PATHS = ("/webhook", "/slack", "/pagerduty")
ROUTING_KEY = "test-routing-key-0123456789abcdef"


@dataclass
class Receiver:
    """A tiny HTTP server that records every POST; `fail_first` answers 500 that many times."""

    fail_first: int = 0
    attempts: dict[str, int] = field(default_factory=dict)
    accepted: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, path: str, body: bytes) -> int:
        with self.lock:
            self.attempts[path] = self.attempts.get(path, 0) + 1
            if self.attempts[path] <= self.fail_first:
                return 500
            self.accepted.append((path, clock.now(), json.loads(body)))
        return 202 if path == "/pagerduty" else 200

    def got(self, path: str) -> list[tuple[float, dict[str, Any]]]:
        with self.lock:
            return [(at, body) for p, at, body in self.accepted if p == path]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    record = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            status = record.handle(self.path, body)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status": "success"}')

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield record, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def alert_env(url: str, rule: dict[str, Any], interval: float) -> dict[str, str]:
    return {
        "CCPULSE_ALERT_RULES": json.dumps([rule]),
        "CCPULSE_ALERT_EVAL_INTERVAL_SECONDS": str(interval),
        "CCPULSE_ALERT_WEBHOOK_URLS": json.dumps([f"{url}/webhook"]),
        "CCPULSE_ALERT_SLACK_URLS": json.dumps([f"{url}/slack"]),
        "CCPULSE_ALERT_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "CCPULSE_ALERT_PAGERDUTY_URL": f"{url}/pagerduty",
    }


def contacts(
    prefix: str, channel: str, offered_at: list[float], abandoned: int, queue: str = "sales"
) -> list[dict[str, Any]]:
    """Contacts queued at once; the first `abandoned` hang up after 20 s (not a short abandon),
    the others are answered after 8 s."""
    events: list[dict[str, Any]] = []
    for i, at in enumerate(offered_at):
        c = f"{prefix}{i}"
        base = {"contact": c, "channel": channel, "queue": queue}
        events.append({"id": f"{c}o", "type": "contact.offered", "time": iso(at), **base})
        events.append({"id": f"{c}q", "type": "contact.queued", "time": iso(at), "contact": c})
        end = ("contact.abandoned", at + 20) if i < abandoned else ("contact.answered", at + 8)
        events.append(
            {
                "id": f"{c}e",
                "type": end[0],
                "time": iso(end[1]),
                "contact": c,
                **({"agent": "alice"} if i >= abandoned else {}),
            }
        )
    return events


def spread(count: int, start: float, end: float) -> list[float]:
    return [start + (end - start) * i / max(1, count - 1) for i in range(count)]


def alerts_doc(pipeline: Pipeline) -> dict[str, Any]:
    response = httpx.get(f"{pipeline.api_url}/api/v1/alerts", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def next_alerts_message(ws: ClientConnection, timeout: float) -> list[dict[str, Any]]:
    """Skip figure updates until an alerts message arrives (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == "alerts":
            data: list[dict[str, Any]] = message["data"]
            return data
    raise AssertionError(f"no alerts message within {timeout}s")


def test_spike_pages_every_receiver_once_within_60s_and_resolves_once(
    pipeline_factory: PipelineFactory, receiver: tuple[Receiver, str]
) -> None:
    record, url = receiver
    # The default rule with the default for-duration (45 s) and interval (5 s): the real promise.
    # Only the resolve wait is short, to keep the test quick.
    # No 4-week baseline here: the bare 15 % may page only when the rule asks (issue 19).
    rule = {"resolve_for_seconds": 5, "page_without_baseline": True}
    pipeline = pipeline_factory(alert_env(url, rule, interval=5.0))
    now = clock.now()
    normal = contacts("n", "voice", spread(40, now - 120, now - 30), abandoned=0)
    small_spike = contacts("s", "chat", spread(12, now - 100, now - 30), abandoned=8)
    pipeline.post(normal + small_spike)
    wait_until(
        lambda: pipeline.live(window="5m")["channels"]["voice"]["answered"] == 40, 60, "normal"
    )
    time.sleep(6)  # one evaluation over normal traffic: nothing pending, nothing sent
    assert alerts_doc(pipeline)["pending"] == [] and record.accepted == []

    spike_at = clock.now()
    pipeline.post(contacts("x", "voice", spread(30, spike_at - 40, spike_at - 21), abandoned=18))
    for path in PATHS:
        arrived = wait_until(lambda p=path: record.got(p), 75, f"trigger at {path}")
        assert arrived[0][0] - spike_at < 60, (path, arrived[0][0] - spike_at)

    webhook = record.got("/webhook")[0][1]
    assert (webhook["version"], webhook["status"], webhook["receiver"]) == (
        "4",
        "firing",
        "ccpulse",
    )
    assert set(webhook) >= {
        "groupKey",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "truncatedAlerts",
        "alerts",
    }
    alert = webhook["alerts"][0]
    assert alert["labels"]["alertname"] == "abandon_spike" and alert["labels"]["channel"] == "voice"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z" and alert["fingerprint"]
    slack = record.got("/slack")[0][1]
    assert slack["text"].startswith("[FIRING] CRITICAL abandon_spike on voice")
    trigger = record.got("/pagerduty")[0][1]
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == ROUTING_KEY
    assert trigger["dedup_key"] and trigger["payload"]["severity"] == "critical"

    doc = alerts_doc(pipeline)
    assert [(a["channel"], a["state"]) for a in doc["firing"]] == [("voice", "firing")]
    assert doc["firing"][0]["value"] > 0.15 and doc["firing"][0]["volume"] >= 20
    ws_url = pipeline.api_url.replace("http", "ws") + "/ws/wallboard"
    with connect(ws_url, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
        firing = next_alerts_message(ws, 10)
        assert [a["channel"] for a in firing] == ["voice"] and firing[0]["severity"] == "critical"

        # Recovery: plenty of answered calls bring the rate under 12 % (limit less hysteresis)
        # in *both* windows. Once the minute of the spike's offers leaves the 2-minute window,
        # it still holds their 18 abandons (counted in the minute they hang up) beside only the
        # recovery offers of its minutes: with 150 that read 18/131 = 13.7 % until the abandons
        # left too, past this wait (seen under the clock matrix); with 300 it is under 7 %.
        later = clock.now()
        pipeline.post(contacts("r", "voice", spread(300, later - 50, later - 10), abandoned=0))
        assert next_alerts_message(ws, 60) == []  # the push that clears the wallboard banner

    for path in PATHS:
        wait_until(lambda p=path: len(record.got(p)) >= 2, 30, f"resolve at {path}")
    time.sleep(12)  # two more evaluations: nothing is sent twice
    for path in PATHS:
        assert len(record.got(path)) == 2, (path, record.got(path))
    assert record.got("/webhook")[1][1]["status"] == "resolved"
    assert record.got("/webhook")[1][1]["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert record.got("/slack")[1][1]["text"].startswith("[RESOLVED]")
    resolve = record.got("/pagerduty")[1][1]
    assert resolve["event_action"] == "resolve" and resolve["dedup_key"] == trigger["dedup_key"]
    assert all(b["alerts"][0]["labels"]["channel"] == "voice" for _, b in record.got("/webhook"))

    doc = alerts_doc(pipeline)
    assert doc["firing"] == [] and doc["pending"] == []
    assert [(a["state"], a["channel"]) for a in doc["recent"][:2]] == [
        ("resolved", "voice"),
        ("firing", "voice"),
    ]


def test_a_failing_receiver_gets_retries_and_one_delivery(
    pipeline_factory: PipelineFactory, receiver: tuple[Receiver, str]
) -> None:
    record, url = receiver
    record.fail_first = 2  # HTTP 500 twice on every path, then success
    rule = {"for_seconds": 1, "resolve_for_seconds": 1}
    pipeline = pipeline_factory(alert_env(url, rule, interval=0.5))
    now = clock.now()
    pipeline.post(contacts("f", "voice", spread(25, now - 60, now - 21), abandoned=10))
    for path in PATHS:
        wait_until(lambda p=path: record.got(p), 60, f"delivery at {path} after retries")
    time.sleep(3)  # several evaluations and delivery rounds later
    for path in PATHS:
        assert record.attempts[path] == 3, (path, record.attempts)
        assert len(record.got(path)) == 1, (path, record.got(path))
    assert alerts_doc(pipeline)["firing"][0]["channel"] == "voice"


def evaluating(api_url: str) -> bool:
    try:
        return bool(httpx.get(f"{api_url}/api/v1/alerts", timeout=5).json()["evaluating"])
    except httpx.HTTPError:
        return False


def paged_once(pipeline: Pipeline, record: Receiver, count: int, abandoned: int) -> None:
    """Post a voice abandonment spike of the last minute; return once every receiver has its
    page and the leader has cleared the outbox (nothing left to resend)."""
    now = clock.now()
    pipeline.post(contacts("k", "voice", spread(count, now - 60, now - 21), abandoned))
    for path in PATHS:
        wait_until(lambda p=path: record.got(p), 60, f"trigger at {path}")
    redis = Redis.from_url(pipeline.redis_url)
    try:
        wait_until(lambda: redis.hlen(keys.ALERT_OUTBOX) == 0, 15, "deliveries cleared")
    finally:
        redis.close()


def test_the_replica_taking_over_does_not_page_again(
    pipeline_factory: PipelineFactory, receiver: tuple[Receiver, str]
) -> None:
    record, url = receiver
    rule = {"for_seconds": 2, "resolve_for_seconds": 1}
    pipeline = pipeline_factory(alert_env(url, rule, interval=1.0))
    port = free_port()
    env = {**pipeline.env, "CCPULSE_API_PORT": str(port)}
    pipeline.children["api-2"] = Child("api-2", "api", env, pipeline.workdir / "api-2.log")
    pipeline.children["api-2"].start()
    urls = {"api": pipeline.api_url, "api-2": f"http://127.0.0.1:{port}"}
    wait_until(lambda: httpx.get(f"{urls['api-2']}/healthz").status_code == 200, 30, "api-2")
    leaders = wait_until(lambda: [n for n, u in urls.items() if evaluating(u)], 15, "a leader")
    assert len(leaders) == 1, leaders

    # The leader clears each delivery from the outbox after the receiver's answer; a crash
    # before that resends it (at least once). Kill it once all are cleared: no page again.
    paged_once(pipeline, record, count=30, abandoned=15)
    pipeline.children[leaders[0]].kill()  # SIGKILL: the lock is not released, it expires
    survivor = urls["api-2" if leaders[0] == "api" else "api"]
    wait_until(lambda: evaluating(survivor), 15, "the other replica taking over")
    time.sleep(3)  # evaluations by the new leader: the alert is already firing, no new page
    assert [len(record.got(p)) for p in PATHS] == [1, 1, 1]
    assert httpx.get(f"{survivor}/api/v1/alerts").json()["firing"][0]["channel"] == "voice"

    later = clock.now()
    pipeline.post(contacts("kr", "voice", spread(150, later - 50, later - 10), abandoned=0))
    for path in PATHS:
        wait_until(lambda p=path: len(record.got(p)) >= 2, 30, f"resolve at {path}")
    time.sleep(3)
    assert [len(record.got(p)) for p in PATHS] == [2, 2, 2]


def test_an_upgrade_moves_the_alerts_firing_and_their_history(
    pipeline_factory: PipelineFactory, receiver: tuple[Receiver, str]
) -> None:
    """Releases before the `{alerts}` hash tag kept the alerter's states and history under
    other keys (keys.LEGACY_ALERT_*): the upgraded api takes them over, so an alert firing
    across the upgrade pages nobody again and its history stays."""
    record, url = receiver
    pipeline = pipeline_factory(alert_env(url, {"for_seconds": 1, "resolve_for_seconds": 1}, 0.5))
    paged_once(pipeline, record, count=25, abandoned=10)
    redis = Redis.from_url(pipeline.redis_url)
    try:
        pipeline.children["api"].stop()
        history = redis.lrange(keys.ALERT_HISTORY, 0, -1)
        assert history
        # What the earlier release left behind: the same entries under its own key names.
        redis.rename(keys.ALERT_STATES, keys.LEGACY_ALERT_STATES)
        redis.rename(keys.ALERT_HISTORY, keys.LEGACY_ALERT_HISTORY)
        redis.delete(keys.ALERTS_LEADER_LOCK)
        pipeline.children["api"].start()
        wait_until(lambda: evaluating(pipeline.api_url), 30, "the upgraded api evaluating")
        wait_until(lambda: not redis.exists(keys.LEGACY_ALERT_STATES), 15, "states moved")
        time.sleep(3)  # several evaluations later: the spike is still there, no new page
        assert [len(record.got(p)) for p in PATHS] == [1, 1, 1]
        assert redis.lrange(keys.ALERT_HISTORY, 0, -1)[-len(history) :] == history
        assert not redis.exists(keys.LEGACY_ALERT_HISTORY)
        assert [a["channel"] for a in alerts_doc(pipeline)["firing"]] == ["voice"]
    finally:
        redis.close()
