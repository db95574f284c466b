"""The wallboard rebuilds, from the snapshot and the patches, exactly the state a full document
carries: after several updates the page's state equals the `?updates=full` message of the same
`seq`, and its figures equal /api/v1/live. A page that misses a patch (dropped on the way by a
relay between the page and the real api) notices the gap and starts over from a snapshot."""

from __future__ import annotations

import functools
import json
import re
import threading
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from services import keys, kpis

from . import floor
from .conftest import Feed, LiveApi
from .helpers import agree, open_wallboard, wait_for

pytestmark = pytest.mark.browser

UPDATES = 8


class FullScreen:
    """A screen that takes every state whole, in a thread (seq -> frame)."""

    def __init__(self, api: LiveApi) -> None:
        ticket = httpx.post(
            f"{api.url}/api/v1/ws-ticket",
            headers={"Authorization": f"Bearer {api.viewer_key}"},
            timeout=10,
        ).json()["ticket"]
        self.url = f"{api.url.replace('http', 'ws')}/ws/wallboard?ticket={ticket}&updates=full"
        self.frames: dict[int, dict[str, Any]] = {}
        self.error = ""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            with connect(self.url, max_size=None) as ws:
                for _ in range(10_000):  # bounded
                    if self.stop.is_set():
                        return
                    try:
                        message = json.loads(ws.recv(timeout=0.5))
                    except TimeoutError:
                        continue
                    if message.get("type") in ("snapshot", "update"):
                        frame = {"data": message["data"], "today": message["today"]}
                        self.frames[message["seq"]] = frame
        except Exception as exc:  # for the test's message
            self.error = repr(exc)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def page_state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(page.evaluate("window.ccpulseState()"))
    return state


def seq_moved(page: Any, before: int | None) -> bool:
    return page_state(page)["seq"] not in (before, None)


def state_also_sent_whole(page: Any, full: FullScreen) -> dict[str, Any] | None:
    """The page's state once the full screen has the document of the same seq."""
    state = page_state(page)
    return state if state["seq"] in full.frames else None


def change_figures(feed: Feed, n: int, late_at: int) -> None:
    """New figures; from update `late_at` on, a queue the page has not seen (new keys)."""
    queue = "voice:sales" if n < late_at else "chat:chat-late"
    channel, name = queue.split(":")
    feed.counters(keys.queue_scope(channel, name), {kpis.OFFERED: 1, kpis.QUEUED: 1})
    feed.counters(keys.channel_scope(channel), {kpis.OFFERED: 1, kpis.QUEUED: 1})
    feed.publish()


def test_page_state_after_patches_equals_the_full_document(
    live_api: LiveApi, feed: Feed, page_factory: Any
) -> None:
    floor.seed(feed)
    full = FullScreen(live_api)
    try:
        page = page_factory(1366, 768)
        open_wallboard(page, live_api)
        for n in range(UPDATES):
            before = page_state(page)["seq"]
            change_figures(feed, n, UPDATES // 2)
            wait_for(functools.partial(seq_moved, page, before), 10, "the next state")
        state = wait_for(
            lambda: state_also_sent_whole(page, full),
            10,
            f"the same state whole ({sorted(full.frames)} {full.error})",
        )
        assert state["frame"]["data"]["queues"].get("chat-late"), "the late queue came by patch"
        # Compared as values: the page writes 200.0 as 200, as JSON allows.
        assert state["frame"] == full.frames[state["seq"]]
        wait_for(lambda: agree(page, live_api), 15, "page figures equal to /api/v1/live")
        assert page.errors == []
    finally:
        full.close()


def test_a_page_that_misses_a_patch_starts_over_from_a_snapshot(
    live_api: LiveApi, feed: Feed, page_factory: Any
) -> None:
    floor.seed(feed)
    seen = {"connections": 0, "patches": 0, "dropped": 0, "snapshots": 0}

    def relay(route: Any) -> None:
        server = route.connect_to_server()
        seen["connections"] += 1

        def from_api(message: str | bytes) -> None:
            kind = json.loads(message).get("type")
            seen["snapshots"] += kind == "snapshot"
            if kind == "patch":
                seen["patches"] += 1
                if seen["patches"] == 3 and not seen["dropped"]:
                    seen["dropped"] = 1
                    return  # lost on the way: the next patch names a state the page lacks
            route.send(message)

        server.on_message(from_api)

    full = FullScreen(live_api)
    try:
        page = page_factory(1366, 768)
        page.route_web_socket(re.compile(r"/ws/wallboard"), relay)
        open_wallboard(page, live_api)
        for n in range(UPDATES):
            before = page_state(page)["seq"]
            change_figures(feed, n, 2)
            wait_for(functools.partial(seq_moved, page, before), 10, "the next state")
        assert seen["dropped"] == 1 and seen["connections"] == 2 and seen["snapshots"] == 2, seen
        state = wait_for(lambda: state_also_sent_whole(page, full), 10, "the same state whole")
        assert state["frame"] == full.frames[state["seq"]]
        assert state["frame"]["data"]["queues"].get("chat-late")
        wait_for(lambda: agree(page, live_api), 15, "page figures equal to /api/v1/live")
        assert page.errors == []
    finally:
        full.close()
