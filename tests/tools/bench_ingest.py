"""`make bench` (ingest part): webhooks per ingest process, beside a bare FastAPI + aiokafka app.

One embedded broker, one ingest process (`python -m ingest`, as tests/harness.py starts it) and
one reference process (a minimal FastAPI app in this file that answers 202 after the broker's
ack), each on loopback, measured the same way with wrk:
(a) single-event POSTs over 64 connections: requests/s, p50/p99 latency;
(b) batches of 1,000 events from a few connections: events/s.
After each run the topic's end offsets must have grown by at least the events answered 202 (a
202 means the broker acknowledged). Prints figures and CPU seconds of the server process; asserts
nothing. Every loop is bounded by a duration; every process started here is stopped by PID.

    python -m tests.tools.bench_ingest [--duration 10] [--rounds 2] [--connections 64] [--batch 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer, TopicPartition
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from aggregator import topic_reading
from ccpulse.stack import EmbeddedBroker
from services import keys
from services.keys import ALL_TOPICS
from services.settings import Settings
from tests.clock import clock
from tests.harness import Child, free_port, wait_until

PARTITIONS = 6
REFERENCE_TOPIC = "bench.reference"
BATCH_EVENTS = 1000
NAMES = ("ccpulse", "reference")
WRK_THREADS = 2

# One webhook per request; wrk fills in a unique id per thread and request.
SINGLE_SCRIPT = """
local n = 0
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end
request = function()
  n = n + 1
  local body = string.format(TEMPLATE, tid, n, n %% 5000, n %% 20000)
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json"}, body)
end
""".replace("TEMPLATE", "[[%s]]")

BATCH_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("%s", "rb"))
wrk.body = f:read("*a")
f:close()
"""

# Printed by wrk at the end: figures as one JSON line (latency in microseconds).
DONE_SCRIPT = """
function done(summary, latency, requests)
  io.write(string.format(
    '\\nBENCH {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def event_template(when: float) -> str:
    """A contact.offered webhook as a Lua format string: id, contact and customer vary."""
    stamp = datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")
    return json.dumps(
        {
            "id": "b%d-%d",
            "type": "contact.offered",
            "time": stamp,
            "contact": "c%d",
            "channel": "voice",
            "queue": "support",
            "customer": "cust-%d",
        },
        separators=(",", ":"),
    )


def batch_body(when: float) -> bytes:
    stamp = datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")
    events = [
        {
            "id": f"batch-{i}",
            "type": "contact.offered",
            "time": stamp,
            "contact": f"c{i}",
            "channel": "voice",
            "queue": "support",
            "customer": f"cust-{i}",
        }
        for i in range(BATCH_EVENTS)
    ]
    return json.dumps(events, separators=(",", ":")).encode()


# --- the reference: a bare FastAPI + aiokafka app answering after the broker's ack -------------


def reference_app(bootstrap: str, topic: str) -> FastAPI:
    producers: list[AIOKafkaProducer] = []  # made inside the server's event loop

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
        await producer.start()
        producers.append(producer)
        yield
        await producer.stop()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/events", status_code=202)
    async def post_events(request: Request) -> JSONResponse:
        value = json.loads(await request.body())
        items = value if isinstance(value, list) else [value]
        producer = producers[0]
        futures = [
            await producer.send(topic, json.dumps(i).encode(), key=str(i.get("contact")).encode())
            for i in items
        ]
        await asyncio.gather(*futures)
        return JSONResponse({"accepted": len(items)}, status_code=202)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve_reference(port: int, bootstrap: str) -> None:
    app = reference_app(bootstrap, REFERENCE_TOPIC)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    topic: str
    pid: int


@dataclass
class Result:
    requests: int
    seconds: float
    status_errors: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    cpu_s: float
    acked: int  # records the topic grew by during the run

    @property
    def rate(self) -> float:
        """Requests answered 2xx per second: refusals do not count."""
        return (self.requests - self.status_errors) / self.seconds


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (utime and stime are fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def end_offsets(bootstrap: str, topic: str) -> int:
    """Records written to a topic so far (the sum of its partitions' log ends, as a fetch
    reports them: the embedded broker lists less, aggregator.topic_reading)."""
    tps = {TopicPartition(topic, p): 0 for p in range(PARTITIONS)}
    return sum(
        asyncio.run(topic_reading.log_ends(Settings(kafka_bootstrap=bootstrap), tps)).values()
    )


def settled_offsets(bootstrap: str, topic: str, timeout: float = 15) -> int:
    """End offsets once they stop moving: the broker may show the last writes a moment late."""
    last = end_offsets(bootstrap, topic)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = end_offsets(bootstrap, topic)
        if now == last:
            break
        last = now
    return last


def wrk(url: str, script: Path, connections: int, seconds: float) -> dict[str, int]:
    argv = ["wrk", f"-t{min(WRK_THREADS, connections)}", f"-c{connections}", f"-d{seconds:g}s"]
    argv += ["--timeout", "10s", "-s", str(script), url + "/v1/events"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    found = re.search(r"^BENCH (\{.*\})$", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no figures: {done.stdout}\n{done.stderr}")
    figures: dict[str, int] = json.loads(found.group(1))
    return figures


def measure(
    server: Server, bootstrap: str, script: Path, connections: int, seconds: float
) -> Result:
    before_offsets = settled_offsets(bootstrap, server.topic)
    before_cpu = cpu_seconds(server.pid)
    figures = wrk(server.url, script, connections, seconds)
    cpu = cpu_seconds(server.pid) - before_cpu
    acked = settled_offsets(bootstrap, server.topic) - before_offsets
    return Result(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        status_errors=figures["status_errors"],
        socket_errors=figures["socket_errors"],
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        cpu_s=cpu,
        acked=acked,
    )


def check_acked(result: Result, events_per_request: int) -> str:
    """Every 202 must be backed by records in the topic; wrk may also cut requests in flight."""
    answered = (result.requests - result.status_errors) * events_per_request
    errors = f", {result.status_errors} non-2xx" if result.status_errors else ""
    errors += f", {result.socket_errors} socket errors" if result.socket_errors else ""
    verdict = "ok" if result.acked >= answered else "MISSING RECORDS"
    return f"acked {result.acked:,} >= answered {answered:,}: {verdict}{errors}"


# --- processes ----------------------------------------------------------------------------------


@contextmanager
def started(child: Child, url: str) -> Iterator[int]:
    child.start()
    assert child.process is not None
    try:
        wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 200, 30, child.name)
        yield child.process.pid
    finally:
        child.stop()


def ingest_child(bootstrap: str, work: Path, port: int) -> Child:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")},
        "CCPULSE_KAFKA_BOOTSTRAP": bootstrap,
        "CCPULSE_KAFKA_IDEMPOTENCE": "false",
        "CCPULSE_INGEST_PORT": str(port),
        "CCPULSE_AUTH": "off",  # loopback only
        "CCPULSE_DATA_DIR": str(work),
        # the per-source rate limit would refuse a load generator: out of the way here
        "CCPULSE_INGEST_RATE_PER_SECOND": "1000000000",
        "CCPULSE_INGEST_BURST": "1000000000",
    }
    return Child("ingest", "ingest", env, work / "ingest.log")


def reference_child(bootstrap: str, work: Path, port: int) -> Child:
    env = {**os.environ, "BENCH_REFERENCE_PORT": str(port), "BENCH_BOOTSTRAP": bootstrap}
    return Child("reference", "tests.tools.bench_ingest", env, work / "reference.log")


def cpu_us(result: Result, per_request: int) -> float:
    """CPU microseconds of the server process per event: a figure other load barely moves."""
    return result.cpu_s / max(1, result.requests * per_request) * 1e6


def report(label: str, result: Result, per_request: int) -> None:
    print(
        f"  {label:<10} {result.rate:9,.0f} req/s {result.rate * per_request:10,.0f} events/s  "
        f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  "
        f"CPU {cpu_us(result, per_request):6.1f} us/event  ({check_acked(result, per_request)})"
    )


def summary(results: dict[tuple[str, str], list[Result]], rounds: int) -> None:
    for kind, per_request, unit in (("single", 1, "req/s"), ("batch", BATCH_EVENTS, "events/s")):
        best = {name: max(r.rate * per_request for r in results[kind, name]) for name in NAMES}
        cpu = {name: min(cpu_us(r, per_request) for r in results[kind, name]) for name in NAMES}
        ours, theirs = best["ccpulse"], best["reference"]
        print(
            f"{kind}: ccpulse {ours:,.0f} {unit}, reference {theirs:,.0f} {unit}, ratio "
            f"ccpulse/reference {ours / theirs:.2f} (best of {rounds}); CPU per event: ccpulse "
            f"{cpu['ccpulse']:.1f} us, reference {cpu['reference']:.1f} us, i.e. at most "
            f"{1e6 / cpu['ccpulse']:,.0f} and {1e6 / cpu['reference']:,.0f} events/s per core"
        )


def measure_all(
    servers: list[Server], bootstrap: str, scripts: tuple[Path, Path], args: argparse.Namespace
) -> dict[tuple[str, str], list[Result]]:
    """Rounds of (single events, then batches), each measured on both servers in turn."""
    single, batch = scripts
    for server in servers:  # warm-up: producers connected, code paths loaded
        measure(server, bootstrap, single, args.connections, 2)
    results: dict[tuple[str, str], list[Result]] = {}
    for number in range(1, args.rounds + 1):
        print(f"round {number}: single events, {args.connections} connections")
        for server in servers:
            result = measure(server, bootstrap, single, args.connections, args.duration)
            results.setdefault(("single", server.name), []).append(result)
            report(server.name, result, 1)
        print(f"round {number}: batches of {BATCH_EVENTS} events, {args.batch} connections")
        for server in servers:
            result = measure(server, bootstrap, batch, args.batch, args.duration)
            results.setdefault(("batch", server.name), []).append(result)
            report(server.name, result, BATCH_EVENTS)
    return results


def run(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")
    print(
        f"command: python -m tests.tools.bench_ingest --duration {args.duration:g} "
        f"--rounds {args.rounds} --connections {args.connections} --batch {args.batch}\n"
        f"machine: {platform.platform()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load now {os.getloadavg()[0]:.1f}; "
        f"load generator: wrk, {WRK_THREADS} threads; broker: embedded (Tansu)"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp,
        EmbeddedBroker(Path(tmp) / "broker") as broker,
    ):
        work = Path(tmp)
        broker.create_topics([*ALL_TOPICS, REFERENCE_TOPIC], PARTITIONS)
        when = clock.now() - 60
        single = work / "single.lua"
        single.write_text(SINGLE_SCRIPT % event_template(when) + DONE_SCRIPT)
        body = work / "batch.json"
        body.write_bytes(batch_body(when))
        batch = work / "batch.lua"
        batch.write_text(BATCH_SCRIPT % body + DONE_SCRIPT)
        ingest_port, reference_port = free_port(), free_port()
        ingest_url = f"http://127.0.0.1:{ingest_port}"
        reference_url = f"http://127.0.0.1:{reference_port}"
        with (
            started(ingest_child(broker.bootstrap, work, ingest_port), ingest_url) as ingest_pid,
            started(reference_child(broker.bootstrap, work, reference_port), reference_url) as ref,
        ):
            servers = [
                Server("ccpulse", ingest_url, keys.TOPIC_EVENTS, ingest_pid),
                Server("reference", reference_url, REFERENCE_TOPIC, ref),
            ]
            results = measure_all(servers, broker.bootstrap, (single, batch), args)
    summary(results, args.rounds)


def main() -> None:
    if "BENCH_REFERENCE_PORT" in os.environ:  # started by run() as the reference process
        serve_reference(int(os.environ["BENCH_REFERENCE_PORT"]), os.environ["BENCH_BOOTSTRAP"])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4, help="connections posting batches")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
