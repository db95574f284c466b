"""The websocket's patches rebuild, state for state, the documents sent whole (real stack).

Two screens listen while simulated traffic flows: one takes patches (the default), one asks for
every state whole (`?updates=full`). Every state the first rebuilds must be exactly the full
document of the same `seq`. Its first patch is made for it alone (from its own snapshot), the
later ones are shared by every screen that kept up.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading

import websockets

from simulator import realtime
from simulator.scenario import Day, generate, iso
from tests.clock import clock
from tests.harness import Pipeline
from tests.wallboard_feed import Feed

UPDATES = 25  # per screen; the api pushes at most every 0.2 s in the harness


async def _collect(url: str, updates: int) -> tuple[Feed, dict[int, str]]:
    states: dict[int, str] = {}
    async with websockets.connect(url, max_size=None) as ws:
        feed = Feed(ws)
        for _ in range(updates * 3):  # bounded: alerts messages may come in between
            message = await feed.next(15)
            if message["type"] in ("snapshot", "update"):
                state = {"data": message["data"], "today": message["today"]}
                states[message["seq"]] = json.dumps(state, sort_keys=True)
            if len(states) > updates:
                break
    return feed, states


async def _two_screens(api: str) -> list[tuple[Feed, dict[int, str]]]:
    url = api.replace("http", "ws") + "/ws/wallboard"
    return list(
        await asyncio.gather(_collect(url, UPDATES), _collect(url + "?updates=full", UPDATES + 5))
    )


def _changed_figures(states: dict[int, str]) -> int:
    """States whose figures (not just the clock) differ from the state before."""
    docs = [json.loads(states[s]) for s in sorted(states)]
    return sum(a["data"]["channels"] != b["data"]["channels"] for a, b in itertools.pairwise(docs))


def test_patched_states_equal_the_full_documents(pipeline: Pipeline) -> None:
    now = clock.now()
    past = [e for e in generate(Day(seed=5), now - 600, 400, 0.7) if e["time"] <= iso(now)]
    pipeline.wait_applied(pipeline.post(past))
    traffic = threading.Thread(
        target=realtime.run,
        args=(pipeline.ingest_url, 3.0, 25),
        kwargs={"clock": clock, "seed": 3},
        daemon=True,
    )
    traffic.start()
    try:
        (fast, fast_states), (full, full_states) = asyncio.run(_two_screens(pipeline.api_url))
    finally:
        traffic.join(30)
    assert set(full.kinds) <= {"snapshot", "update", "alerts"}
    assert fast.kinds.count("patch") >= UPDATES and "update" not in fast.kinds
    assert _changed_figures(fast_states) >= 3, "traffic must change figures between states"
    assert fast.bases[0] == min(fast_states)  # from its own snapshot
    common = sorted(set(fast_states) & set(full_states))
    assert len(common) >= UPDATES // 2, (sorted(fast_states), sorted(full_states))
    for seq in common:
        assert fast_states[seq] == full_states[seq], f"state {seq}"
    assert fast.bytes < full.bytes / 2, (fast.bytes, full.bytes)
