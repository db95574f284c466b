"""The aggregator's memory with many open contacts: RSS of the runner's process and Redis's
memory after N contacts were offered and queued and none has ended (the open-contact state the
issue sizes: 1,000,000). Runs the runner's own apply path in process on a private redis-server,
as tests/tools/bench_plan.py does; `--max-sheets` is CCPULSE_STATE_MAX_SHEETS (the hot sheets
kept in memory; the others stay in Redis). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory

from redis.asyncio import Redis

from aggregator import engine
from aggregator.runner import Runner
from ccpulse.stack import EmbeddedRedis
from services.clock import ManualClock
from services.privacy import HASH_PREFIX
from services.settings import Settings
from simulator.scenario import iso
from tests.clock import clock


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_contacts(
    count: int, partitions: int, now_s: float, fcr: bool = False, poll_size: int = 2000
) -> Iterator[dict[int, list[tuple[int, bytes]]]]:
    """Polls of `poll_size` records over all partitions, as the runner's polls are (its
    CCPULSE_MAX_POLL_RECORDS): each contact offered then queued, in the last hour; with `fcr`,
    each from a customer (pseudonymised, as ingest leaves it) about an issue, so measured FCR
    keeps a group for each."""
    offsets = [0] * partitions
    size = 0
    poll: dict[int, list[tuple[int, bytes]]] = {}
    for n in range(count):
        at = now_s - 3600 + 3600 * n / count
        contact, part = f"open-{n}", n % partitions
        base = {"contact": contact, "channel": "voice", "queue": f"q{n % 20}"}
        if fcr:
            digest = hashlib.sha256(contact.encode()).hexdigest()[:32]
            base |= {"customer": f"{HASH_PREFIX}{digest}", "issue": f"issue-{n % 12}"}
        for kind, offset_s in (("contact.offered", 0.0), ("contact.queued", 2.0)):
            event = {"id": f"{contact}-{kind}", "type": kind, "time": iso(at + offset_s), **base}
            poll.setdefault(part, []).append((offsets[part], json.dumps(event).encode()))
            offsets[part] += 1
            size += 1
        if size >= poll_size:
            yield poll
            poll, size = {}, 0
    if poll:
        yield poll


async def drive(
    url: str, polls: Iterator[dict[int, list[tuple[int, bytes]]]], partitions: int, max_sheets: int
) -> tuple[float, float, int, int]:
    redis = Redis.from_url(url)
    await redis.flushall()
    settings = Settings(redis_url=url, state_max_sheets=max_sheets)
    runner = Runner(settings, redis, clock=ManualClock(clock.now()))
    await runner._load(runner.source.topic, list(range(partitions)))
    for p in range(partitions):
        runner.source.applied[p] = -1
    started = time.monotonic()
    for poll in polls:
        decoded = {p: engine.decode(p, rows) for p, rows in poll.items()}
        await runner._apply(decoded)
    await runner._land()
    elapsed = time.monotonic() - started
    gc.collect()
    used = int((await redis.info("memory"))["used_memory"])
    hot, groups = runner.state.size, len(runner.groups)
    await runner.source.stop()  # never started, but built: close them (aiokafka warns)
    await runner.dead.stop()
    await redis.aclose()
    return elapsed, used / 2**20, hot, groups


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--max-sheets", type=int, default=Settings().state_max_sheets)
    parser.add_argument("--fcr", action="store_true", help="customers and issues: FCR groups")
    parser.add_argument("--poll", type=int, default=Settings().max_poll_records)
    args = parser.parse_args(argv)
    polls = open_contacts(args.contacts, args.partitions, clock.now(), args.fcr, args.poll)
    with (
        TemporaryDirectory() as folder,
        EmbeddedRedis(Path(folder), persistent=False).start() as server,
    ):
        before = _rss_mb()
        elapsed, redis_mb, hot, groups = asyncio.run(
            drive(server.url, polls, args.partitions, args.max_sheets)
        )
        gc.collect()
        after = _rss_mb()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.contacts:,} open contacts ({2 * args.contacts:,} events, {args.partitions} "
        f"partitions), applied in {elapsed:.0f} s; hot sheets in memory {hot:,} "
        f"(CCPULSE_STATE_MAX_SHEETS={args.max_sheets:,}); FCR groups in memory {groups:,}"
    )
    print(f"process RSS {before:.0f} MB before, {after:.0f} MB after; peak {peak:.0f} MB")
    print(f"Redis used_memory {redis_mb:.0f} MB")


if __name__ == "__main__":
    main()
