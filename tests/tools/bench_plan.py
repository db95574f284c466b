"""The aggregator's per-event cost without the broker: the runner's own apply path, in process.

Feeds a simulated backlog (tests/tools/bench_backlog.py's, keyed by contact) to a `Runner` on
a real, private redis-server, batch by batch as polls would deliver it, and prints the CPU
seconds per 100,000 events split into decoding, planning and Redis's apply, and Redis's own
time in the steps' scripts. Side by side: the
same records decoded only (the consumer ceiling's per-record work). `--profile` prints the
hottest functions. The collector is tuned as `python -m aggregator` tunes it (`tune_gc`;
`--default-gc` keeps CPython's thresholds, about a third more CPU per event on this path).
Asserts nothing: timings are not test material.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
import zlib
from collections import defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory

import orjson
from redis.asyncio import Redis

from aggregator import engine
from aggregator.__main__ import tune_gc
from aggregator.runner import Runner
from ccpulse.stack import EmbeddedRedis
from services.clock import ManualClock
from services.settings import Settings
from tests.clock import clock
from tests.tools.bench_backlog import backlog


def partitioned(
    pairs: list[tuple[bytes, bytes]], partitions: int, batch: int
) -> list[dict[int, list[tuple[int, bytes]]]]:
    """Polls of up to `batch` records per partition, in produce order within a partition."""
    rows: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for key, value in pairs:
        part = zlib.crc32(key) % partitions
        rows[part].append((len(rows[part]), value))
    polls = []
    for start in range(0, max(len(r) for r in rows.values()), batch):
        polls.append({p: r[start : start + batch] for p, r in rows.items() if r[start:]})
    return polls


async def drive(
    url: str, polls: list[dict[int, list[tuple[int, bytes]]]], partitions: int
) -> dict[str, float]:
    redis = Redis.from_url(url)
    await redis.flushall()
    settings = Settings(redis_url=url)
    runner = Runner(settings, redis, clock=ManualClock(clock.now()))
    await runner._load(runner.source.topic, list(range(partitions)))
    for p in range(partitions):
        runner.source.applied[p] = -1
    decode_s = apply_s = 0.0
    started = time.process_time()
    for poll in polls:
        t0 = time.process_time()
        decoded = {p: engine.decode(p, rows) for p, rows in poll.items()}
        t1 = time.process_time()
        decode_s += t1 - t0
        await runner._apply(decoded)
        apply_s += time.process_time() - t1
    await runner._land()
    total = time.process_time() - started
    stats = await redis.info("commandstats")
    await runner.source.stop()  # never started, but built: close them (aiokafka warns)
    await runner.dead.stop()
    await redis.aclose()
    scripts = sum(s["usec"] for name, s in stats.items() if name.startswith("cmdstat_eval"))
    calls = sum(s["calls"] for name, s in stats.items() if not name.startswith("cmdstat_eval"))
    return {
        "decode": decode_s,
        "plan+apply": apply_s,
        "total": total,
        "redis scripts": scripts / 1e6,
        "redis commands": calls,
        **{
            f"cmd {name[8:]}": (s["calls"], s["usec"])
            for name, s in stats.items()
            if not name.startswith("cmdstat_eval")
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=90_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--batch", type=int, default=170)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--commands", action="store_true", help="Redis's time per command")
    parser.add_argument("--default-gc", action="store_true", help="CPython's GC thresholds")
    args = parser.parse_args(argv)
    pairs = backlog(args.events)
    polls = partitioned(pairs, args.partitions, args.batch)
    t0 = time.process_time()
    for _, value in pairs:
        orjson.loads(value)
    ceiling = time.process_time() - t0
    if not args.default_gc:
        tune_gc()
    with (
        TemporaryDirectory() as folder,
        EmbeddedRedis(Path(folder), persistent=False).start() as server,
    ):
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        figures = asyncio.run(drive(server.url, polls, args.partitions))
        if profiler:
            profiler.disable()
    n = len(pairs)
    gc_name = "CPython's GC" if args.default_gc else "the aggregator's GC"
    print(f"{n:,} events, {args.partitions} partitions, polls of {args.batch}, {gc_name}")
    print(f"{'orjson.loads only (ceiling work)':<34} {ceiling / n * 1e6:7.1f} us/event CPU")
    for name in ("decode", "plan+apply", "total"):
        print(f"{'aggregator ' + name:<34} {figures[name] / n * 1e6:7.1f} us/event CPU")
    # Redis's side of the same steps, from INFO commandstats: the scripts' time (what they
    # run inside included), and the commands they ran per event.
    print(f"{'redis scripts':<34} {figures['redis scripts'] / n * 1e6:7.1f} us/event")
    print(f"{'redis commands in scripts':<34} {figures['redis commands'] / n:7.1f} per event")
    if args.commands:
        rows = sorted(
            ((k[4:], v) for k, v in figures.items() if k.startswith("cmd ")),
            key=lambda kv: -kv[1][1],
        )
        for name, (calls, usec) in rows:
            print(f"  {name:<20} {calls / n:6.2f} calls/event {usec / n:6.2f} us/event")
    if profiler:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
