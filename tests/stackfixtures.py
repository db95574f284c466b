"""Session-wide embedded broker and Redis for integration and e2e tests (conftest imports these),
and `ingest`: `python -m ingest` started against that broker with a test's own settings.

One broker and one Redis per session: starting them costs a fraction of a second, but consumer
groups and topic creation are faster on a warm broker. Tests isolate themselves by flushing Redis
(`clean_redis`) and by using their own consumer group ids. `redis_cluster` starts a local Redis
Cluster (three primaries) for the tests that must also pass on one.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from redis.asyncio import Redis, RedisCluster

from ccpulse.stack import EmbeddedBroker, EmbeddedRedis, redis_binary
from services.keys import ALL_TOPICS
from tests.clock import OFFSET_S
from tests.harness import Child, Pipeline, free_port, wait_until

TEST_PARTITIONS = 6
TEST_RETENTION_MS = 7 * 24 * 3600 * 1000


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A started Tansu broker with every ccpulse topic created (6 partitions)."""
    with EmbeddedBroker(tmp_path_factory.mktemp("broker")) as broker:
        broker.create_topics(ALL_TOPICS, TEST_PARTITIONS, {"retention.ms": str(TEST_RETENTION_MS)})
        yield broker


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A fresh, non-persistent redis-server for the whole session."""
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), persistent=False) as redis:
        yield redis


Ingest = Callable[..., str]


@pytest.fixture
def ingest(embedded_broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Ingest]:
    """Start an ingest with extra `CCPULSE_*` settings; returns its base URL. Stopped by PID."""
    started: list[Child] = []

    def start(extra: dict[str, str] | None = None, expect_start: bool = True) -> str:
        port = free_port()
        env = {
            "PATH": "/usr/bin:/bin",
            "CCPULSE_KAFKA_BOOTSTRAP": embedded_broker.bootstrap,
            "CCPULSE_KAFKA_IDEMPOTENCE": "false",
            "CCPULSE_DATA_DIR": str(tmp_path),
            "CCPULSE_INGEST_PORT": str(port),
            "CCPULSE_AUTH": "off",
            "CCPULSE_CLOCK_OFFSET_SECONDS": str(OFFSET_S),  # the test's "now"
            **(extra or {}),
        }
        child = Child(f"ingest{len(started)}", "ingest", env, tmp_path / f"ingest{port}.log")
        started.append(child)
        child.start()
        if expect_start:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 200, 30, "ingest")
            return url
        assert child.process is not None
        child.process.wait(30)
        return child.log_path.read_text()

    try:
        yield start
    finally:
        for child in started:
            child.stop()


def flush_redis(redis: EmbeddedRedis) -> None:
    """FLUSHALL over a raw socket, so sync and async tests can both call it."""
    redis.flushall()


@pytest.fixture
def clean_redis(embedded_redis: EmbeddedRedis) -> EmbeddedRedis:
    """The session Redis, emptied before this test; use `.url` for clients."""
    flush_redis(embedded_redis)
    return embedded_redis


class LocalCluster:
    """A real Redis Cluster on loopback: three redis-server primaries (cluster-enabled, each in
    its own folder), joined by `redis-cli --cluster create`, stopped by PID."""

    def __init__(self, folder: Path, nodes: int = 3, fsync: str | None = None) -> None:
        self.folder = folder
        self.ports = [_cluster_port() for _ in range(nodes)]
        self.processes: list[subprocess.Popen[bytes]] = []
        self.fsync = fsync  # None: no persistence; "always"/"everysec": append-only file

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> LocalCluster:
        for port in self.ports:
            self.processes.append(self._spawn(port))
        for port in self.ports:
            wait_until(functools.partial(_ping, port), 20, f"redis-server on {port}", 0.05)
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *nodes,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_until(self._ok, 30, "cluster state ok", 0.1)
        return self

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        home = self.folder / str(port)
        home.mkdir(parents=True, exist_ok=True)
        argv = [
            redis_binary(),  # as the product picks it: 7+, past a virtualenv's 6.2
            *("--bind", "127.0.0.1", "--port", str(port), "--dir", str(home)),
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            *("--cluster-node-timeout", "2000", "--save", ""),
            *("--appendonly", "yes" if self.fsync else "no"),
            *("--appendfsync", self.fsync or "everysec"),
        ]
        log = (home / "redis.log").open("ab")
        try:
            return subprocess.Popen(argv, stdout=log, stderr=log)
        finally:
            log.close()

    def _ok(self) -> bool:
        info = subprocess.run(
            ["redis-cli", "-p", str(self.ports[0]), "cluster", "info"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        return "cluster_state:ok" in info

    def restart(self, node: int, hard: bool) -> None:
        """SIGKILL (a crash) or SIGTERM one primary, then start it again on its port and files."""
        process = self.processes[node]
        os.kill(process.pid, signal.SIGKILL if hard else signal.SIGTERM)
        process.wait(30)
        self.processes[node] = self._spawn(self.ports[node])
        wait_until(functools.partial(_ping, self.ports[node]), 30, "restarted node", 0.05)
        wait_until(self._ok, 60, "cluster state ok after a restart", 0.2)

    def pause(self, node: int) -> None:
        os.kill(self.processes[node].pid, signal.SIGSTOP)

    def resume(self, node: int) -> None:
        os.kill(self.processes[node].pid, signal.SIGCONT)

    def flushall(self) -> None:
        for port in self.ports:
            subprocess.run(
                ["redis-cli", "-p", str(port), "flushall"],
                check=True,
                capture_output=True,
                timeout=10,
            )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(5)


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too (so at most 55535)."""
    for _ in range(200):
        port = random.randrange(20000, 55000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ping(port: int) -> bool:
    done = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, timeout=5)
    return done.stdout.strip() == b"PONG"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three local primaries joined into one cluster, for the whole session."""
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.skip("redis-server and redis-cli are needed (.ci/system-deps installs them)")
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def clean_cluster(redis_cluster: LocalCluster) -> LocalCluster:
    redis_cluster.flushall()
    return redis_cluster


@pytest.fixture(name="redis", params=["single", "cluster"])
async def redis_single_and_cluster(request: pytest.FixtureRequest) -> AsyncIterator[Redis]:
    """An async client on one Redis, then on a local Redis Cluster (three primaries): tests that
    ask for `redis` after importing this run on both."""
    if request.param == "single":
        server: EmbeddedRedis = request.getfixturevalue("clean_redis")
        client = Redis.from_url(server.url)
    else:
        cluster: LocalCluster = request.getfixturevalue("clean_cluster")
        client = cast(Redis, RedisCluster.from_url(cluster.url))
    try:
        yield client
    finally:
        await client.aclose()


@contextlib.contextmanager
def embedded_pipeline(work: Path, env: dict[str, str]) -> Iterator[tuple[Pipeline, str]]:
    """The benchmarks' stack: a broker with the topics, a Redis (no persistence) and the three
    processes with `env`; yields the pipeline and the Redis URL, stops everything after."""
    with (
        EmbeddedBroker(work / "broker") as broker,
        EmbeddedRedis(work / "redis", persistent=False) as redis_server,
    ):
        broker.create_topics(ALL_TOPICS, 6, {"retention.ms": str(86400 * 1000)})
        pipeline = Pipeline(broker.bootstrap, redis_server.url, work, extra_env=env)
        pipeline.start()
        try:
            yield pipeline, redis_server.url
        finally:
            pipeline.stop()
