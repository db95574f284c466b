"""The live read model: sum raw counters over a window from Redis, then apply the formulas.

Windows are made of whole buckets: hour buckets where a whole UTC hour fits, minute buckets at
the edges. `Nm` covers the current minute and the N-1 before it; `today` starts at local
midnight in the configured time zone.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from services import keys, kpis, lua
from services.clock import iso_utc
from services.settings import Settings

from .agent_sheets import AgentSheets
from .log_cache import LogCache
from .log_cache import parse_changes as parse_changes  # tests read it here
from .partition_cache import PartitionCache
from .shared_reads import SharedReads
from .window_sums import WindowSums

WINDOWS_S = {"5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "24h": 86400}
WINDOW_NAMES = (*WINDOWS_S, "today")
MAX_RANGE_S = 8 * 86400
MAX_EPOCH_S = 32_503_680_000  # the year 3000: later times cannot be written back as dates


SUM_BUCKETS = lua.SUM_HASHES  # a window's buckets: one partition's on a cluster, all on one Redis


# One partition's gauges: KEYS are (waiting, active) pairs, one pair per scope. Per scope:
# waiting count, the oldest wait's start (ms, false when none), open contacts.
GAUGES = """
local out = {}
for i = 1, #KEYS, 2 do
  local first = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  out[#out + 1] = redis.call('ZCARD', KEYS[i])
  out[#out + 1] = first[2] or false
  out[#out + 1] = redis.call('ZCARD', KEYS[i + 1])
end
return out
"""

# One partition's scopes active since ARGV[1], in order of last activity, with that time: a
# script, so the reply is flat strings whatever the protocol (redis-py's RESP3 conversion of
# scores cost more than the read).
SCOPES_SINCE = "return redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf', 'WITHSCORES')"

# Keys one summing script reads at most on a single Redis: partitions' buckets are read together
# up to this (`today` at 24 partitions is about 950), so a long range never makes one script run
# for seconds (Redis answers BUSY to every other client while a script runs too long).
SCRIPT_KEYS = 1000


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    start_s: int  # first minute bucket included
    end_s: int  # exclusive: the end of the current minute


def resolve_window(name: str, now_s: float, settings: Settings) -> Window:
    """Turn `5m|15m|1h|today` into a minute-aligned [start, end) range."""
    current = keys.bucket_start_s(now_s, "m")
    end = current + 60
    if name == "today":
        local = datetime.fromtimestamp(now_s, settings.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return Window(name, keys.bucket_start_s(midnight.timestamp(), "m"), end)
    if name not in WINDOWS_S:
        raise ValueError(f"window must be one of {', '.join(WINDOW_NAMES)}")
    return Window(name, end - WINDOWS_S[name], end)


def range_window(start_s: float, end_s: float) -> Window:
    """An explicit minute range [from, to), rounded out to whole minutes.

    Bounded: live state keeps nothing older than 8 days, and an unbounded range (from 1970, or
    infinite) made one request read hundreds of thousands of buckets (found by fuzzing).
    """
    if not (0 <= start_s <= MAX_EPOCH_S and 0 <= end_s <= MAX_EPOCH_S):  # NaN fails too
        raise ValueError(f"`from` and `to` must be epoch seconds from 0 to {MAX_EPOCH_S}")
    if end_s - start_s > MAX_RANGE_S:
        raise ValueError(f"`from`..`to` spans at most {MAX_RANGE_S // 86400} days")
    start = keys.bucket_start_s(start_s, "m")
    end = keys.bucket_start_s(end_s + 59, "m")
    if end <= start:
        raise ValueError("`to` must be after `from`")
    return Window("range", start, end)


def buckets(start_s: int, end_s: int) -> list[tuple[str, int]]:
    """Minute buckets up to the first hour edge, hour buckets inside, minutes after."""
    out: list[tuple[str, int]] = []
    t = start_s
    while t < end_s:
        if t % 3600 == 0 and t + 3600 <= end_s:
            out.append(("h", t))
            t += 3600
        else:
            out.append(("m", t))
            t += 60
    return out


def read_options(
    settings: Settings, channel: str, queue: str | None = None, **overrides: Any
) -> kpis.ReadOptions:
    """The definitions in force for one scope: settings, then per-request overrides."""
    values: dict[str, Any] = {
        "sl_threshold_s": settings.sl_threshold_for(channel, queue),
        "sl_variant": settings.sl_variant,
        "sl_exclude_short": settings.sl_exclude_short_abandons,
        "short_abandon_s": settings.short_abandon_seconds,
        "abandon_denominator": settings.abandon_denominator,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return kpis.ReadOptions(**values)


class LiveReader:
    """Reads Redis for one window; every figure from the same snapshot of counters.

    The aggregator keeps counters, gauges and agent slices per partition (each partition has one
    writer and one cluster slot); this reader sums them, one pipelined round trip per read.
    """

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.agent_partitions: dict[str, list[int]] = {}  # from the last agent_states()
        # documents shared by requests of the same state (versioned by the events' offsets)
        self.shared = SharedReads(redis, settings.topic(keys.TOPIC_EVENTS))
        # what documents are made of (api/snapshot.py, `shared_read`), shared the same way
        self.readings = SharedReads(redis, settings.topic(keys.TOPIC_EVENTS))
        # named windows' counters, kept summed
        self.window_sums = WindowSums(
            redis, self.shared.partition_versions, settings.bucket_ttl_seconds
        )
        # agents' state logs since a window's start, parsed
        self.log_cache = LogCache(redis, self.shared.partition_versions)
        self.sheets = AgentSheets(redis, self.shared.partition_versions)  # merged agent slices
        # per partition, while its version holds: (the start asked, scores, scopes) and gauges
        self._scopes: PartitionCache[tuple[int, list[float], list[bytes]]] = PartitionCache()
        self._gauges: PartitionCache[list[Any]] = PartitionCache()

    async def partitions(self) -> range:
        """The partitions state was written for (recorded by the first aggregator)."""
        return range(int(await self.redis.get(keys.PARTITIONS) or 0))

    async def active_scopes(self, since_s: int) -> list[str]:
        """Scopes with a contact since `since_s`, over partitions. A partition is asked again
        only when its version changed or an earlier start is asked (api/partition_cache.py);
        its scopes come in order of last activity, so those since a start are a suffix."""
        partitions = await self.partitions()
        versions = await self.shared.partition_versions(partitions)
        held = self._scopes
        changed = set(held.stale(partitions, versions, None))
        stale = [p for p in partitions if p in changed or held.value(p)[0] > since_s]
        # what this read uses, whatever a concurrent read puts meanwhile
        read = {p: held.value(p) for p in partitions if p not in stale}
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in stale:
                pipe.eval(SCOPES_SINCE, 1, keys.partition_scopes_key(partition), since_s)
            rows = await pipe.execute()
        for partition, row in zip(stale, rows, strict=True):
            read[partition] = (since_s, [float(score) for score in row[1::2]], row[0::2])
            held.put(partition, versions[partition], None, read[partition])
        suffixes = []
        for partition in partitions:
            _, scores, members = read[partition]
            suffixes.append(members[bisect_left(scores, since_s) :])
        # every partition lists nearly every scope: decode each distinct one once
        return sorted({_text(s) for s in set[str | bytes]().union(*suffixes)})

    async def counters(self, scopes: Iterable[str], window: Window) -> dict[str, dict[str, int]]:
        """Summed raw counters per scope over the window, over every partition, summed inside
        Redis: on a single Redis by one script over every partition's buckets (Python parses one
        hash); on a cluster by one script per partition (its keys in one slot), summed here."""
        cells = buckets(window.start_s, window.end_s)
        partitions = await self.partitions()
        if window.name in WINDOW_NAMES:  # read often: only the buckets that changed
            return await self.window_sums.read(window.name, cells, partitions, window.end_s, scopes)
        groups = [[keys.partition_counter_key(p, res, s) for res, s in cells] for p in partitions]
        if not self.settings.redis_cluster:
            groups = batched_keys(groups, SCRIPT_KEYS)
        async with self.redis.pipeline(transaction=False) as pipe:
            for names in groups:
                pipe.eval(SUM_BUCKETS, len(names), *names)
            rows = await pipe.execute()
        return by_scope(sum_fields(rows), scopes)

    async def gauges(self, scopes: list[str], now_s: float) -> dict[str, dict[str, Any]]:
        """Contacts waiting now, the longest wait, open contacts: per scope, over partitions
        (one script per partition reads its waiting and open sets of every scope; only from the
        partitions whose version changed, api/partition_cache.py)."""
        partitions = await self.partitions()
        versions = await self.shared.partition_versions(partitions)
        asked = tuple(scopes)
        stale = self._gauges.stale(partitions, versions, asked)
        # taken now: a concurrent read of other scopes may replace them while this one waits
        read = {p: self._gauges.value(p) for p in partitions if p not in stale}
        async with self.redis.pipeline(transaction=False) as pipe:
            for p in stale:
                names: list[str] = []
                for scope in scopes:
                    names += (
                        keys.partition_waiting_key(p, scope),
                        keys.partition_active_key(p, scope),
                    )
                pipe.eval(GAUGES, len(names), *names)
            replies = await pipe.execute()
        for p, reply in zip(stale, replies, strict=True):
            self._gauges.put(p, versions[p], asked, reply)
            read[p] = reply
        rows = [read[p] for p in partitions]
        out = {}
        for i, scope in enumerate(scopes):
            part = [row[3 * i : 3 * i + 3] for row in rows]
            oldest = [float(first) for _, first, _ in part if first is not None]
            longest = max(0.0, now_s - min(oldest) / 1000) if oldest else 0.0
            out[scope] = {
                "in_queue": sum(int(waiting) for waiting, _, _ in part),
                "longest_wait_seconds": round(longest, 3),
                "active": sum(int(active) for _, _, active in part),
            }
        return out

    async def agent_logs(
        self, agents: list[str], start_ms: int, end_ms: int, now_ms: int | None = None
    ) -> dict[str, list[kpis.StateChange]]:
        """Each agent's changes inside the window, plus the last one before it (its state then),
        read from the partitions that applied its state events (see agent_states): one script
        per partition for all its agents, which reads only the logs that changed since the last
        read from the same start (api/log_cache.py); with `now_ms` (the current time), only of
        the partitions whose version changed."""
        by_partition: dict[int, list[str]] = {}
        for agent in agents:
            for partition in self.agent_partitions.get(agent, ()):
                by_partition.setdefault(partition, []).append(agent)
        logs = await self.log_cache.read(by_partition, start_ms, now_ms)
        out: dict[str, list[kpis.StateChange]] = {agent: [] for agent in agents}
        before: dict[str, list[kpis.StateChange]] = {agent: [] for agent in agents}
        for (_, agent), (last, since) in logs.items():
            before[agent] += last
            out[agent] += [change for change in since if change[0] < end_ms]
        for agent, changes in out.items():
            last = sorted(before[agent])[-1:]  # the state at the window's start, over partitions
            changes[:] = last + sorted(changes)
        return out

    async def stats(self) -> dict[str, int]:
        """The aggregator's figures: each partition's step counts, plus the loop's timings."""
        partitions = await self.partitions()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.STATS)
            for partition in partitions:
                pipe.hgetall(keys.partition_stats_key(partition))
            rows = await pipe.execute()
        out: dict[str, int] = {}
        for row in rows:
            for field, value in row.items():
                name, number = _text(field), int(value)
                if name == "last_apply_epoch_ms":
                    out[name] = max(out.get(name, 0), number)
                else:
                    out[name] = out.get(name, 0) + number
        return out

    async def totals(self) -> dict[str, dict[str, int]]:
        """scope -> the monotonic totals of its contact counts, summed over partitions, and
        `keys.TOTALS_SINCE`: when the first partition counted for it (epoch ms)."""
        partitions = await self.partitions()
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.hgetall(keys.partition_totals_key(partition))
            rows = await pipe.execute()
        out: dict[str, dict[str, int]] = {}
        for row in rows:
            for field, value in row.items():
                scope, name = keys.parse_counter_field(_text(field))
                into, number = out.setdefault(scope, {}), int(value)
                if name == keys.TOTALS_SINCE:
                    into[name] = min(into.get(name, number), number)
                else:
                    into[name] = into.get(name, 0) + number
        return out

    async def agent_states(self) -> dict[str, dict[str, Any]]:
        """Each agent's sheet, merged from the slices every partition wrote (an agent's state
        events and the contacts naming it live on different partitions): the latest state by
        (event time, event id), and every queue with the last time it was seen. Merged again
        only where a step changed a slice (api/agent_sheets.py); callers only read them."""
        states, self.agent_partitions = await self.sheets.read(await self.partitions())
        return states


iso = iso_utc  # the api's modules import it from here


def batched_keys(groups: list[list[str]], limit: int) -> list[list[str]]:
    """Consecutive groups joined while the total stays within `limit` keys; a group larger than
    the limit stays whole, alone (the order of keys is kept)."""
    out: list[list[str]] = []
    for group in groups:
        if out and len(out[-1]) + len(group) <= limit:
            out[-1] = out[-1] + group
        else:
            out.append(list(group))
    return out


def sum_fields(rows: Iterable[Sequence[str | bytes]]) -> dict[str | bytes, int]:
    """Flat `field, value, ...` replies (one per partition) summed field by field; fields keep
    the order they first appear in."""
    total: dict[str | bytes, int] = {}
    for row in rows:
        fields = iter(row)
        for field, value in zip(fields, fields, strict=True):
            total[field] = total.get(field, 0) + int(value)
    return total


_SPLIT: dict[str | bytes, tuple[str, str]] = {}  # field -> (scope, counter), split once


def by_scope(summed: dict[str | bytes, int], scopes: Iterable[str]) -> dict[str, dict[str, int]]:
    """`scope|counter` sums split per scope, for the scopes asked (others are dropped)."""
    out: dict[str, dict[str, int]] = {scope: {} for scope in scopes}
    split = _SPLIT
    if len(split) > 200_000:  # field names are open-ended (agents, stages): stay bounded
        split.clear()
    for field, value in summed.items():
        parts = split.get(field)
        if parts is None:
            parts = split[field] = keys.parse_counter_field(_text(field))
        scope, name = parts
        counters = out.get(scope)
        if counters is not None:
            counters[name] = counters.get(name, 0) + value
    return out


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
