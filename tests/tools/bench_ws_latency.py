"""`make bench`'s latency phase: event -> websocket latency, idle and under 5,000 events/s.

Per push interval (`CCPULSE_WS_MIN_INTERVAL_SECONDS`; 1 s is the production default) one fresh
embedded stack (ingest -> broker -> aggregator -> Redis -> api -> websocket), then:
- the reference: one new `social` contact at up to 20/s with nothing else flowing, each timed
  until the websocket shows it counted before the next is posted (the figure `make bench`
  printed before; at most 200 samples or 30 s);
- under load: a background task posts simulated traffic to ingest at a steady 5,000 events/s
  (batches of 500, bounded in count and time) while probe contacts are posted at 5/s on their own
  queues (`bench-probe-0` .. `-9`, channel `social`, which the background never uses as a queue)
  and each is timed from its post until the websocket shows its queue counting it.

Prints the achieved background rate and p50/p99; asserts nothing. Every loop is bounded in
count and time; the stack is stopped by PID (tests/stackfixtures.py: embedded_pipeline).
`python -m tests.tools.bench_ws_latency [--intervals 1.0 0.1] [--seconds 40]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from simulator.scenario import Day, generate, iso
from tests.clock import clock
from tests.harness import Pipeline
from tests.stackfixtures import embedded_pipeline
from tests.wallboard_feed import Feed

REFERENCE_SAMPLES = 200
REFERENCE_RATE_PER_S = 20  # at most: each waits to be seen before the next (one per push)
REFERENCE_BUDGET_S = 30.0  # fewer samples when pushes are rare (a 1 s interval: about 30)
LOAD_RATE_PER_S = 5_000
LOAD_BATCH = 500
LOAD_IN_FLIGHT = 4  # concurrent posts at most: a slow ingest is not buried under requests
PROBE_RATE_PER_S = 5
PROBE_QUEUES = 10  # a queue sees a probe every 2 s: its count tells which probe arrived
WARMUP_S = 5.0  # background only, before the first probe (the aggregator reaches its pace)
PROBE_WAIT_S = 10.0  # a probe not seen by then is reported as missing


@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)  # seconds, sorted
    missing: int = 0
    background_rate: float = 0.0  # events/s accepted by ingest while probes were timed
    background_events: int = 0

    def line(self) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return "no samples"
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        extra = f", {self.missing} not seen within {PROBE_WAIT_S:.0f} s" if self.missing else ""
        return f"p50 {p50:5.0f} ms, p99 {p99:5.0f} ms  ({len(lat)} samples{extra})"


def ws_url(pipeline: Pipeline) -> str:
    return pipeline.api_url.replace("http", "ws") + "/ws/wallboard"


async def reference(pipeline: Pipeline) -> Figures:
    """One new `social` contact at up to 20/s, nothing else flowing; each is timed until the
    websocket shows it counted before the next is posted (200 samples or 30 s)."""
    figures = Figures()
    async with (
        websockets.connect(ws_url(pipeline), max_size=None) as ws,
        httpx.AsyncClient() as client,
    ):
        feed = Feed(ws)
        await feed.next()
        base = _social_offered(feed.frame)
        deadline = time.perf_counter() + REFERENCE_BUDGET_S
        for n in range(REFERENCE_SAMPLES):
            if time.perf_counter() > deadline:
                break
            event = _contact(f"lat{n}", None)
            sent = time.perf_counter()
            await client.post(f"{pipeline.ingest_url}/v1/events", json=event)
            while time.perf_counter() < sent + PROBE_WAIT_S:
                with_message = await feed.next(PROBE_WAIT_S)
                if _social_offered(with_message) > base + n:
                    figures.latencies.append(time.perf_counter() - sent)
                    break
            else:
                figures.missing += 1
            pause = 1 / REFERENCE_RATE_PER_S - (time.perf_counter() - sent)
            await asyncio.sleep(max(0.0, pause))
    return figures


async def under_load(pipeline: Pipeline, probe_s: float) -> Figures:
    """Probes at 5/s for `probe_s` seconds while the background flows at 5,000 events/s (from
    `WARMUP_S` before the first probe until the last probe is seen or given up)."""
    bodies = _background_bodies(int((WARMUP_S + probe_s + PROBE_WAIT_S) * LOAD_RATE_PER_S))
    figures = Figures()
    stop = asyncio.Event()
    async with (
        websockets.connect(ws_url(pipeline), max_size=None) as ws,
        httpx.AsyncClient(base_url=pipeline.ingest_url, timeout=30) as client,
    ):
        feed = Feed(ws)
        await feed.next()
        sent: list[tuple[int, float]] = []  # (probe number, perf_counter at post)
        seen: dict[int, float] = {}
        load = Load()
        posting = asyncio.create_task(_background(client, bodies, stop, load))
        watch = asyncio.create_task(_watch(feed, sent, seen, stop))
        try:
            await asyncio.sleep(WARMUP_S)
            accepted_before, started = load.accepted, time.perf_counter()
            await _probes(client, probe_s, sent)
            await _until_seen(sent, seen)
            elapsed = time.perf_counter() - started
            figures.background_rate = (load.accepted - accepted_before) / elapsed
        finally:
            stop.set()
            figures.background_events = await posting
            await asyncio.wait_for(watch, PROBE_WAIT_S + 5)
    figures.latencies = sorted(seen[n] - at for n, at in sent if n in seen)
    figures.missing = len(sent) - len(figures.latencies)
    return figures


@dataclass
class Load:
    accepted: int = 0  # events ingest accepted (202) so far


async def _background(
    client: httpx.AsyncClient, bodies: list[tuple[int, bytes]], stop: asyncio.Event, load: Load
) -> int:
    """Post the batches on a steady schedule (5,000 events/s) until `stop` or the last batch;
    never more than `LOAD_IN_FLIGHT` posts at once. Returns the events ingest accepted."""
    slots = asyncio.Semaphore(LOAD_IN_FLIGHT)
    pending: set[asyncio.Task[None]] = set()

    async def post(count: int, body: bytes) -> None:
        try:
            r = await client.post(
                "/v1/events", content=body, headers={"content-type": "application/json"}
            )
            if r.status_code == 202:
                load.accepted += count
        finally:
            slots.release()

    started = time.perf_counter()
    due = started
    for count, body in bodies:
        if stop.is_set():
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await slots.acquire()
        pending.add(asyncio.create_task(post(count, body)))
        pending = {p for p in pending if not p.done()}
        due += count / LOAD_RATE_PER_S
    if pending:
        await asyncio.wait(pending, timeout=60)
    return load.accepted


async def _probes(client: httpx.AsyncClient, probe_s: float, sent: list[tuple[int, float]]) -> None:
    """Probe contacts at `PROBE_RATE_PER_S`, each on queue `bench-probe-(n % PROBE_QUEUES)`."""
    first = time.perf_counter()
    for n in range(int(probe_s * PROBE_RATE_PER_S)):
        await asyncio.sleep(max(0.0, first + n / PROBE_RATE_PER_S - time.perf_counter()))
        at = time.perf_counter()
        sent.append((n, at))
        r = await client.post("/v1/events", json=_contact(f"probe{n}", _probe_queue(n)))
        assert r.status_code == 202, r.text


async def _until_seen(sent: list[tuple[int, float]], seen: dict[int, float]) -> None:
    """Until every probe is seen or the last one has waited `PROBE_WAIT_S` (bounded)."""
    deadline = (sent[-1][1] if sent else time.perf_counter()) + PROBE_WAIT_S
    for _ in range(int(PROBE_WAIT_S / 0.05)):
        if len(seen) == len(sent) or time.perf_counter() > deadline:
            return
        await asyncio.sleep(0.05)


async def _watch(
    feed: Feed, sent: list[tuple[int, float]], seen: dict[int, float], stop: asyncio.Event
) -> None:
    """Each websocket state: the probes its probe queues count are seen (at its arrival)."""
    while not stop.is_set():
        try:
            message = await feed.next(1.0)
        except TimeoutError:
            continue
        at = time.perf_counter()
        queues = ((message.get("data") or {}).get("queues") or {}) if "data" in message else {}
        for n, _ in sent:
            entry = queues.get(_probe_queue(n)) or {}
            if n not in seen and int(entry.get("offered", 0)) > n // PROBE_QUEUES:
                seen[n] = at


def _probe_queue(n: int) -> str:
    return f"bench-probe-{n % PROBE_QUEUES}"


def _contact(contact: str, queue: str | None) -> dict[str, Any]:
    event = {
        "id": contact,
        "type": "contact.offered",
        "time": iso(clock.now()),
        "contact": contact,
        "channel": "social",
    }
    return {**event, "queue": queue} if queue else event


def _background_bodies(count: int) -> list[tuple[int, bytes]]:
    """Simulated traffic of the last quarter hour (times up to a second ago), in batches."""
    now = clock.now()
    contacts = count // 8
    events = generate(Day(seed=11, prefix="bg"), now - 900, contacts, contacts / 600)
    events = [e for e in events if e["time"] <= iso(now - 1)][:count]
    batches = [events[i : i + LOAD_BATCH] for i in range(0, len(events), LOAD_BATCH)]
    return [(len(b), json.dumps(b).encode()) for b in batches]


def _social_offered(message: Any) -> int:
    """Contacts offered on `social` in a wallboard state; 0 for any other message."""
    data = message.get("data") if isinstance(message, dict) else None
    if not isinstance(data, dict):
        return 0
    social = (data.get("channels") or {}).get("social") or {}
    return int(social.get("offered", 0)) if isinstance(social, dict) else 0


def run(intervals: list[float], probe_s: float) -> None:
    """Per push interval, one fresh stack: the idle reference, then the same under load."""
    for interval in intervals:
        env = {"CCPULSE_WS_MIN_INTERVAL_SECONDS": str(interval)}
        default = " (production default)" if interval == 1.0 else ""
        with tempfile.TemporaryDirectory() as tmp, embedded_pipeline(Path(tmp), env) as (p, _):
            idle = asyncio.run(reference(p))
            print(
                f"event -> websocket, push interval {interval:g} s{default}:\n"
                f"  idle, up to {REFERENCE_RATE_PER_S} events/s: {idle.line()}",
                flush=True,
            )
            loaded = asyncio.run(under_load(p, probe_s))
            print(
                f"  under {loaded.background_rate:,.0f} events/s: {loaded.line()}  "
                f"(background {loaded.background_events:,} events, batches of {LOAD_BATCH}, "
                f"target {LOAD_RATE_PER_S:,}/s; probes {PROBE_RATE_PER_S}/s)",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--intervals", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--seconds", type=float, default=40.0, help="probing time under load")
    args = parser.parse_args()
    print("command: python -m tests.tools.bench_ws_latency", *sys_args(args), flush=True)
    run(args.intervals, args.seconds)


def sys_args(args: argparse.Namespace) -> list[str]:
    return ["--intervals", *(f"{i:g}" for i in args.intervals), "--seconds", f"{args.seconds:g}"]


if __name__ == "__main__":
    main()
