"""One document per query, state version and tick, computed once and shared by every request.

Requests and websocket pushes asking the same question (`/live?window=today`, `/metrics`, the
wallboard's frame) at the same time used to compute it each on its own. Here the first one
computes; the others, concurrent or later, get the same document while the state it was read from
is unchanged and it is at most a tick (a second) old: its time-dependent figures (waits, time in
state, `as_of`) are as of the instant it was computed, its counts are exactly the state's. The
state's version is every partition's applied offset with its epoch (`keys.partition_epoch_key`),
read in one round trip per request: a step applied after a document was computed changes the
version, so no request is ever served figures that miss an event the aggregator had applied when
the request came. State without epochs (written by something other than the aggregator's step)
is never shared.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis, RedisCluster

from services import keys

T = TypeVar("T")
TICK_S = 1.0  # a document's time-dependent figures (waits, time in state) are as of its tick
MAX_QUERIES = 64  # distinct queries kept (windows, overrides, ranges): bounded memory

Version = tuple[Any, ...]


@dataclass(slots=True)
class Entry:
    version: Version
    now_s: float  # the instant the document is computed as of
    task: asyncio.Task[Any]
    previous: Entry | None = None  # served while this one computes, if recent enough


class SharedReads:
    def __init__(self, redis: Redis, topic: str, tick_s: float = TICK_S):
        self.redis = redis
        self.topic = topic  # the events topic's name in this installation (its offsets' keys)
        self.tick_s = tick_s
        # a cluster's MGET reads one slot: there, one GET per key in a pipeline
        self.cluster = isinstance(redis, RedisCluster)
        self._names: tuple[range, list[str]] = (range(0), [])  # version keys, formatted once
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()  # query -> latest entry
        self.computed = 0  # documents computed (the others were served from one of these)

    async def version(self) -> Version | None:
        """Every partition's (epoch, offset, group steps), or None when some partition has no
        epoch."""
        count = int(await self.redis.get(keys.PARTITIONS) or 0)
        versions = await self.partition_versions(range(count))
        if not count or any(version is None for version in versions):
            return None
        return tuple(versions)

    async def partition_versions(self, partitions: range) -> list[tuple[Any, Any, Any] | None]:
        """Per partition: (epoch, offset, group steps), None without epoch and offset (nothing
        is known to change only with them). Group steps (measured FCR, aggregator/groups.lua)
        change a partition's counters without its offset: their count is in the version. On a
        single Redis one MGET (one command, not three per partition: each command costs
        redis-py more than its keys do)."""
        if self._names[0] != partitions:
            names = [
                name
                for partition in partitions
                for name in (
                    keys.partition_epoch_key(partition),
                    keys.partition_offset_key(self.topic, partition),
                    keys.partition_group_version_key(partition),
                )
            ]
            self._names = (partitions, names)
        names = self._names[1]
        if not names:
            return []
        if self.cluster:
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.get(name)
                values = await pipe.execute()
        else:
            values = await self.redis.mget(names)
        triples = zip(values[0::3], values[1::3], values[2::3], strict=True)
        return [
            None if None in (epoch, offset) else (epoch, offset, groups)
            for epoch, offset, groups in triples
        ]

    async def get(
        self,
        query: Hashable,
        now_s: float,
        compute: Callable[[], Awaitable[T]],
        fresh: bool = False,
    ) -> T:
        """`compute()`'s document for `query`, computed as of an instant at most a tick before
        `now_s` on the state of this version; computed anew (once for all) otherwise. `fresh`:
        at most half a tick old, never the one before (for a document made from this one)."""
        version = await self.version()
        if version is None:
            self.computed += 1
            return await compute()
        entry = self._entries.get(query)
        age = self.tick_s / 2 if fresh else self.tick_s
        if entry is None or not self._serves(entry, version, now_s, age):
            entry = self._start(query, Entry(version, now_s, asyncio.ensure_future(compute())))
        elif fresh:
            pass  # this entry, computed or being computed
        elif entry.task.done() and now_s - entry.now_s > self.tick_s / 2:
            # Same state, half a tick old: the next document is computed in the background
            # while this one is still served, so a steady stream of requests never waits.
            self._start(query, Entry(version, now_s, asyncio.ensure_future(compute()), entry))
        elif not entry.task.done() and _done(entry.previous, self, version, now_s):
            entry = entry.previous or entry
        self._entries.move_to_end(query)
        # shield: a request that goes away must not cancel the others' computation
        result: T = await asyncio.shield(entry.task)
        return result

    def _serves(self, entry: Entry, version: Version, now_s: float, age: float) -> bool:
        """Same state, at most `age` old (or younger: a clock set back), and not failed."""
        fresh = abs(now_s - entry.now_s) <= age
        return entry.version == version and fresh and not _failed(entry.task)

    def _start(self, query: Hashable, entry: Entry) -> Entry:
        self.computed += 1
        if entry.previous is not None:
            entry.previous.previous = None  # keep one document behind, not a chain
        for old in [q for q, e in self._entries.items() if entry.now_s - e.now_s > 2 * self.tick_s]:
            del self._entries[old]  # never served again (e.g. last minute's windows): let it go
        self._entries[query] = entry
        while len(self._entries) > MAX_QUERIES:
            self._entries.popitem(last=False)
        return entry


def _done(entry: Entry | None, shared: SharedReads, version: Version, now_s: float) -> bool:
    return (
        entry is not None
        and entry.task.done()
        and shared._serves(entry, version, now_s, shared.tick_s)
    )


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)
