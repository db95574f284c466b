"""The real processes under test: ingest, aggregator and api as `python -m ...` children.

Tests talk to them as users do, over HTTP and websockets; the harness only starts, kills and
restarts them (by PID) and waits, always with a bound, for the pipeline to settle.
"""

from __future__ import annotations

import functools
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.clock import OFFSET_S

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Child:
    name: str
    module: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        log.close()

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def stop(self, timeout: float = 10) -> int | None:
        if self.process is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL: no chance to flush or commit anything."""
        if self.process is not None:
            self.signal(signal.SIGKILL)
            self.process.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def closed_within(sock: socket.socket, deadline: float) -> bool:
    """The server closed it (EOF or reset) before the deadline."""
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


class RawHttp:
    """A raw HTTP/1.1 connection: bytes out, responses read in turn from one buffer (so
    pipelined answers are not lost between two readers)."""

    def __init__(self, url: str, timeout: float = 10) -> None:
        port = int(url.rsplit(":", 1)[1])
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self) -> tuple[int, bytes]:
        """The next response: status and body (every answer here has a Content-Length)."""
        status = int(self.reader.readline().split()[1])
        length = 0
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, self.reader.read(length)

    def answered(self, seconds: float) -> bool:
        """Something came back (an answer or the close) within `seconds`."""
        return bool(select.select([self.sock], [], [], seconds)[0])

    def closed_within(self, deadline: float) -> bool:
        return closed_within(self.sock, deadline)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@functools.cache
def _schema_template() -> Path:
    """One SQLite file migrated by the real `ccpulse db upgrade`, copied for each pipeline."""
    folder = Path(tempfile.mkdtemp(prefix="ccpulse-schema-"))
    url = f"sqlite+aiosqlite:///{folder}/history.db"
    env = {**os.environ, "CCPULSE_DATABASE_URL": url, "CCPULSE_AUTH": "off"}
    cmd = [sys.executable, "-m", "ccpulse", "db", "upgrade"]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return folder / "history.db"


def migrate(env: dict[str, str], workdir: Path) -> None:
    """Apply the history schema as `ccpulse up` does, before the processes start."""
    url = env.get("CCPULSE_DATABASE_URL", "")
    target = workdir / "history.db"
    if url == f"sqlite+aiosqlite:///{target}":
        if not target.exists():
            shutil.copyfile(_schema_template(), target)
        return
    cmd = [sys.executable, "-m", "ccpulse", "db", "upgrade"]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)


def same(got: Any, want: Any, where: str) -> None:
    """Equal, floats to 1e-9: a figure from the api against the recount's."""
    if isinstance(want, float) and got is not None:
        assert abs(got - want) < 1e-9, (where, got, want)
    else:
        assert got == want, (where, got, want)


def epoch_of(text: str) -> float:
    """An ISO time from a document (`Z` or an offset) as epoch seconds."""
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # the service may still be starting
            last_error = exc
        time.sleep(every)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error})"
    )


@dataclass
class Pipeline:
    """ingest + aggregator + api wired to one broker and one Redis."""

    bootstrap: str
    redis_url: str
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    children: dict[str, Child] = field(default_factory=dict)
    aggregators: int = 1  # more share the consumer group (chaos: kills force rebalances)

    def __post_init__(self) -> None:
        self.ingest_port = free_port()
        self.api_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")},
            "CCPULSE_KAFKA_BOOTSTRAP": self.bootstrap,
            "CCPULSE_KAFKA_IDEMPOTENCE": "false",
            "CCPULSE_REDIS_URL": self.redis_url,
            "CCPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir}/history.db",
            "CCPULSE_DATA_DIR": str(self.workdir),
            "CCPULSE_INGEST_PORT": str(self.ingest_port),
            "CCPULSE_API_PORT": str(self.api_port),
            "CCPULSE_WS_MIN_INTERVAL_SECONDS": "0.2",
            "CCPULSE_AUTH": "off",  # loopback only; tests/e2e/test_access.py turns it on
            "CCPULSE_CLOCK_OFFSET_SECONDS": str(OFFSET_S),  # the stack lives at the tests' "now"
            **self.extra_env,
        }
        for name in ("ingest", "aggregator", "api"):
            self.children[name] = Child(name, name, self.env, self.workdir / f"{name}.log")
        for number in range(2, self.aggregators + 1):
            name = f"aggregator{number}"
            self.children[name] = Child(name, "aggregator", self.env, self.workdir / f"{name}.log")

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ingest_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, *names: str) -> None:
        migrate(self.env, self.workdir)
        for name in names or tuple(self.children):
            self.children[name].start()
        if not names or "ingest" in names:
            wait_until(
                lambda: httpx.get(f"{self.ingest_url}/healthz").status_code == 200, 30, "ingest"
            )
        if not names or "api" in names:
            wait_until(lambda: httpx.get(f"{self.api_url}/healthz").status_code == 200, 30, "api")

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()

    def post(self, events: list[dict[str, Any]], chunk: int = 2000) -> int:
        accepted = 0
        with httpx.Client(base_url=self.ingest_url, timeout=30) as client:
            for i in range(0, len(events), chunk):
                response = client.post("/v1/events", json=events[i : i + chunk])
                assert response.status_code == 202, response.text
                accepted += response.json()["accepted"]
        return accepted

    def live(self, **params: Any) -> dict[str, Any]:
        response = httpx.get(f"{self.api_url}/api/v1/live", params=params, timeout=30)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def metric(self, *names: str) -> int:
        """The sum of unlabelled samples with these names on the api's /metrics."""
        text = httpx.get(f"{self.api_url}/metrics", timeout=10).text
        total = 0
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in names:
                total += int(float(value))
        return total

    def applied(self) -> int:
        """Records the aggregator has consumed (applied or dead-lettered), from /metrics."""
        return self.metric(
            "ccpulse_aggregator_events_applied_total", "ccpulse_aggregator_dead_letters_total"
        )

    def wait_applied(self, count: int, timeout: float = 120) -> None:
        wait_until(lambda: self.applied() >= count, timeout, f"{count} events applied", 0.5)
