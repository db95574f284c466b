"""deploy/healthcheck.py, the image's HEALTHCHECK and the aggregator's Kubernetes probe, against
a real HTTP server and the embedded redis-server: healthy only when the service really is."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest
import redis

from ccpulse.stack import EmbeddedRedis
from services import keys
from tests.clock import OFFSET_S, clock

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "healthcheck.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ccpulse_healthcheck", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**base, "CCPULSE_CLOCK_OFFSET_SECONDS": str(OFFSET_S), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class Ready:
    status = 200


@pytest.fixture
def http_port() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = Ready.status if self.path == "/readyz" else 404
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        Ready.status = 200


def test_the_service_follows_the_command() -> None:
    script = load_script()
    command = ["/usr/local/bin/python", "/usr/local/bin/ccpulse", "api"]
    assert script.service_of([], command) == "api"
    assert script.service_of([], ["ccpulse", "aggregator"]) == "aggregator"
    assert script.service_of([], ["ccpulse", "db", "upgrade"]) is None
    assert script.service_of(["ingest"], ["ccpulse", "api"]) == "ingest"


@pytest.mark.parametrize("service, variable", [("api", "API"), ("ingest", "INGEST")])
def test_http_services_are_healthy_while_readyz_says_so(
    http_port: int, service: str, variable: str
) -> None:
    env = {f"CCPULSE_{variable}_PORT": str(http_port)}
    assert run(service, **env).returncode == 0
    Ready.status = 503
    done = run(service, **env)
    assert done.returncode == 1 and "503" in done.stderr


def test_a_closed_port_is_unhealthy() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run("api", CCPULSE_API_PORT=str(port))
    assert done.returncode == 1 and "unhealthy" in done.stderr


def test_the_aggregator_is_healthy_while_its_lag_report_is_fresh(tmp_path: Path) -> None:
    host = socket.gethostname()
    with EmbeddedRedis(tmp_path / "redis", persistent=False) as server:
        client = redis.Redis.from_url(server.url)
        try:
            no_report = run("aggregator", CCPULSE_REDIS_URL=server.url)
            assert no_report.returncode == 1 and "no lag report" in no_report.stderr
            now_ms = int(clock.now() * 1000)
            client.hset(keys.CONSUMER_LAG, "elsewhere:1:a", keys.lag_report(0, now_ms))
            assert run("aggregator", CCPULSE_REDIS_URL=server.url).returncode == 1
            stale = now_ms - 2 * keys.LAG_FRESH_MS
            client.hset(keys.CONSUMER_LAG, f"{host}:7:b", keys.lag_report(3, stale))
            old = run("aggregator", CCPULSE_REDIS_URL=server.url)
            assert old.returncode == 1 and "old" in old.stderr
            client.hset(keys.CONSUMER_LAG, f"{host}:8:c", keys.lag_report(3, now_ms))
            fresh = run("aggregator", CCPULSE_REDIS_URL=server.url)
            assert fresh.returncode == 0, fresh.stderr
        finally:
            client.close()
        wrong_password = server.url.replace(server.password, "not-the-password")
        refused = run("aggregator", CCPULSE_REDIS_URL=wrong_password)
        assert refused.returncode == 1 and "Redis" in refused.stderr
