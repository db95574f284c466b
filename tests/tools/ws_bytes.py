"""Bytes per wallboard screen per minute on `WS /ws/wallboard`, measured on the real stack.

Starts the embedded broker and Redis, ingest, aggregator and api (updates at most once a
second, the default), pre-loads the last 15 minutes of simulated traffic, then runs the realtime
simulator while four screens listen over the same minutes, each through its own loopback proxy
that counts the bytes the api writes to it (frames and headers, i.e. what the network carries):

  full               `?updates=full`: the whole document every update (the protocol before patches)
  full+deflate       the same with permessage-deflate (what a browser negotiates)
  patch              snapshot, then patches (the default now)
  patch+deflate      patches with permessage-deflate (what the wallboard gets now)

It also checks that the patch screens rebuild, state for state, the documents the full screens
got (same `seq`). Prints figures; asserts nothing.

    .venv/bin/python -m tests.tools.ws_bytes [--minutes 2] [--warmup 30] [--rate 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import websockets

from simulator import realtime
from simulator.scenario import Day, generate, iso
from tests.clock import clock
from tests.harness import Pipeline
from tests.stackfixtures import embedded_pipeline
from tests.wallboard_feed import Feed


@dataclass
class Screen:
    name: str
    query: str
    deflate: bool
    wire_bytes: int = 0  # api -> screen, on the socket
    messages: int = 0
    states: dict[int, str] = field(default_factory=dict)  # seq -> the state, as sorted JSON


async def _proxy(target_port: int, screen: Screen) -> asyncio.Server:
    """A loopback TCP relay that counts what the api sends."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool) -> None:
        try:
            while chunk := await reader.read(65536):
                if count:
                    screen.wire_bytes += len(chunk)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        api_r, api_w = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(client_r, api_w, False), pipe(api_r, client_w, True))

    return await asyncio.start_server(relay, "127.0.0.1", 0)


async def _listen(screen: Screen, api_port: int, seconds: float) -> None:
    server = await _proxy(api_port, screen)
    port = server.sockets[0].getsockname()[1]
    url = f"ws://127.0.0.1:{port}/ws/wallboard{screen.query}"
    compression = "deflate" if screen.deflate else None
    async with server, websockets.connect(url, compression=compression, max_size=None) as ws:
        feed = Feed(ws)
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            try:
                message = await feed.next(max(0.05, end - loop.time()))
            except TimeoutError:
                break
            screen.messages += 1
            if message.get("type") == "update":
                state = {"data": message["data"], "today": message["today"]}
                screen.states[message["seq"]] = json.dumps(state, sort_keys=True)
        server.close()


def _preload(pipeline: Pipeline, rate: float) -> int:
    """The last 15 minutes of traffic, so the document is as large as on a working floor."""
    now = clock.now()
    events = generate(Day(seed=7, prefix="warm"), now - 900, int(900 * rate), rate)
    past = [e for e in events if e["time"] <= iso(now)]
    return pipeline.post(past)


def measure(minutes: float, warmup: float, rate: float) -> list[Screen]:
    env = {"CCPULSE_WS_MIN_INTERVAL_SECONDS": "1.0"}
    with (
        tempfile.TemporaryDirectory() as tmp,
        embedded_pipeline(Path(tmp), env) as (pipeline, _),
    ):
        return _run(pipeline, minutes, warmup, rate)


def _run(pipeline: Pipeline, minutes: float, warmup: float, rate: float) -> list[Screen]:
    posted = _preload(pipeline, rate)
    pipeline.wait_applied(posted)
    seconds = minutes * 60
    sim = threading.Thread(
        target=realtime.run,
        args=(pipeline.ingest_url, rate, warmup + seconds + 5),
        kwargs={"clock": clock},
        daemon=True,
    )
    sim.start()
    time.sleep(warmup)
    screens = [
        Screen("full", "?updates=full", False),
        Screen("full+deflate", "?updates=full", True),
        Screen("patch", "", False),
        Screen("patch+deflate", "", True),
    ]

    async def all_screens() -> None:
        await asyncio.gather(*(_listen(s, pipeline.api_port, seconds) for s in screens))

    asyncio.run(all_screens())
    sim.join(warmup + seconds + 30)
    return screens


def _agree(screens: list[Screen]) -> str:
    """Patch screens' states against the full screens' documents of the same seq."""
    full = screens[0].states
    checked = mismatched = 0
    for screen in screens[2:]:
        for seq, state in screen.states.items():
            if seq in full:
                checked += 1
                mismatched += state != full[seq]
    return f"{checked} states compared with the full documents of the same seq, {mismatched} differ"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of live traffic first")
    parser.add_argument("--rate", type=float, default=1.0, help="new contacts per second")
    args = parser.parse_args()
    screens = measure(args.minutes, args.warmup, args.rate)
    print(
        f"command: python -m tests.tools.ws_bytes --minutes {args.minutes} --warmup "
        f"{args.warmup} --rate {args.rate}\nmachine: {platform.platform()}, {os.cpu_count()} cores"
    )
    size = max((len(s) for s in screens[0].states.values()), default=0)
    print(f"full document (data + today): {size:,} bytes of JSON")
    for s in screens:
        per_min = s.wire_bytes / args.minutes
        print(
            f"{s.name:14} {per_min / 1000:9.1f} kB/screen/min on the wire  "
            f"({s.messages} messages, 200 screens: {per_min * 200 / 1e6:6.2f} MB/min)"
        )
    print(_agree(screens))


if __name__ == "__main__":
    main()
