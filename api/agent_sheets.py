"""Agents' sheets merged from the slices every partition wrote, merged again only where a slice
changed.

An agent's state events and the contacts naming it live on different partitions, so each partition
that saw the agent writes a slice of its sheet (`keys.partition_agents_key`); a read merges them:
the latest state by (event time, event id), and every queue with the last time it was seen. At 24
partitions and 500 agents that is 12,000 slices decoded and merged per read, while a step changes a
few. Here a partition's slices are read again only when its version (epoch, offset, group steps)
changed, only the slices whose bytes changed are decoded, and only the agents whose slices changed
are merged again, each from every partition in order as before. The merged sheets keep the order a
full merge gives (first seen over the partitions in order), which is the order the documents list
them in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from itertools import chain
from typing import Any

import orjson
from redis.asyncio import Redis

from services import keys

Sheet = dict[str, Any]  # {"state", "since_ms", "queues", "reason"}
Slice = dict[str, Any]  # as the step wrote it: {"state": {value, ms, id}, "reason", "queues"}
Versions = Callable[[range], Awaitable[list[Any]]]  # partitions -> their version or None each


class Held:
    """One partition's slices: its version when read, each agent's raw bytes and decoded slice."""

    __slots__ = ("decoded", "raw", "version")

    def __init__(self, version: Any) -> None:
        self.version = version
        self.raw: dict[bytes, bytes] = {}
        self.decoded: dict[bytes, Slice] = {}  # by the agent's name as the hash holds it


class AgentSheets:
    def __init__(self, redis: Redis, versions: Versions) -> None:
        self.redis = redis
        self.versions = versions
        self._held: dict[int, Held] = {}
        self._partitions = range(0)
        # by the agent's name as the hashes hold it: decoded for the answer only
        self._sheets: dict[bytes, Sheet | None] = {}  # agent -> merged sheet (None: no state)
        self._holders: dict[bytes, list[int]] = {}  # agent -> partitions whose slice has a state
        self._names: dict[bytes, str] = {}
        self._merged: tuple[list[Any], dict[str, Sheet], dict[str, list[int]]] | None = None

    async def read(self, partitions: range) -> tuple[dict[str, Sheet], dict[str, list[int]]]:
        """(agent -> merged sheet for agents with a state, agent -> partitions holding its state
        events). Shared between reads: callers must not change them."""
        versions = await self.versions(partitions)
        if (
            self._merged is not None
            and None not in versions
            and self._merged[0] == versions
            and partitions == self._partitions
        ):
            return self._merged[1], self._merged[2]
        changed = await self._refresh(partitions, versions)
        for name in changed:
            self._merge(name, partitions)
        order = dict.fromkeys(chain.from_iterable(self._held[p].decoded for p in partitions))
        for name in [n for n in self._sheets if n not in order]:
            del self._sheets[name], self._holders[name]  # no partition holds a slice any more
        names = self._names
        if len(names) > 2 * len(order) + 1000:  # agents come and go: stay bounded
            names.clear()
        for name in order.keys() - names.keys():
            names[name] = name.decode()
        sheets = {names[n]: sheet for n in order if (sheet := self._sheets[n]) is not None}
        holders = {names[n]: self._holders[n] for n in order if self._holders[n]}
        self._merged = (versions, sheets, holders)
        return sheets, holders

    async def _refresh(self, partitions: range, versions: list[Any]) -> set[bytes]:
        """Read again the partitions whose version changed (or has none); the agents whose slice
        changed, appeared or went (every agent when the partitions read are not the same)."""
        stale = [
            p
            for p in partitions
            if versions[p] is None or p not in self._held or self._held[p].version != versions[p]
        ]
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in stale:
                pipe.hgetall(keys.partition_agents_key(partition))
            rows = await pipe.execute()
        changed: set[bytes] = set()
        for partition, row in zip(stale, rows, strict=True):
            changed |= self._update(partition, versions[partition], row)
        if partitions != self._partitions:
            for partition in [p for p in self._held if p not in partitions]:
                del self._held[partition]
            changed |= {n for p in partitions for n in self._held[p].decoded} | set(self._sheets)
            self._partitions = partitions
        return changed

    def _update(self, partition: int, version: Any, row: dict[bytes, bytes]) -> set[bytes]:
        """The partition's slices now, in its hash's order; the agents whose slice changed,
        appeared or went (500 slices a partition, a few changed by a step: only those are
        decoded)."""
        old = self._held.get(partition) or Held(None)
        before = old.raw
        changed = [raw for raw, value in row.items() if before.get(raw) != value]
        new = Held(version)
        new.raw = row
        if list(row) == list(before):  # the same agents in the same order: values replaced
            new.decoded = old.decoded.copy()
            for raw in changed:
                new.decoded[raw] = orjson.loads(row[raw])
        else:  # agents added, gone, or the hash's order changed: in the hash's order again
            fresh = {raw: orjson.loads(row[raw]) for raw in changed}
            old_decoded = old.decoded
            new.decoded = {raw: fresh[raw] if raw in fresh else old_decoded[raw] for raw in row}
            changed += [raw for raw in before if raw not in row]
        self._held[partition] = new
        return set(changed)

    def _merge(self, name: bytes, partitions: Iterable[int]) -> None:
        """One agent merged from every partition's slice, in partition order."""
        into: dict[str, Any] = {"queues": {}}
        holders: list[int] = []
        for partition in partitions:
            part = self._held[partition].decoded.get(name)
            if part is None:
                continue
            merge_slice(into, part)
            if part.get("state"):
                holders.append(partition)
        self._holders[name] = holders
        state = into.get("state")
        self._sheets[name] = (
            {
                "state": state["value"],
                "since_ms": state["ms"],
                "queues": into["queues"],
                "reason": into.get("reason"),
            }
            if state
            else None
        )


def merge_slice(into: dict[str, Any], part: Slice) -> None:
    state = part.get("state")
    current = into.get("state")
    if state and (current is None or (state["ms"], state["id"]) > (current["ms"], current["id"])):
        into["state"] = state
        into["reason"] = part.get("reason")  # the not-ready reason of the winning state event
    queues = into["queues"]
    for queue, ms in (part.get("queues") or {}).items():
        queues[queue] = max(ms, queues.get(queue, ms))
