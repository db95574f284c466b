"""What the chaos harness measures: the recount comparison, process memory, websocket clients.

Kept apart from tests/tools/chaos.py (which drives the faults) so each file has one job.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import httpx
from aiokafka import TopicPartition

from aggregator import topic_reading
from services.settings import DEFAULT_SL_THRESHOLDS_SECONDS, Settings
from tests import oracle
from tests.clock import clock
from tests.e2e.test_pipeline import FIGURES
from tests.harness import Pipeline

try:
    import psutil
except ImportError:  # optional: /proc is enough on Linux
    psutil = None


@dataclass
class Report:
    """Lost and double-counted are counts summed over every channel's count figures."""

    lost: int = 0
    doubled: int = 0
    compared: int = 0
    mismatches: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    shed: int | None = 0  # updates replaced for stalled clients (/metrics; None: no answer)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.doubled == 0 and not self.mismatches

    def check(self, where: str, got: Any, want: Any, counts: bool = False) -> None:
        self.compared += 1
        if isinstance(want, dict) or isinstance(got, dict):
            for key in set(want or {}) | set(got or {}):
                self.check(
                    f"{where}/{key}", (got or {}).get(key, 0), (want or {}).get(key, 0), counts
                )
            self.compared -= 1
            return
        if isinstance(want, float) and isinstance(got, int | float):
            if abs(got - want) > 1e-9:
                self.mismatches.append(f"{where}: got {got}, want {want}")
            return
        if got != want:
            self.mismatches.append(f"{where}: got {got}, want {want}")
            if counts and isinstance(got, int) and isinstance(want, int):
                self.lost += max(0, want - got)
                self.doubled += max(0, got - want)

    def text(self) -> str:
        lines = ["--- chaos report ---", *self.header]
        lines += [
            f"figures compared: {self.compared}",
            f"lost: {self.lost}",
            f"double-counted: {self.doubled}",
            f"mismatched figures: {len(self.mismatches)}",
            *(f"  {m}" for m in self.mismatches[:40]),
            "RESULT: " + ("exact" if self.ok else "NOT EXACT"),
        ]
        return "\n".join(lines)


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def live_after_faults(pipeline: Pipeline, **params: Any) -> dict[str, Any]:
    """/api/v1/live once the api reads Redis again: right after a Redis restart the api may
    answer 503 once (its pooled connections were cut), as documented; bounded to 30 s."""
    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(f"{pipeline.api_url}/api/v1/live", params=params, timeout=30)
        if response.status_code != 503 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            doc: dict[str, Any] = response.json()
            return doc
        time.sleep(0.5)


def compare(
    pipeline: Pipeline, events: list[dict[str, Any]], from_s: float, measured_fcr: bool = True
) -> Report:
    """Every figure, agent row and gauge of /api/v1/live against the oracle's recount."""
    doc = live_after_faults(pipeline, **{"from": from_s, "to": clock.now()})
    start, end = _epoch(doc["from"]), _epoch(doc["to"])
    report = Report()
    expected = oracle.recount(events, start, end, DEFAULT_SL_THRESHOLDS_SECONDS)
    for kind in ("channels", "queues"):
        for name in set(expected[kind]) | set(doc[kind]):
            got, want = doc[kind].get(name, {}), expected[kind].get(name, {})
            for figure in FIGURES:
                default = None if figure.endswith(("_seconds", "_rate", "_level")) else 0
                report.check(
                    f"{kind}/{name}/{figure}",
                    got.get(figure, default),
                    want.get(figure, default),
                    counts=kind == "channels",
                )
    fcr = oracle.fcr_measured(events, start, end) if measured_fcr else {}
    for channel, (eligible, met) in fcr.items():
        got = doc["channels"].get(channel, {})
        report.check(f"fcr/{channel}/resolved", got.get("fcr_measured_resolved"), eligible)
        rate = met / eligible if eligible else None
        report.check(f"fcr/{channel}/rate", got.get("fcr_measured_rate"), rate)
    as_of_ms = int(datetime.fromisoformat(doc["as_of"].replace("Z", "+00:00")).timestamp() * 1000)
    for agent, want in oracle.agents(events, start, end, as_of_ms).items():
        got = doc["agents"].get(agent, {})
        for figure in ("answered", "handled", "aht_seconds"):
            report.check(f"agents/{agent}/{figure}", got.get(figure), want[figure])
        _states(
            report,
            agent,
            got.get("time_in_state_seconds", {}),
            want.get("time_in_state_seconds", {}),
        )
    for agent, (state, since) in last_states(events).items():
        got = doc["agents"].get(agent, {})
        report.check(f"agents/{agent}/state", got.get("state"), state)
        report.check(f"agents/{agent}/state_since", got.get("state_since"), since)
    waiting = oracle.waiting_now(events)
    for channel, figures in doc["channels"].items():
        report.check(f"gauge/{channel}/in_queue", figures.get("in_queue"), waiting.get(channel, 0))
    return report


def last_states(events: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Each agent's state now: its last agent.state event by (time, id), and when it began.
    Checks that no aggregator wrote an older state over a newer one (issue 18)."""
    last: dict[str, tuple[int, str, str]] = {}
    for e in events:
        if e["type"] == "agent.state":
            stamp = (_epoch_ms(e["time"]), e["id"], e["state"])
            if e["agent"] not in last or stamp[:2] > last[e["agent"]][:2]:
                last[e["agent"]] = stamp
    return {a: (state, _iso_ms(ms)) for a, (ms, _, state) in last.items()}


def _epoch_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _states(report: Report, agent: str, got: dict[str, float], want: dict[str, float]) -> None:
    """Time in state is read against `as_of`: equal to the millisecond."""
    for state in set(got) | set(want):
        report.compared += 1
        if abs(got.get(state, 0.0) - want.get(state, 0.0)) >= 0.002:
            report.mismatches.append(
                f"agents/{agent}/{state}: got {got.get(state)}, want {want.get(state)}"
            )


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """The log end of each partition (the next offset to be written), as a fetch reports it:
    the embedded broker lists less (aggregator.topic_reading)."""
    tps = {TopicPartition(topic, p): 0 for p in range(partitions)}
    ends = asyncio.run(topic_reading.log_ends(Settings(kafka_bootstrap=bootstrap), tps))
    return {tp.partition: offset for tp, offset in ends.items()}


def rss_mb(pid: int) -> float | None:
    """Resident memory of one process, psutil if present, else /proc/PID/status."""
    if psutil is not None:
        try:
            return float(psutil.Process(pid).memory_info().rss) / 2**20
        except psutil.Error:  # killed between lookup and read
            return None
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class RssSampler:
    """RSS of named children once a second: start, peak and end, to show memory stays flat."""

    pipeline: Pipeline
    names: tuple[str, ...]
    samples: dict[str, list[float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for name in self.names:
                process = self.pipeline.children[name].process
                value = rss_mb(process.pid) if process and process.poll() is None else None
                if value is not None:
                    self.samples.setdefault(name, []).append(value)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def lines(self) -> list[str]:
        return [
            f"RSS MB {name}: start {s[0]:.0f}, peak {max(s):.0f}, end {s[-1]:.0f} "
            f"({len(s)} samples)"
            for name, s in self.samples.items()
            if s
        ]


def ws_connect(port: int, receive_buffer: int | None = None) -> socket.socket:
    """A websocket opened by hand, so a client can hold it without ever reading a frame."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # before connect, so the window stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/wallboard HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 4096:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise ConnectionError(f"websocket refused: {head[:80]!r}")
    return sock


class Sockets:
    """Stalled clients (never read), slow ones (a little each second) and one normal reader."""

    def __init__(self, port: int, stalled: int, slow: int) -> None:
        self.stalled = [ws_connect(port, 4096) for _ in range(stalled)]
        self.slow = [ws_connect(port, 4096) for _ in range(slow)]
        self.reader = ws_connect(port)
        self._bytes = 0
        self._closing = threading.Event()
        self._threads = [
            threading.Thread(target=self._read_all, daemon=True),
            threading.Thread(target=self._read_slowly, daemon=True),
        ]

    def _read_all(self) -> None:
        self.reader.settimeout(1)
        while not self._closing.is_set():
            try:
                chunk = self.reader.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self._bytes += len(chunk)

    def _read_slowly(self) -> None:
        while not self._closing.wait(1.0):
            for sock in self.slow:
                try:
                    sock.settimeout(0.05)
                    sock.recv(256)
                except OSError:
                    continue

    def received(self) -> int:
        return self._bytes

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()
        for thread in self._threads:
            thread.join(5)
        for sock in [*self.stalled, *self.slow, self.reader]:
            sock.close()
