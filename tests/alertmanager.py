"""A real Alertmanager (Debian's prometheus-alertmanager) and a webhook receiver, on loopback.

Alertmanager runs with deploy/alertmanager/alertmanager.yml, its receivers' URLs replaced by the
local webhook (`<webhook>/<receiver name>`), gossip off; the routes, grouping, inhibitions and
timings are the shipped ones. Used by tests/integration/test_alertmanager_routing.py (alerts as
Prometheus posts them) and tests/e2e/test_alertmanager_receiver.py (the built-in alerter).
"""

from __future__ import annotations

import json
import queue
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
import yaml

from ccpulse.processes import free_port, spawn, terminate

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
MISSING = "alertmanager not found: install Debian's prometheus-alertmanager (make system-deps)"

Notification = dict[str, Any]


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

    def find(self, wanted: dict[str, str], deadline: float) -> tuple[str, Notification]:
        """Like `next_for`, but a notification already taken while waiting for another counts."""
        for path, body in self.seen:
            if wanted.items() <= body["groupLabels"].items():
                return path, body
        return self.next_for(wanted, deadline)

    def drain(self) -> list[tuple[str, Notification]]:
        """Everything received so far, the notifications already taken included."""
        while not self.received.empty():
            self.seen.append(self.received.get_nowait())
        return list(self.seen)


@contextmanager
def running_webhook() -> Iterator[Webhook]:
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


@contextmanager
def running_alertmanager(workdir: Path, webhook: Webhook) -> Iterator[str]:
    """The shipped configuration with local receivers; yields the base URL once ready."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook.url}/{receiver['name']}"
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    assert BINARY is not None, MISSING
    proc: Popen[bytes] = spawn(
        [
            BINARY,
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        workdir / "alertmanager.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (workdir / "alertmanager.log").read_text()
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


def alertmanager_now(base: str) -> datetime:
    """Alertmanager's own clock (its Date header): the suite's may be shifted."""
    return parsedate_to_datetime(httpx.get(f"{base}/-/ready", timeout=5).headers["Date"])


def silence(base: str, matchers: dict[str, str], comment: str) -> str:
    """A silence of an hour on exact label values, from a minute ago by Alertmanager's clock."""
    now = alertmanager_now(base)
    body = {
        "matchers": [
            {"name": name, "value": value, "isRegex": False, "isEqual": True}
            for name, value in matchers.items()
        ],
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "ccpulse tests",
        "comment": comment,
    }
    created = httpx.post(f"{base}/api/v2/silences", json=body, timeout=10)
    assert created.status_code == 200, created.text
    silence_id: str = created.json()["silenceID"]
    return silence_id


def alerts(base: str, label_filter: str) -> list[dict[str, Any]]:
    """Alertmanager's alerts (active, silenced and inhibited) matching one filter."""
    response = httpx.get(f"{base}/api/v2/alerts", params={"filter": label_filter}, timeout=10)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found
