"""One Redis subscription per process fans change notices out to every websocket client.

Each client has a one-slot mailbox holding only the latest state: a slow client skips states,
it never accumulates a backlog. Snapshots are rebuilt at most once per interval. Each state is a
numbered `Frame` carrying, encoded once for all clients, both the whole document and the patch
from the state before it (`api.deltas`): a client that holds the state before gets the patch.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services import keys, tracing

from .deltas import diff

log = logging.getLogger("ccpulse.api")
TRACER = tracing.tracer("ccpulse.api")

Builder = Callable[[], Awaitable[dict[str, Any]]]
REFRESH_S = 5.0  # waits grow while nothing happens: refresh the gauges anyway


@dataclass(frozen=True)
class Frame:
    """One state of the wallboard, numbered; `patch` turns state `base` into this one."""

    seq: int
    state: dict[str, Any]  # {"data": the 15-minute document, "today": today's totals}
    base: int | None = None
    patch: str | None = None  # the `patch` message from `base`

    @cached_property
    def full(self) -> str:
        """The `update` message, encoded once when the first client asks for a whole state:
        clients that keep up take the patch, so most pushes never need it (~250 kB)."""
        return full_message("update", self.seq, self.state)


def encode(message: dict[str, Any]) -> str:
    """JSON text for the websocket (orjson: a frame is encoded in a tenth of json's time; a
    non-finite float becomes null, which the page's JSON.parse accepts, where json's NaN is not
    JSON at all)."""
    return orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS).decode()


def full_message(kind: str, seq: int, state: dict[str, Any]) -> str:
    return encode({"type": kind, "seq": seq, **state})


def patch_message(seq: int, base: int, old: dict[str, Any], new: dict[str, Any]) -> str:
    changes, removed = diff(old, new)
    message: dict[str, Any] = {"type": "patch", "seq": seq, "base": base, "set": changes}
    if removed:
        message["unset"] = removed
    return encode(message)


class Mailbox:
    """The latest message of each kind for one client, not yet sent. Kinds have their own
    slot, so an alerts message is never overwritten by the next figures update."""

    def __init__(self) -> None:
        self._latest: dict[str, str | Frame] = {}  # kind -> message, oldest kind first
        self._ready = asyncio.Event()
        self.replaced = 0  # messages overwritten before the client took them (shed load)

    def put(self, message: str | Frame, kind: str = "update") -> None:
        if kind in self._latest:
            self.replaced += 1
        self._latest[kind] = message
        self._ready.set()

    async def take(self) -> str | Frame:
        await self._ready.wait()
        message = self._latest.pop(next(iter(self._latest)))
        if not self._latest:
            self._ready.clear()
        return message


class Broadcaster:
    def __init__(
        self, redis: Redis, build: Builder, min_interval_s: float, alerts_channel: str | None = None
    ) -> None:
        self.redis = redis
        self.alerts_channel = alerts_channel  # alerter pushes, relayed to clients as they come
        self.build = build
        self.min_interval_s = min_interval_s
        self.clients: set[Mailbox] = set()
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.latest: Frame | None = None
        self._numbers = itertools.count(1)
        self.shed_total = 0
        self._traces: list[str] = []  # steps' traceparents since the last push (tracing on)

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._publish())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def number(self) -> int:
        """The next state number (a connection's own first snapshot takes one too)."""
        return next(self._numbers)

    def join(self) -> Mailbox:
        box = Mailbox()
        self.clients.add(box)
        return box

    def leave(self, box: Mailbox) -> None:
        self.shed_total += box.replaced
        self.clients.discard(box)

    async def _listen(self) -> None:
        """Subscribe once; after a Redis outage, subscribe again with a capped backoff."""
        delay = 0.5
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    extra = [self.alerts_channel] if self.alerts_channel else []
                    await pubsub.subscribe(keys.CHANGES_CHANNEL, *extra)
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._received(message)
            except (RedisError, OSError) as exc:
                log.warning("change feed lost (%s); resubscribing in %.1fs", exc, delay)
            except Exception:  # the feed must outlive any one error
                # redis-py's cluster client raised KeyError from its slot map while a primary
                # restarted (chaos): the listener died and pushes fell back to the refresh.
                log.exception("change feed failed; resubscribing in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _received(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        if self.alerts_channel is None or channel != self.alerts_channel:
            self._dirty.set()
            notice = message.get("data")  # the aggregator step's traceparent when tracing is on
            if isinstance(notice, bytes) and notice.startswith(b"00-") and tracing.enabled():
                self._traces = [*self._traces, notice.decode()][-tracing.MAX_LINKS :]
            return
        data = message.get("data")
        text = data.decode() if isinstance(data, bytes) else str(data)
        for box in list(self.clients):
            box.put(text, kind="alerts")

    async def _publish(self) -> None:
        """A change is pushed at once when the last push is an interval old, else when it is:
        pushes start at most once per interval and none waits out an interval after a build
        (the state is read when the push starts, so the build's time is not added to it)."""
        started = sent = -math.inf  # monotonic times of the last push's start and its send
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), REFRESH_S)
            await asyncio.sleep(max(0.0, started + self.min_interval_s - time.monotonic()))
            self._dirty.clear()
            if self.clients:
                started = time.monotonic()
                await self._send_update(sent + self.min_interval_s)
                sent = max(sent + self.min_interval_s, time.monotonic())

    async def _send_update(self, not_before: float) -> None:
        traces, self._traces = self._traces, []
        with TRACER.start_as_current_span(
            "wallboard push", kind=tracing.SpanKind.PRODUCER, links=tracing.links(traces)
        ) as span:
            span.set_attribute("ccpulse.websocket.clients", len(self.clients))
            await self._build_and_send(not_before)

    async def _build_and_send(self, not_before: float) -> None:
        try:
            data = await self.build()
        except (RedisError, OSError) as exc:
            log.warning("snapshot failed: %s", exc)
            return
        # A build faster than the one before must not bring two sends closer than an interval.
        await asyncio.sleep(max(0.0, not_before - time.monotonic()))
        self.latest = frame = self._frame(data, self.latest)
        for box in list(self.clients):
            box.put(frame)

    def _frame(self, state: dict[str, Any], before: Frame | None) -> Frame:
        seq = self.number()
        if before is None:
            return Frame(seq, state)
        return Frame(seq, state, before.seq, patch_message(seq, before.seq, before.state, state))
