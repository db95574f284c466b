"""Agents' sheets merged again only where a slice changed (api/agent_sheets.py) equal a merge of
every slice from scratch, in the same order, after every change: a slice changed, added or gone,
a partition added, a version missing. Slices are written by hand in a real Redis (single and
cluster), with versions given by the test."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from api.agent_sheets import AgentSheets, merge_slice
from services import keys
from tests.stackfixtures import redis_single_and_cluster  # noqa: F401 (fixture `redis`)


class Versions:
    """Each partition's version: bumped by the test when it writes the partition's slices."""

    def __init__(self) -> None:
        self.of: dict[int, Any] = {}

    async def __call__(self, partitions: range) -> list[Any]:
        return [self.of.get(p, (b"1", b"0")) for p in partitions]


def slice_(ms: int, state: str | None, queues: dict[str, int]) -> bytes:
    part: dict[str, Any] = {"queues": queues}
    if state is not None:
        part["state"] = {"value": state, "ms": ms, "id": f"e{ms}"}
        part["reason"] = "lunch" if state == "not_ready" else None
    return orjson.dumps(part)


async def from_scratch(redis: Redis, partitions: range) -> tuple[list[Any], dict[str, list[int]]]:
    """Every slice of every partition merged anew, in partition order (the plain definition)."""
    merged: dict[str, dict[str, Any]] = {}
    holders: dict[str, list[int]] = {}
    for p in partitions:
        for name, value in (await redis.hgetall(keys.partition_agents_key(p))).items():
            part = orjson.loads(value)
            merge_slice(merged.setdefault(name.decode(), {"queues": {}}), part)
            if part.get("state"):
                holders.setdefault(name.decode(), []).append(p)
    sheets = [
        (n, m["state"]["value"], m["state"]["ms"], m["queues"], m.get("reason"))
        for n, m in merged.items()
        if m.get("state")
    ]
    return sheets, holders


def flat(sheets: dict[str, dict[str, Any]]) -> list[Any]:
    return [(n, s["state"], s["since_ms"], s["queues"], s["reason"]) for n, s in sheets.items()]


async def test_sheets_merged_where_changed_equal_a_merge_from_scratch(redis: Redis) -> None:
    versions = Versions()
    sheets = AgentSheets(redis, versions)

    async def write(partition: int, version: int, **slices: bytes | None) -> None:
        key = keys.partition_agents_key(partition)
        for name, value in slices.items():
            if value is None:
                await redis.hdel(key, name)
            else:
                await redis.hset(key, name, value)
        versions.of[partition] = None if version < 0 else (b"1", str(version).encode())

    async def check(partitions: range) -> None:
        got, holders = await sheets.read(partitions)
        want, want_holders = await from_scratch(redis, partitions)
        assert flat(got) == want  # the same sheets in the same order
        assert holders == want_holders

    await write(0, 1, ann=slice_(100, None, {"sales": 100}), bob=slice_(90, "available", {}))
    await write(1, 1, ann=slice_(200, "on_contact", {"sales": 50, "care": 60}))
    await write(2, 1, cid=slice_(50, "not_ready", {"care": 10}))
    await check(range(3))
    await check(range(3))  # no change: the same merge
    await write(1, 2, ann=slice_(300, "available", {"sales": 300}))  # a newer state wins
    await check(range(3))
    await write(0, 2, ann=slice_(400, "not_ready", {}), dan=slice_(10, "offline", {}))
    await check(range(3))
    await write(0, 3, ann=None, bob=None)  # slices gone: ann from partition 1 only, bob gone
    await check(range(3))
    await write(2, -1, cid=slice_(60, "available", {"care": 70}))  # no version: read anyway
    await check(range(3))
    await write(3, 1, bob=slice_(500, "on_contact", {"vip": 500}))
    await check(range(4))  # one more partition: bob back, last
    short = orjson.dumps({"state": {"value": "idle", "ms": 7, "id": "e7"}})  # a listpack hash:
    await write(4, 1, eve=short, fay=short)  # kept in the order fields were added
    await check(range(5))
    await write(4, 2, eve=None)
    await write(4, 3, eve=short)  # the same slice, now after fay
    await check(range(5))  # in the hash's order again
    await check(range(2))  # fewer
