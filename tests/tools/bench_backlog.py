"""The aggregator's throughput on one pre-loaded backlog, side by side with the consumer ceiling.

One run, one backlog (simulator/scenario.py, keyed by contact as ingest keys it), one broker:
1. the ceiling: aiokafka reading every record and decoding it (orjson, then json);
2. the aggregator of another git revision (`--baseline REF`, e.g. the code before issue 18);
3. this aggregator, one process; 4. two processes (on a local Redis Cluster when one is given).
Each aggregator run starts from an empty Redis and a fresh consumer group. Figures: events/s
(steady: first to last applied event), CPU seconds per 100,000 events, ratio to the ceiling and
peak RSS. Asserts nothing: timings are not test material.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ccpulse.processes import terminate
from ccpulse.stack import EmbeddedBroker, EmbeddedRedis
from services import keys
from services.contract import ContactEvent
from simulator.scenario import Day, generate, iso
from tests.clock import clock
from tests.harness import ROOT, free_port, migrate, wait_until
from tests.stackfixtures import LocalCluster

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Figure:
    name: str
    events: int
    seconds: float
    cpu_s: float
    rss_mb: float = 0.0
    redis_calls: int = 0  # commands Redis ran, those inside scripts included
    redis_cpu_s: float = 0.0

    def line(self, ceiling: float) -> str:
        rate = self.events / self.seconds
        cpu = self.cpu_s / self.events * 100_000
        ratio = rate / ceiling if ceiling else 0.0
        rss = f"{self.rss_mb:6.0f} MB" if self.rss_mb else "       -"
        redis = ""
        if self.redis_calls:
            per = self.redis_calls / self.events
            redis = f"  redis {per:5.1f} ops/ev {self.redis_cpu_s / self.events * 1e5:5.2f} s/100k"
        return (
            f"{self.name:<34} {rate:>10,.0f} ev/s  {cpu:6.2f} cpu-s/100k  {ratio:5.2f}x  "
            f"{rss}{redis}"
        )


def backlog(count: int, seed: int = 7, agents: int = 40) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs of `count` past events, keyed and written as ingest writes them
    (`ContactEvent.to_wire`: compact JSON, microsecond times)."""
    now = clock.now()
    day = Day(seed=seed, agents=agents, customers=count // 20, prefix="bb")
    events = generate(day, now - 10 * 3600, count // 6, count / 6 / (10 * 3600))
    events = [e for e in events if e["time"] <= iso(now - 1)][:count]
    return [(key_of(e), ContactEvent.model_validate(e).to_wire()) for e in events]


def key_of(event: dict[str, Any]) -> bytes:
    return str(event.get("contact") or event.get("agent") or event["id"]).encode()


async def produce(bootstrap: str, pairs: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for start in range(0, len(pairs), 5000):
            futures = [
                await producer.send(keys.TOPIC_EVENTS, v, key=k)
                for k, v in pairs[start : start + 5000]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def ceiling(bootstrap: str, expect: int, decode: Callable[[bytes], Any], name: str) -> Figure:
    """aiokafka reading the whole topic with a fresh group, decoding every record."""
    consumer = AIOKafkaConsumer(
        keys.TOPIC_EVENTS,
        bootstrap_servers=bootstrap,
        group_id=f"bench-ceiling-{time.monotonic_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    await consumer.start()
    seen = 0
    started, cpu = time.perf_counter(), time.process_time()
    try:
        while seen < expect and time.perf_counter() - started < 300:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batch.values():
                for record in records:
                    decode(record.value or b"{}")
                seen += sum(len(r) for r in batch.values())
    finally:
        elapsed, used = time.perf_counter() - started, time.process_time() - cpu
        await consumer.stop()
    return Figure(name, seen, elapsed, used)


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def aggregators(
    name: str,
    env: dict[str, str],
    cwd: Path,
    count: int,
    expect: int,
    url: str,
    logs: Path,
    group: str | None = None,
) -> Figure:
    """Start `count` aggregator processes on an empty Redis; time them through the backlog."""
    client = _client(url, env)
    client.flushall()
    client.config_resetstat()
    group = group or f"bench-agg-{time.monotonic_ns()}"
    env = {**env, "CCPULSE_CONSUMER_GROUP": group}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(count):
            log = (logs / f"{name.split()[0]}-{n}.log").open("ab")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "aggregator"], cwd=cwd, env=env, stdout=log, stderr=log
                )
            )
            log.close()
        first = _wait_applied(client, 1, 120)
        started, base = time.perf_counter(), first
        cpu0 = sum(_proc_cpu_s(p.pid) for p in procs)
        last = _wait_applied(client, expect, 900)
        elapsed = time.perf_counter() - started
        cpu = sum(_proc_cpu_s(p.pid) for p in procs) - cpu0
        rss = max(_proc_rss_mb(p.pid) for p in procs)
        calls, usec = _redis_work(client)
        return Figure(name, last - base, elapsed, cpu, rss, calls, usec / 1e6)
    finally:
        for p in procs:
            terminate(p, 15)
        client.close()


def _client(url: str, env: dict[str, str]) -> Any:
    if env.get("CCPULSE_REDIS_CLUSTER", "").lower() == "true":
        return redis.RedisCluster.from_url(url)
    return redis.Redis.from_url(url)


def _redis_work(client: Any) -> tuple[int, int]:
    """Commands and microseconds Redis spent since the flush (the whole run, start included)."""
    stats = client.info("commandstats")
    rows = stats.values() if isinstance(stats, dict) else []
    rows = [r for r in rows if isinstance(r, dict) and "calls" in r]
    return sum(int(r["calls"]) for r in rows), sum(int(r["usec"]) for r in rows)


def applied(client: Any) -> int:
    """Records the aggregators consumed (applied or dead-lettered), over every partition."""
    partitions = int(client.get(keys.PARTITIONS) or 0)
    names = [keys.STATS]  # where aggregators before v2 counted (a --baseline run)
    names += [keys.partition_stats_key(partition) for partition in range(partitions)]
    total = 0
    for name in names:
        stats = client.hgetall(name)
        total += int(stats.get(b"events_applied", 0)) + int(stats.get(b"dead_letters", 0))
    return total


def _wait_applied(client: Any, target: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = applied(client)
        if value >= target:
            return value
        time.sleep(0.02)
    raise AssertionError(f"aggregators applied {applied(client)} of {target} in {timeout}s")


@contextmanager
def trickle(
    env: dict[str, str], group: str, bootstrap: str, held: list[tuple[bytes, bytes]], rate: int
) -> Iterator[None]:
    """While the reads are timed: an aggregator of the same group applies `held` (the backlog's
    latest events, kept back) produced at `rate` events/s, so every read finds the state changed
    since the one before (as under live traffic) instead of a still state."""
    log = (Path(env["CCPULSE_DATA_DIR"]) / "trickle-aggregator.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator"],
        cwd=ROOT,
        env={**env, "CCPULSE_CONSUMER_GROUP": group},
        stdout=log,
        stderr=log,
    )
    log.close()
    stop = threading.Event()

    def produce_slowly() -> None:
        async def go() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
            await producer.start()
            try:
                for start in range(0, len(held), max(1, rate // 10)):
                    if stop.is_set():
                        break
                    for key, value in held[start : start + max(1, rate // 10)]:
                        await producer.send(keys.TOPIC_EVENTS, value, key=key)
                    await asyncio.sleep(0.1)
            finally:
                await producer.stop()

        asyncio.run(go())

    thread = threading.Thread(target=produce_slowly, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        terminate(proc, 15)


def read_latency(
    env: dict[str, str],
    work: Path,
    requests: int = 200,
    cwd: Path = ROOT,
    python: str = sys.executable,
) -> list[str]:
    """p50/p99 of GET /api/v1/live (15m and today) and /metrics on what the last run wrote,
    served by the api in `cwd` (this tree, or a --baseline revision) run by `python`."""
    port = free_port()
    log = (work / "api.log").open("ab")
    api = subprocess.Popen(
        [python, "-m", "api"],
        cwd=cwd,
        stdout=log,
        stderr=log,
        env={**env, "CCPULSE_API_PORT": str(port)},
    )
    log.close()
    lines = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_until(lambda: client.get("/healthz").status_code == 200, 60, "api")
            for path in ("/api/v1/live?window=15m", "/api/v1/live?window=today", "/metrics"):
                client.get(path).raise_for_status()  # warm
                times: list[float] = []
                until = time.monotonic() + 20  # bounded: slow reads give fewer samples
                while len(times) < requests and time.monotonic() < until:
                    started = time.perf_counter()
                    client.get(path).raise_for_status()
                    times.append((time.perf_counter() - started) * 1000)
                times.sort()
                p50, p99 = statistics.median(times), times[max(0, int(len(times) * 0.99) - 1)]
                count = len(times)
                lines.append(f"GET {path:<28} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  ({count})")
    finally:
        terminate(api, 15)
    return lines


@contextmanager
def _cluster(folder: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(folder)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@contextmanager
def revision(ref: str, parts: tuple[str, ...] = ("aggregator", "services")) -> Iterator[Path]:
    """Parts (the aggregator and services) of another git revision, in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="ccpulse-baseline-") as tmp:
        archive = subprocess.run(
            ["git", "archive", ref, *parts],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)


def base_env(bootstrap: str, url: str, work: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")},
        "CCPULSE_KAFKA_BOOTSTRAP": bootstrap,
        "CCPULSE_KAFKA_IDEMPOTENCE": "false",
        "CCPULSE_REDIS_URL": url,
        "CCPULSE_DATABASE_URL": f"sqlite+aiosqlite:///{work}/history.db",
        "CCPULSE_DATA_DIR": str(work),
        "CCPULSE_AUTH": "off",
        "CCPULSE_LOG_LEVEL": "WARNING",
    }


API_PARTS = ("api", "services", "web/basic.html")  # what `python -m api` needs to serve reads


def run(
    events: int,
    partitions: int,
    baseline: str | None,
    cluster: bool,
    agents: int = 40,
    reads_only: bool = False,
    baseline_python: str = sys.executable,
    trickle_rate: int = 0,
    settings: dict[str, str] | None = None,
) -> None:
    print(
        f"backlog: {events:,} events (simulator/scenario.py, keyed by contact), "
        f"{partitions} partitions, {agents} agents"
    )
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        broker = stack.enter_context(EmbeddedBroker(work / "broker"))
        server = stack.enter_context(EmbeddedRedis(work / "redis", persistent=False))
        broker.create_topics(keys.ALL_TOPICS, partitions, {"retention.ms": str(86400 * 1000)})
        pairs = backlog(events, agents=agents)
        held: list[tuple[bytes, bytes]] = []
        if reads_only and trickle_rate:  # the latest events wait for the reads (`trickle`)
            pairs, held = pairs[: -trickle_rate * 150], pairs[-trickle_rate * 150 :]
        asyncio.run(produce(broker.bootstrap, pairs))
        env = {**base_env(broker.bootstrap, server.url, work), **(settings or {})}
        migrate(env, work)
        n = len(pairs)
        if reads_only:  # one aggregator builds the state, then only the reads are timed
            group = f"bench-agg-{time.monotonic_ns()}"
            aggregators("aggregator, 1 process", env, ROOT, 1, n, server.url, work, group)
            if held:
                print(f"reads while {len(held):,} more events arrive at {trickle_rate}/s")
                stack.enter_context(trickle(env, group, broker.bootstrap, held, trickle_rate))
            if baseline:  # the api of another revision first, on the same state
                code = stack.enter_context(revision(baseline, API_PARTS))
                print(f"api @{baseline} ({baseline_python}):")
                for line in read_latency(env, work, cwd=code, python=baseline_python):
                    print(f"  {line}")
                print("api, this tree:")
            for line in read_latency(env, work):
                print(f"  {line}")
            return
        figures = [
            asyncio.run(ceiling(broker.bootstrap, n, orjson.loads, "ceiling: aiokafka + orjson")),
            asyncio.run(ceiling(broker.bootstrap, n, json.loads, "ceiling: aiokafka + json")),
        ]
        if baseline:
            code = stack.enter_context(revision(baseline))
            figures.append(
                aggregators(f"aggregator @{baseline}, 1 process", env, code, 1, n, server.url, work)
            )
        figures.append(aggregators("aggregator, 1 process", env, ROOT, 1, n, server.url, work))
        figures.append(aggregators("aggregator, 2 processes", env, ROOT, 2, n, server.url, work))
        if cluster:
            nodes = stack.enter_context(_cluster(work / "cluster"))
            cluster_url = nodes.url
            cenv = {
                **env,
                "CCPULSE_REDIS_URL": cluster_url,
                "CCPULSE_REDIS_CLUSTER": "true",
            }
            figures.append(
                aggregators("aggregator, 2 processes, cluster", cenv, ROOT, 2, n, cluster_url, work)
            )
        top = figures[0].events / figures[0].seconds
        for figure in figures:
            print(figure.line(top))
        for line in read_latency(env, work):  # what the last single-Redis run wrote
            print(line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--baseline", default=None, help="git revision to compare against")
    parser.add_argument("--cluster", action="store_true", help="also 2 processes on a cluster")
    parser.add_argument(
        "--reads-only",
        action="store_true",
        help="time the api's reads only (with --baseline: that revision's api first, same state)",
    )
    parser.add_argument(
        "--baseline-python",
        default=sys.executable,
        help="the Python that runs the --baseline api (e.g. a venv with that revision's lock)",
    )
    parser.add_argument(
        "--trickle",
        type=int,
        default=0,
        help="with --reads-only: events/s applied while reading (the backlog's latest ones)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="CCPULSE_NAME=VALUE",
        help="a setting for every aggregator and api run (repeatable)",
    )
    args = parser.parse_args(argv)
    run(
        args.events,
        args.partitions,
        args.baseline,
        args.cluster,
        args.agents,
        args.reads_only,
        args.baseline_python,
        args.trickle,
        dict(item.split("=", 1) for item in args.set),
    )


if __name__ == "__main__":
    main()
