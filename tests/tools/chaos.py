"""Chaos harness: the real stack under faults, ending in an exact recount of what was accepted.

`python -m tests.tools.chaos --events 1000000 --kills 20` starts an embedded broker, a redis-server
with its append-only file on, the ingest, the api and two aggregators sharing one consumer
group. It streams generated contacts (reordered, some sent twice) through `POST /v1/events`
while it SIGKILLs aggregators and the ingest, restarts and pauses Redis, and keeps stalled and
slow websocket clients connected. Then it stops the stream, waits (bounded) until Redis holds
every partition's last offset, and compares every figure and gauge of `/api/v1/live` with
`tests/oracle.py` run over the events the ingest answered 202. Exit status 0 only when nothing
was lost, nothing double-counted and no figure mismatched. See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from ccpulse.stack import EmbeddedBroker, EmbeddedRedis
from services import keys
from services.keys import ALL_TOPICS
from simulator.scenario import Day, generate, iso
from tests.clock import clock
from tests.harness import Pipeline, wait_until
from tests.stackfixtures import LocalCluster
from tests.tools.chaos_tools import Report, RssSampler, Sockets, compare, end_offsets

PARTITIONS = 6
CLUSTER_ENV = {"CCPULSE_REDIS_CLUSTER": "true"}
PAUSE_S = 7.0  # past the 5 s Redis socket timeout of the api and aggregators


@dataclass
class Config:
    """One run's knobs; the defaults are the test variant's."""

    events: int = 50_000
    kills: int = 5
    seed: int = 0
    rate: float = 2500.0  # events/s offered to the ingest: spreads the faults over the stream
    batch: int = 1000
    ingest_kills: int = 1
    redis_restarts: int = 1
    redis_pauses: int = 1
    stalled_ws: int = 3
    slow_ws: int = 3
    fsync: str = "always"  # see docs/reliability.md: why not everysec for this run
    drain_timeout: float = 300.0
    workdir: Path | None = None
    aggregators: int = 2  # processes sharing the consumer group
    cluster: bool = False  # a local Redis Cluster (three primaries) instead of one redis-server

    @property
    def names(self) -> tuple[str, ...]:
        return ("aggregator", *(f"aggregator{n}" for n in range(2, self.aggregators + 1)))


class AofRedis(EmbeddedRedis):
    """EmbeddedRedis with a chosen appendfsync policy (the default there is everysec)."""

    def __init__(self, data_dir: Path, fsync: str) -> None:
        super().__init__(data_dir, persistent=True)
        self.fsync = fsync

    def _argv(self) -> list[str]:
        argv = super()._argv()
        argv[argv.index("--appendfsync") + 1] = self.fsync
        return argv


def stream(count: int, seed: int) -> list[dict[str, Any]]:
    """`count` deliveries of past contacts: locally reordered, about 3% sent twice."""
    rng = random.Random(seed)
    now = clock.now()
    hours = 2.0 if count <= 100_000 else 6.0
    contacts = count // 7 + 10
    day = Day(seed=seed, agents=40, customers=max(400, contacts // 3), prefix=f"x{seed}")
    events = generate(day, now - hours * 3600, contacts, contacts / (hours * 3600))
    events = [e for e in events if e["time"] <= iso(now - 5)]
    out: list[dict[str, Any]] = []
    for e in events:
        out.append(e)
        if rng.random() < 0.03:
            out.append(dict(e))
    out = out[:count]
    for i in range(0, len(out), 4000):  # reorder within windows, as platforms deliver
        window = out[i : i + 4000]
        rng.shuffle(window)
        out[i : i + 4000] = window
    return out


@dataclass
class Poster:
    """Posts batches at a bounded rate; retries a batch until 202 (retrying is always safe)."""

    url: str
    batches: list[list[dict[str, Any]]]
    rate: float
    accepted: list[dict[str, Any]] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    unacknowledged: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        started = time.monotonic()
        sent = 0
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for batch in self.batches:
                ahead = sent / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
                if self._post(client, batch):
                    self.accepted.extend(batch)
                else:
                    self.unacknowledged += len(batch)
                sent += len(batch)
        self.done.set()

    def _post(self, client: httpx.Client, batch: list[dict[str, Any]]) -> bool:
        """Only a 202 counts; anything else (or no answer) is retried for up to 120 s."""
        deadline = time.monotonic() + 120
        delay = 0.1
        while time.monotonic() < deadline:
            try:
                response = client.post("/v1/events", json=batch)
                self.statuses[str(response.status_code)] += 1
                if response.status_code == 202:
                    return True
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1
            time.sleep(delay)
            delay = min(2.0, delay * 2)
        return False


@dataclass
class Faults:
    """Seeded fault schedule and its execution; every process is addressed by PID."""

    pipeline: Pipeline
    redis_server: AofRedis | LocalCluster
    rng: random.Random
    names: tuple[str, ...] = ("aggregator", "aggregator2")
    counts: Counter[str] = field(default_factory=Counter)

    def plan(self, config: Config, duration: float) -> list[tuple[float, str]]:
        kinds = ["aggregator"] * config.kills + ["ingest"] * config.ingest_kills
        kinds += ["redis_restart"] * config.redis_restarts + ["redis_pause"] * config.redis_pauses
        return sorted((self.rng.uniform(0.05, 0.95) * duration, kind) for kind in kinds)

    def run(self, schedule: list[tuple[float, str]]) -> None:
        started = time.monotonic()
        for at, kind in schedule:
            time.sleep(max(0.0, at - (time.monotonic() - started)))
            print(f"  t={time.monotonic() - started:6.1f}s {kind}", flush=True)
            getattr(self, kind)()

    def aggregator(self) -> None:
        """One instance, or now and then both (a kill counts per instance)."""
        targets = list(self.names) if self.rng.random() < 0.15 else [self.rng.choice(self.names)]
        for name in targets:
            self.pipeline.children[name].kill()
            self.counts[f"aggregator kill ({name})"] += 1
        time.sleep(self.rng.uniform(0, 1.5))
        for name in targets:
            self.pipeline.children[name].start()

    def ingest(self) -> None:
        self.pipeline.children["ingest"].kill()
        self.counts["ingest kill"] += 1
        time.sleep(self.rng.uniform(0, 1.0))
        self.pipeline.start("ingest")

    def redis_restart(self) -> None:
        """SIGKILL (a crash) or SIGTERM (clean), then the same port and append-only file."""
        hard = self.rng.random() < 0.5
        if isinstance(self.redis_server, LocalCluster):
            node = self.rng.randrange(len(self.redis_server.ports))
            self.redis_server.restart(node, hard=hard)
        else:
            self.redis_server.restart(hard=hard)
        self.counts[f"redis restart ({'SIGKILL' if hard else 'SIGTERM'})"] += 1

    def redis_pause(self) -> None:
        server = self.redis_server
        node = self.rng.randrange(len(server.ports)) if isinstance(server, LocalCluster) else 0
        server.pause(node) if isinstance(server, LocalCluster) else server.pause()
        try:
            time.sleep(PAUSE_S)
        finally:
            server.resume(node) if isinstance(server, LocalCluster) else server.resume()
        self.counts["redis pause (SIGSTOP)"] += 1


def drain(pipeline: Pipeline, timeout: float) -> float:
    """Wait until Redis holds, for every partition, the last offset in the log."""
    started = time.monotonic()
    ends = end_offsets(pipeline.bootstrap, keys.TOPIC_EVENTS, PARTITIONS)
    names = [keys.partition_offset_key(keys.TOPIC_EVENTS, p) for p in range(PARTITIONS)]
    cluster = pipeline.env.get("CCPULSE_REDIS_CLUSTER") == "true"
    client: Any = (redis.RedisCluster if cluster else redis.Redis).from_url(
        pipeline.redis_url, socket_timeout=5
    )

    def caught_up() -> bool:
        stored = [int(v) if v is not None else -1 for v in (client.get(n) for n in names)]
        return all(s + 1 >= ends[p] for p, s in enumerate(stored))

    try:
        wait_until(caught_up, timeout, "every partition applied", every=1.0)
    finally:
        client.close()
    return time.monotonic() - started


def run(config: Config) -> Report:
    """Start everything, inject the faults, drain, compare; stops all it started by PID."""
    seed = config.seed or random.SystemRandom().randrange(1, 2**31)
    print(f"chaos: seed {seed} (rerun with --seed {seed}), {config.events} events", flush=True)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="ccpulse-chaos-") as tmp:
        workdir = config.workdir or Path(tmp)
        events = stream(config.events, seed)
        with EmbeddedBroker(workdir / "broker") as broker, _redis(config, workdir) as server:
            broker.create_topics(ALL_TOPICS, PARTITIONS, {"retention.ms": str(7 * 86400 * 1000)})
            env = CLUSTER_ENV if config.cluster else {}
            pipeline = Pipeline(
                broker.bootstrap, server.url, workdir, env, aggregators=config.aggregators
            )
            try:
                pipeline.start()
                return _drive(pipeline, server, config, events, rng, seed)
            finally:
                pipeline.stop()


@contextmanager
def _redis(config: Config, workdir: Path) -> Iterator[AofRedis | LocalCluster]:
    """One redis-server with its append-only file, or a local cluster of three (each with one)."""
    if not config.cluster:
        with AofRedis(workdir / "redis", config.fsync) as server:
            yield server
        return
    cluster = LocalCluster(workdir / "cluster", fsync=config.fsync)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def _drive(
    pipeline: Pipeline,
    redis_server: AofRedis | LocalCluster,
    config: Config,
    events: list[dict[str, Any]],
    rng: random.Random,
    seed: int,
) -> Report:
    started_s = clock.now()
    batches = [events[i : i + config.batch] for i in range(0, len(events), config.batch)]
    poster = Poster(pipeline.ingest_url, batches, config.rate)
    faults = Faults(pipeline, redis_server, rng, config.names)
    sampler = RssSampler(pipeline, ("api", *config.names))
    with Sockets(pipeline.api_port, config.stalled_ws, config.slow_ws) as sockets:
        sampler.start()
        thread = threading.Thread(target=poster.run, name="poster", daemon=True)
        thread.start()
        faults.run(faults.plan(config, len(events) / config.rate))
        thread.join(timeout=len(events) / config.rate + 600)
        for name in config.names:  # a fault may have left one down: the drain needs them
            child = pipeline.children[name]
            if child.process is None or child.process.poll() is not None:
                child.start()
        drained = drain(pipeline, config.drain_timeout)
        ws_bytes = sockets.received()
        shed = _shed(pipeline)
    sampler.stop()
    report = compare(pipeline, poster.accepted, started_s - 8 * 3600)
    report.shed = shed
    report.header = [
        f"seed {seed}; events offered {len(events)}, accepted (202) {len(poster.accepted)}, "
        f"unacknowledged {poster.unacknowledged}",
        f"requests by answer: {dict(sorted(poster.statuses.items()))}",
        f"faults: {dict(sorted(faults.counts.items()))}",
        f"kills: aggregator {sum(v for k, v in faults.counts.items() if 'aggregator' in k)}, "
        f"ingest {faults.counts['ingest kill']}",
        f"websockets: {config.stalled_ws} stalled, {config.slow_ws} slow; a reading client got "
        f"{ws_bytes} bytes; updates shed for stalled clients (/metrics): {shed}",
        f"drained {drained:.1f} s after the stream; whole run {clock.now() - started_s:.0f} s",
        *sampler.lines(),
    ]
    return report


def _shed(pipeline: Pipeline) -> int | None:
    """Updates shed for stalled clients, from /metrics; None when the api cannot answer in
    three tries (a slow scrape must not throw away a finished run's recount)."""
    for _ in range(3):
        try:
            return pipeline.metric("ccpulse_websocket_updates_shed_total")
        except httpx.HTTPError as exc:
            print(f"/metrics did not answer ({type(exc).__name__}); retrying", flush=True)
            time.sleep(5)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--kills", type=int, default=20, help="aggregator kills")
    parser.add_argument("--seed", type=int, default=0, help="0: a random seed, printed")
    parser.add_argument("--rate", type=float, default=6000.0, help="events/s offered")
    parser.add_argument("--ingest-kills", type=int, default=4)
    parser.add_argument("--redis-restarts", type=int, default=3)
    parser.add_argument("--redis-pauses", type=int, default=2)
    parser.add_argument("--fsync", choices=("always", "everysec"), default="always")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--aggregators", type=int, default=2, help="processes in the group")
    parser.add_argument("--cluster", action="store_true", help="a local Redis Cluster of three")
    args = parser.parse_args(argv)
    config = Config(
        events=args.events,
        kills=args.kills,
        seed=args.seed,
        rate=args.rate,
        batch=2000,
        ingest_kills=args.ingest_kills,
        redis_restarts=args.redis_restarts,
        redis_pauses=args.redis_pauses,
        fsync=args.fsync,
        drain_timeout=args.drain_timeout,
        aggregators=args.aggregators,
        cluster=args.cluster,
    )
    report = run(config)
    print(report.text(), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
