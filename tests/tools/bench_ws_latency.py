"""`make bench`'s latency phase: event -> websocket latency, idle and under 5,000 events/s.

Per push interval (`CCPULSE_WS_MIN_INTERVAL_SECONDS`; 0.5 s is the production default) one fresh
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
import itertools
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import websockets
from redis.asyncio import Redis

from services import keys
from services.settings import Settings
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
QUEUES = range(PROBE_QUEUES)
WARM_UP_S = 60.0  # at most, for the first contact through a fresh stack
DEFAULT_INTERVAL_S = Settings.model_fields["ws_min_interval_seconds"].default


def percentiles(values: list[float]) -> str:
    """p50 and p99 in ms."""
    lat = sorted(values)
    if not lat:
        return "no samples"
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    return f"p50 {p50:5.0f} ms, p99 {p99:5.0f} ms"


@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)  # seconds
    missing: int = 0
    background_rate: float = 0.0  # events/s accepted by ingest while probes were timed
    background_events: int = 0
    stages: list[str] = field(default_factory=list)  # where the time went, one line each
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU s while probes ran
    pushes: int = 0  # websocket states while probes ran

    def line(self) -> str:
        extra = f", {self.missing} not seen within {PROBE_WAIT_S:.0f} s" if self.missing else ""
        return f"{percentiles(self.latencies)}  ({len(self.latencies)} samples{extra})"


@dataclass
class Probes:
    """Each probe's times (perf_counter) at each stage, by probe number."""

    sent: dict[int, float] = field(default_factory=dict)  # posted to ingest
    accepted: dict[int, float] = field(default_factory=dict)  # ingest answered 202
    applied: dict[int, float] = field(default_factory=dict)  # counted in Redis
    seen: dict[int, float] = field(default_factory=dict)  # counted on the websocket
    buckets: set[int] = field(default_factory=set)  # minute buckets the probes' times fall in
    pushes: list[float] = field(default_factory=list)  # websocket states' arrivals

    def stages(self) -> list[str]:
        done = [n for n in self.seen if n in self.applied and n in self.accepted]
        gaps = [b - a for a, b in itertools.pairwise(self.pushes)]
        return [
            f"post -> ingest 202:         {self._span(self.sent, self.accepted, done)}",
            f"202 -> counted in Redis:    {self._span(self.accepted, self.applied, done)}",
            f"Redis -> websocket:         {self._span(self.applied, self.seen, done)}",
            f"between websocket states:   {percentiles(gaps)}",
        ]

    @staticmethod
    def _span(start: dict[int, float], end: dict[int, float], probes: list[int]) -> str:
        return percentiles([end[n] - start[n] for n in probes])


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
        base = await _warm_up(client, pipeline, feed)
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


async def _warm_up(client: httpx.AsyncClient, pipeline: Pipeline, feed: Feed) -> int:
    """One untimed contact through the fresh stack (the aggregator's first group join takes
    seconds on the embedded broker); returns the `social` count the samples start from."""
    base = _social_offered(feed.frame)
    await client.post(f"{pipeline.ingest_url}/v1/events", json=_contact("latwarm", None))
    deadline = time.perf_counter() + WARM_UP_S
    for _ in range(100_000):  # bounded in count as well as in time
        if time.perf_counter() > deadline:
            break
        count = _social_offered(await feed.next(WARM_UP_S))
        if count > base:
            return count
    raise TimeoutError(f"the stack did not count a contact within {WARM_UP_S:.0f} s")


async def under_load(pipeline: Pipeline, redis_url: str, probe_s: float) -> Figures:
    """Probes at 5/s for `probe_s` seconds while the background flows at 5,000 events/s (from
    `WARMUP_S` before the first probe until the last probe is seen or given up)."""
    bodies = _background_bodies(int((WARMUP_S + probe_s + PROBE_WAIT_S) * LOAD_RATE_PER_S))
    figures, probes, load, stop = Figures(), Probes(), Load(), asyncio.Event()
    async with (
        websockets.connect(ws_url(pipeline), max_size=None) as ws,
        httpx.AsyncClient(base_url=pipeline.ingest_url, timeout=30) as client,
    ):
        feed = Feed(ws)
        await feed.next()
        tasks = [
            asyncio.create_task(_watch(feed, probes, stop)),
            asyncio.create_task(_watch_redis(redis_url, probes, stop)),
        ]
        posting = asyncio.create_task(_background(client, bodies, stop, load))
        try:
            await asyncio.sleep(WARMUP_S)
            accepted_before, started = load.accepted, time.perf_counter()
            cpu_before, pushes_before = cpu_seconds(pipeline), len(probes.pushes)
            await _probes(client, probe_s, probes)
            await _until_seen(probes)
            elapsed = time.perf_counter() - started
            figures.background_rate = (load.accepted - accepted_before) / elapsed
            after = cpu_seconds(pipeline)
            figures.cpu = {name: after[name] - cpu_before[name] for name in after}
            figures.pushes = len(probes.pushes) - pushes_before
        finally:
            stop.set()
            figures.background_events = await posting
            await asyncio.wait_for(asyncio.gather(*tasks), PROBE_WAIT_S + 5)
    figures.latencies = [probes.seen[n] - at for n, at in probes.sent.items() if n in probes.seen]
    figures.missing = len(probes.sent) - len(figures.latencies)
    figures.stages = probes.stages()
    return figures


def cpu_seconds(pipeline: Pipeline) -> dict[str, float]:
    """User + system CPU seconds of each of the stack's processes so far."""
    out: dict[str, float] = {}
    for name, child in pipeline.children.items():
        if child.process is not None:
            times = psutil.Process(child.process.pid).cpu_times()
            out[name] = times.user + times.system
    return out


def cpu_line(figures: Figures) -> str:
    """Where the cores went while probes ran; the api's per websocket state pushed."""
    spent = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in figures.cpu.items())
    per_push = figures.cpu.get("api", 0.0) / figures.pushes * 1000 if figures.pushes else 0.0
    return f"CPU while probing:          {spent}; api {per_push:.0f} ms per state pushed"


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


async def _probes(client: httpx.AsyncClient, probe_s: float, probes: Probes) -> None:
    """Probe contacts at `PROBE_RATE_PER_S`, each on queue `bench-probe-(n % PROBE_QUEUES)`."""
    first = time.perf_counter()
    for n in range(int(probe_s * PROBE_RATE_PER_S)):
        await asyncio.sleep(max(0.0, first + n / PROBE_RATE_PER_S - time.perf_counter()))
        event = _contact(f"probe{n}", _probe_queue(n))
        probes.buckets.add(keys.bucket_start_s(clock.now(), "m"))
        probes.sent[n] = time.perf_counter()
        r = await client.post("/v1/events", json=event)
        assert r.status_code == 202, r.text
        probes.accepted[n] = time.perf_counter()


async def _until_seen(probes: Probes) -> None:
    """Until every probe is seen or the last one has waited `PROBE_WAIT_S` (bounded)."""
    last = max(probes.sent.values(), default=time.perf_counter())
    for _ in range(int(PROBE_WAIT_S / 0.05)):
        if len(probes.seen) == len(probes.sent) or time.perf_counter() > last + PROBE_WAIT_S:
            return
        await asyncio.sleep(0.05)


async def _watch(feed: Feed, probes: Probes, stop: asyncio.Event) -> None:
    """Each websocket state: the probes its probe queues count are seen (at its arrival)."""
    while not stop.is_set():
        try:
            message = await feed.next(1.0)
        except TimeoutError:
            continue
        at = time.perf_counter()
        if "data" not in message:
            continue  # alerts
        probes.pushes.append(at)
        queues = message["data"].get("queues") or {}
        counts = [int((queues.get(_probe_queue(q)) or {}).get("offered", 0)) for q in QUEUES]
        _arrived(probes.seen, counts, list(probes.sent), at)


async def _watch_redis(redis_url: str, probes: Probes, stop: asyncio.Event) -> None:
    """After each change notice: the probes the counters in Redis count are applied (each
    partition's minute buckets summed, as the api does)."""
    redis = Redis.from_url(redis_url)
    try:
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(keys.CHANGES_CHANNEL)
            while not stop.is_set():
                if await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0):
                    at = time.perf_counter()
                    counts = await _redis_counts(redis, sorted(probes.buckets))
                    _arrived(probes.applied, counts, list(probes.sent), at)
    finally:
        await redis.aclose()


async def _redis_counts(redis: Redis, buckets: list[int]) -> list[int]:
    """Per probe queue: contacts offered, summed over partitions and minute buckets."""
    partitions = int(await redis.get(keys.PARTITIONS) or 0)
    async with redis.pipeline(transaction=False) as pipe:
        for q in QUEUES:
            field_name = keys.counter_field(keys.queue_scope("social", _probe_queue(q)), "offered")
            for partition in range(partitions):
                for bucket in buckets:
                    pipe.hget(keys.partition_counter_key(partition, "m", bucket), field_name)
        values = await pipe.execute()
    per_queue = len(values) // len(QUEUES) if values else 0
    return [sum(int(v or 0) for v in values[q * per_queue : (q + 1) * per_queue]) for q in QUEUES]


def _arrived(times: dict[int, float], counts: list[int], sent: list[int], at: float) -> None:
    """Probe n is the (n // PROBE_QUEUES)-th of its queue: counted once the count passes it."""
    for n in sent:
        if n not in times and counts[n % PROBE_QUEUES] > n // PROBE_QUEUES:
            times[n] = at


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


def run(intervals: list[float], probe_s: float, settings: dict[str, str] | None = None) -> None:
    """Per push interval, one fresh stack: the idle reference, then the same under load."""
    for interval in intervals:
        env = {**(settings or {}), "CCPULSE_WS_MIN_INTERVAL_SECONDS": str(interval)}
        default = " (production default)" if interval == DEFAULT_INTERVAL_S else ""
        with tempfile.TemporaryDirectory() as tmp, embedded_pipeline(Path(tmp), env) as (p, url):
            idle = asyncio.run(reference(p))
            print(
                f"event -> websocket, push interval {interval:g} s{default}:\n"
                f"  idle, up to {REFERENCE_RATE_PER_S} events/s: {idle.line()}",
                flush=True,
            )
            loaded = asyncio.run(under_load(p, url, probe_s))
            print(
                f"  under {loaded.background_rate:,.0f} events/s: {loaded.line()}  "
                f"(background {loaded.background_events:,} events, batches of {LOAD_BATCH}, "
                f"target {LOAD_RATE_PER_S:,}/s; probes {PROBE_RATE_PER_S}/s)",
                *(f"    {stage}" for stage in [*loaded.stages, cpu_line(loaded)]),
                sep="\n",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--intervals", type=float, nargs="+", default=[DEFAULT_INTERVAL_S, 1.0])
    parser.add_argument("--seconds", type=float, default=40.0, help="probing time under load")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="CCPULSE_NAME=VALUE",
        help="a setting for every process of the stack (repeatable)",
    )
    args = parser.parse_args()
    print("command: python -m tests.tools.bench_ws_latency", *sys_args(args), flush=True)
    run(args.intervals, args.seconds, dict(item.split("=", 1) for item in args.set))


def sys_args(args: argparse.Namespace) -> list[str]:
    settings = [f"--set={item}" for item in args.set]
    return [
        "--intervals",
        *(f"{i:g}" for i in args.intervals),
        "--seconds",
        f"{args.seconds:g}",
        *settings,
    ]


if __name__ == "__main__":
    main()
