"""One atomic Redis step per partition and batch: fact sheets, agent slices, counter deltas,
gauges and the partition's offset, written by apply.lua whole or not at all. The batch's
measured-FCR groups are in that step on a single Redis; on a cluster (their keys are in other
slots) they go first, one atomic step per group shard (groups.lua), and only when all of them
applied is the partition's own step sent (docs/aggregation.md, "Measured-FCR groups").

The script first compares the partition's stored offset with the one this consumer planned
from, and refuses the step when they differ: a consumer that lost its partition in a rebalance,
or a replay after a crash, can never apply a batch twice. Every key is named here (services/keys)
and passed in KEYS; the script computes none. The clock is the caller's: nothing here reads time.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services import keys, tracing

from .contributions import Contribution
from .engine import Plan, merge_deltas
from .facts import SHEET_ENCODER
from .repeats import GroupSheet
from .state import Loaded

AGENT_LOG_KEEP_S = keys.AGENT_LOG_KEEP_S  # state changes kept for time in state (today, a week)


def _file(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def _script(name: str) -> str:
    """A script's text, with the texts apply.lua and groups.lua share spliced in at their
    marker lines."""
    return (
        _file(name)
        .replace("-- @groups\n", _file("group_write.lua"))
        .replace("-- @counters\n", _file("counter_write.lua"))
    )


APPLY_SCRIPT = _script("apply.lua")
LOAD_SCRIPT = _script("load.lua")
GROUPS_SCRIPT = _script("groups.lua")
READ_GROUPS_SCRIPT = _file("groups_read.lua")
APPLIED, OFFSET_CONFLICT, GROUP_CONFLICT = 1, 0, 2


@dataclass(frozen=True, slots=True)
class Step:
    """One partition's batch: the offset it was planned from, its last offset, and the plan."""

    topic: str
    partition: int
    expected: int
    last: int
    plan: Plan
    old_groups: Mapping[str, GroupSheet | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the script answered for one step: applied, or which key refused it and why."""

    partition: int
    code: int
    key: str = ""
    stored: str = ""


@dataclass(slots=True)
class Payload:
    """ARGV[1] of apply.lua (see its header); keys are indexes into KEYS. The sheets and slices
    themselves are ARGV[2] (`Store.payload`'s bytes), cut by the byte lengths here."""

    expected: str
    last: str
    now_ms: str
    facts: list[str]  # each contact whose sheet the step writes
    fact_bytes: list[int]  # each one's sheet's length in ARGV[2]
    expires: str  # when the sheets expire (ms)
    agents: list[str]  # each agent whose slice the step writes
    agent_bytes: list[int]  # each one's slice's length in ARGV[2], after the sheets
    groups: list[tuple[int, str, str, str, str]]  # key, version read, new, members, seen
    counters: list[tuple[int, str, dict[str, int], int]]  # key, expire-at s, deltas, version key
    agent_log: list[tuple[int, int, list[str]]]  # key, its version key, [ms, `id|state`, ...]
    scopes: list[str]  # minute, scope, ...
    dirty: list[str]
    gauges: list[tuple[str, int, list[str]]]  # rem|add, key, contacts|`since ms, contact, ...`
    stats: list[str]  # name, increment, ...
    totals_key: int  # 0 when the batch changed no total
    totals: list[str]  # `scope|counter`, increment, ...
    totals_since: list[str]  # `scope|since_ms` fields to create with now_ms when missing
    log_floor_ms: str
    log_ttl: str
    group_ttl: str
    channel: str
    notice: str
    epoch_key: int  # the partition's epoch (keys.partition_epoch_key), now_ms if it has none
    contacts_key: int  # the partition's changed contacts (keys.partition_contacts_dirty_key)


@dataclass(slots=True)
class GroupPayload:
    """ARGV[1] of groups.lua (one shard); keys are indexes into KEYS."""

    groups: list[tuple[int, str, str, str, str]]  # key, version read, new, members, seen
    counters: list[tuple[int, str, dict[str, int], int]]  # as Payload.counters, the shard's hashes
    scopes: list[str]  # minute, scope, ...
    dirty: list[str]
    epoch_key: int
    gv_key: int
    scopes_key: int
    dirty_key: int
    now_ms: str
    group_ttl: str


class KeyNames:
    """KEYS of a script, each once, by index (1-based)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}

    def __call__(self, name: str) -> int:
        found = self.index.get(name)
        if found is None:
            self.names.append(name)
            found = self.index[name] = len(self.names)
        return found


class KeyList(KeyNames):
    """KEYS of one step: the fixed seven first, then each other key once, by index (1-based)."""

    def __init__(self, topic: str, partition: int) -> None:
        super().__init__()
        self.names = [
            keys.partition_offset_key(topic, partition),
            keys.partition_facts_key(partition),
            keys.partition_facts_expiry_key(partition),
            keys.partition_agents_key(partition),
            keys.partition_stats_key(partition),
            keys.partition_scopes_key(partition),
            keys.partition_dirty_key(partition),
        ]


class Store:
    """The aggregator's only writer to Redis."""

    def __init__(
        self,
        redis: Redis,
        facts_ttl_s: int,
        bucket_ttl_s: int,
        group_ttl_s: int = 9 * 86400,
        cluster: bool = False,
    ) -> None:
        self.redis = redis
        self.group_ttl_s = group_ttl_s
        self.facts_ttl_s = facts_ttl_s
        self.bucket_ttl_s = bucket_ttl_s
        self.cluster = cluster  # one group step per shard (slot), else one per batch
        self.partitions = 1  # the recorded count (Runner.check_partitions): groups' shards

    async def load_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """Last applied offset per partition, -1 where nothing was applied yet."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for p in partitions:
                pipe.get(keys.partition_offset_key(topic, p))
            values = await pipe.execute()
        return {p: int(v) if v is not None else -1 for p, v in zip(partitions, values, strict=True)}

    async def reset_offset(self, topic: str, partition: int) -> None:
        await self.redis.set(keys.partition_offset_key(topic, partition), -1)

    async def load_partition(self, topic: str, partition: int) -> Loaded:
        """The partition's offset and state as of one instant (one script, one slot)."""
        names = [
            keys.partition_offset_key(topic, partition),
            keys.partition_facts_key(partition),
            keys.partition_facts_expiry_key(partition),
            keys.partition_agents_key(partition),
        ]
        offset, facts, expiry, agents = await self.redis.eval(LOAD_SCRIPT, len(names), *names)
        return Loaded(
            offset=int(offset) if offset else -1,
            facts=dict(zip(facts[0::2], facts[1::2], strict=True)),
            expiry=[(m, float(s)) for m, s in zip(expiry[0::2], expiry[1::2], strict=True)],
            agents=dict(zip(agents[0::2], agents[1::2], strict=True)),
        )

    async def read_facts(
        self, partition: int, contacts: list[str], now_ms: int
    ) -> list[bytes | str | None]:
        """Sheets evicted from memory, read back on their next event; None for a contact with
        no sheet or an expired one (not pruned yet), as if it had never been seen."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.partition_facts_key(partition), contacts)
            pipe.zmscore(keys.partition_facts_expiry_key(partition), contacts)
            values, expiry = await pipe.execute()
        return [
            value if value is not None and score is not None and score > now_ms else None
            for value, score in zip(values, expiry, strict=True)
        ]

    async def read_groups(self, groups: list[str]) -> dict[str, GroupSheet | None]:
        """The groups' sheets (None: no sheet), in the order asked. One script call per shard
        (one in all on a single Redis): an HMGET each cost the aggregator ~12 us a group."""
        if not groups:
            return {}
        batches = self._group_batches(groups)
        async with self.redis.pipeline(transaction=False) as pipe:
            for batch in batches:
                names = [keys.group_key(group, self.partitions) for group in batch]
                pipe.eval(READ_GROUPS_SCRIPT, len(names), *names)
            replies = await pipe.execute()
        rows: dict[str, list[Any]] = {}
        for batch, reply in zip(batches, replies, strict=True):
            rows.update(zip(batch, reply, strict=True))
        return {group: _group_sheet(*rows[group]) for group in groups}

    def _group_batches(self, groups: list[str]) -> list[list[str]]:
        """The groups by shard on a cluster (a script's keys must share a slot), else all."""
        if not self.cluster:
            return [groups]
        by_shard: dict[int, list[str]] = {}
        for group in groups:
            by_shard.setdefault(keys.group_shard(group, self.partitions), []).append(group)
        return list(by_shard.values())

    async def apply(self, steps: Sequence[Step], now_s: float) -> list[Outcome]:
        """Every step's script in one round trip, each atomic on its own. On a cluster the
        steps' groups go in a round trip before, and a step whose groups changed since they
        were read is not sent: its outcome is that conflict, and the planner retries it."""
        return await (await self.send(steps, now_s))

    async def _apply_pipelined(self, steps: Sequence[Step], now_s: float) -> list[Outcome]:
        """`apply` through redis-py's pipeline (a cluster client routes each script)."""
        refused = await self.apply_groups(steps, now_s) if self.cluster else {}
        ready = [step for step in steps if step.partition not in refused]
        outcomes: dict[int, Outcome] = {}
        if ready:
            async with self.redis.pipeline(transaction=False) as pipe:
                for step in ready:  # EVAL, not EVALSHA: no script cache to lose on a restart
                    names, payload, sheets = self.payload(step, now_s)
                    pipe.eval(APPLY_SCRIPT, len(names), *names, orjson.dumps(payload), sheets)
                replies = await pipe.execute(raise_on_error=False)
            for step, reply in zip(ready, replies, strict=True):
                outcomes[step.partition] = _outcome(step.partition, reply)
        return [refused.get(step.partition) or outcomes[step.partition] for step in steps]

    async def send(self, steps: Sequence[Step], now_s: float) -> asyncio.Future[list[Outcome]]:
        """`apply` split at its write: returns once the steps are written to Redis, with the
        task that reads their outcomes, so the caller plans its next batch while Redis runs
        these. A task of `apply` wrote only after two of redis-py's awaits, i.e. at the
        runner's next await, after its next plan: Redis idled, then the runner waited for it
        (a fifth of a catch-up, docs/capacity.md). On a cluster, `apply` in a task: the
        groups' round trip must be answered before the steps are sent."""
        pool = getattr(self.redis, "connection_pool", None)  # a cluster client has none
        if self.cluster or pool is None or not steps:
            return asyncio.ensure_future(self._apply_pipelined(steps, now_s))
        calls = [self.payload(step, now_s) for step in steps]
        conn = await pool.get_connection()
        try:
            commands = [
                ("EVAL", APPLY_SCRIPT, len(names), *names, orjson.dumps(payload), sheets)
                for names, payload, sheets in calls
            ]
            await conn.send_packed_command(conn.pack_commands(commands))
        except BaseException:
            await conn.disconnect()  # what was written of the request is unknown
            await pool.release(conn)
            raise
        return asyncio.ensure_future(self._outcomes(conn, steps))

    async def _outcomes(self, conn: Any, steps: Sequence[Step]) -> list[Outcome]:
        """Every reply of a `send`, read before any error is raised (the pooled connection
        must not keep unread replies); then the steps' outcomes."""
        replies: list[Any] = []
        try:
            for _ in steps:
                try:
                    replies.append(await self.redis.parse_response(conn, "EVAL"))
                except ResponseError as exc:  # a script error: this step's outcome
                    replies.append(exc)
        except BaseException:
            await conn.disconnect()  # replies left unread
            raise
        finally:
            await self.redis.connection_pool.release(conn)
        return [_outcome(step.partition, reply) for step, reply in zip(steps, replies, strict=True)]

    async def apply_groups(self, steps: Sequence[Step], now_s: float) -> dict[int, Outcome]:
        """Run the steps' group scripts in one round trip; partition -> the conflict of each
        step that had one (its other shards' scripts may have applied: a replay skips them)."""
        calls = [(step, call) for step in steps for call in self.group_payloads(step, now_s)]
        refused: dict[int, Outcome] = {}
        if not calls:
            return refused
        async with self.redis.pipeline(transaction=False) as pipe:
            for _, (names, group_payload) in calls:
                pipe.eval(GROUPS_SCRIPT, len(names), *names, orjson.dumps(group_payload))
            replies = await pipe.execute(raise_on_error=False)
        for (step, _), reply in zip(calls, replies, strict=True):
            outcome = _outcome(step.partition, reply)
            if outcome.code != APPLIED:
                refused.setdefault(step.partition, outcome)
        return refused

    def group_payloads(self, step: Step, now_s: float) -> list[tuple[list[str], GroupPayload]]:
        """KEYS and ARGV[1] of the step's group scripts on a cluster: one per shard (its
        keys in one slot)."""
        plan = step.plan
        if not plan.groups:
            return []
        by_shard: dict[int, list[str]] = {}
        for group in plan.groups:
            by_shard.setdefault(keys.group_shard(group, self.partitions), []).append(group)
        return [self._group_payload(step, s, g, now_s) for s, g in by_shard.items()]

    def _group_rows(
        self, step: Step, names: KeyNames, groups: list[str]
    ) -> list[tuple[int, str, str, str, str]]:
        """Each group's key, the version read, the new version, members and `seen`."""
        rows = []
        for group in groups:
            sheet = step.plan.groups[group]
            rows.append(
                (
                    names(keys.group_key(group, self.partitions)),
                    str(_version(step.old_groups.get(group))),
                    str(sheet.version),
                    orjson.dumps(sheet.members).decode(),  # tuples as arrays: as to_json's lists
                    orjson.dumps(sheet.seen_json()).decode(),
                )
            )
        return rows

    def _group_payload(
        self, step: Step, shard: int, groups: list[str], now_s: float
    ) -> tuple[list[str], GroupPayload]:
        plan, names = step.plan, KeyNames()
        rows = self._group_rows(step, names, groups)
        deltas: Contribution = {}
        for group in groups:
            merge_deltas(deltas, plan.group_deltas.get(group, {}))
        counters, scopes = self._bucket_writes(deltas, now_s, names, shard)
        payload = GroupPayload(
            groups=rows,
            counters=counters,
            scopes=[v for scope, minute in scopes.items() for v in (str(minute), scope)],
            dirty=dirty_members(deltas, [], now_s, self.bucket_ttl_s),
            epoch_key=names(keys.partition_epoch_key(shard)),
            gv_key=names(keys.partition_group_version_key(shard)),
            scopes_key=names(keys.partition_scopes_key(shard)),
            dirty_key=names(keys.partition_dirty_key(shard)),
            now_ms=str(int(now_s * 1000)),
            group_ttl=str(self.group_ttl_s),
        )
        return names.names, payload

    def payload(self, step: Step, now_s: float) -> tuple[list[str], Payload, bytes]:
        """KEYS, ARGV[1] and ARGV[2] of one step. The sheets and slices go as one byte string
        beside the payload: inside it each was JSON text escaped again (its quotes), for cjson
        to unescape; apply.lua cuts them out by length (string.sub) instead."""
        plan, key = step.plan, KeyList(step.topic, step.partition)
        now_ms = int(now_s * 1000)
        sheets = list(map(SHEET_ENCODER.encode, plan.facts.values()))
        slices = [orjson.dumps(slice_.to_json()) for slice_ in plan.agents.values()]
        # On a single Redis the groups' counters go with the step; on a cluster, with them.
        deltas = plan.all_deltas() if plan.group_deltas and not self.cluster else plan.deltas
        counters, scopes = self._bucket_writes(deltas, now_s, key, step.partition)
        payload = Payload(
            expected=str(step.expected),
            last=str(step.last),
            now_ms=str(now_ms),
            facts=list(plan.facts),
            fact_bytes=list(map(len, sheets)),
            expires=str(now_ms + self.facts_ttl_s * 1000),
            agents=list(plan.agents),
            agent_bytes=list(map(len, slices)),
            groups=[] if self.cluster else self._group_rows(step, key, list(plan.groups)),
            counters=counters,
            agent_log=agent_log_ops(plan, key, step.partition),
            scopes=[v for scope, minute in scopes.items() for v in (str(minute), scope)],
            dirty=dirty_members(deltas, plan.agent_log, now_s, self.bucket_ttl_s),
            gauges=gauge_ops(plan, key, step.partition),
            stats=_stats(plan),
            **_totals(plan, key, step.partition),
            log_floor_ms=str(now_ms - AGENT_LOG_KEEP_S * 1000),
            log_ttl=str(AGENT_LOG_KEEP_S),
            group_ttl=str(self.group_ttl_s),
            channel=keys.CHANGES_CHANNEL,
            # The change notice: the step's trace (the api's push links to it), else its offset.
            notice=tracing.current_traceparent() or str(step.last),
            epoch_key=key(keys.partition_epoch_key(step.partition)),
            contacts_key=key(keys.partition_contacts_dirty_key(step.partition)),
        )
        return key.names, payload, b"".join(sheets + slices)

    def facts_expiry_ms(self, now_s: float) -> int:
        """When sheets written now expire: the memory copy must agree with Redis."""
        return int(now_s * 1000) + self.facts_ttl_s * 1000

    def _bucket_writes(
        self, deltas: Contribution, now_s: float, key: KeyNames, partition: int
    ) -> tuple[list[tuple[int, str, dict[str, int], int]], dict[str, int]]:
        """One hash per bucket for this partition, `scope|counter` fields, and its version key;
        the active scopes."""
        buckets, scopes = bucket_fields(deltas, now_s, self.bucket_ttl_s)
        counters = []
        for (res, start), fields in buckets.items():
            expire_at = str(start + keys.RESOLUTIONS[res] + self.bucket_ttl_s)
            counters.append(
                (
                    key(keys.partition_counter_key(partition, res, start)),
                    expire_at,
                    fields,
                    key(keys.partition_counter_version_key(partition, res, start)),
                )
            )
        return counters, scopes


def dirty_members(
    deltas: Contribution,
    agent_log: Sequence[tuple[str, str, str, int]],
    now_s: float,
    bucket_ttl_s: int,
) -> list[str]:
    """The (interval, scope) cells the history writer must roll again."""
    oldest = now_s - bucket_ttl_s  # older intervals' minute buckets are gone
    width = keys.INTERVAL_SECONDS
    # Each (interval, scope) once before formatting: a batch has ~15 minute cells for each.
    cells = {(minute - minute % width, scope) for minute, scope in deltas if minute + 60 > oldest}
    # A state change moves the agent's time per state from its interval on: the history
    # writer re-rolls that agent's time (aggregator/agent_time.py) from there. Each (agent,
    # interval) once before its scope is formatted: a batch has many state changes of each.
    width_ms = width * 1000
    marks = {(agent, ms // width_ms) for agent, _, _, ms in agent_log if ms / 1000 + 60 > oldest}
    cells.update((n * width, keys.agent_scope(agent)) for agent, n in marks)
    return sorted([keys.dirty_member(start, scope) for start, scope in cells])


_FIELD_NAMES: dict[str, dict[str, str]] = {}  # scope -> counter -> `scope|counter`


def bucket_fields(
    deltas: Mapping[tuple[int, str], Mapping[str, int]], now_s: float, bucket_ttl_s: int
) -> tuple[dict[tuple[str, int], dict[str, int]], dict[str, int]]:
    """`rollup` in one pass, by bucket: (resolution, start) -> {`scope|counter`: delta}, zeros
    and buckets already expired dropped; and scope -> the latest minute bucket it changed.

    Deltas are keyed by minute starts (contributions.minute_of), so each (minute, scope) cell is
    one minute bucket's cell and only hours need summing; field names are remembered per scope
    (the same few thousand recur in every batch)."""
    minute_w, hour_w = keys.RESOLUTIONS["m"], keys.RESOLUTIONS["h"]
    if len(keys.RESOLUTIONS) != 2 or any(minute % minute_w for minute, _ in deltas):
        return _bucket_fields_by_rollup(deltas, now_s, bucket_ttl_s)
    minutes, hours, scopes = _sums_by_bucket(deltas, now_s, bucket_ttl_s)
    out: dict[tuple[str, int], dict[str, int]] = {}
    for res, width, buckets in (("m", minute_w, minutes), ("h", hour_w, hours)):
        for start, flat in buckets.items():
            if start + width + bucket_ttl_s <= now_s:
                continue  # a bucket already gone (e.g. a repeat contact days later): nothing to fix
            live = flat if res == "m" else {name: value for name, value in flat.items() if value}
            if live:
                out[(res, start)] = live
    return out, scopes


Sums = dict[int, dict[str, int]]  # bucket start -> `scope|counter` -> delta


def _sums_by_bucket(
    deltas: Mapping[tuple[int, str], Mapping[str, int]], now_s: float, bucket_ttl_s: int
) -> tuple[Sums, Sums, dict[str, int]]:
    """Non-zero deltas by minute and by hour; scope -> latest live minute it changed."""
    minute_w, hour_w = keys.RESOLUTIONS["m"], keys.RESOLUTIONS["h"]
    if len(_FIELD_NAMES) > 50_000:  # scopes are open-ended (agents, queues): stay bounded
        _FIELD_NAMES.clear()
    minutes: Sums = {}
    hours: Sums = {}
    scopes: dict[str, int] = {}
    for (minute, scope), fields in deltas.items():
        names = _FIELD_NAMES.get(scope)
        if names is None:
            names = _FIELD_NAMES[scope] = {}
        in_minute = minutes.get(minute)
        if in_minute is None:
            in_minute = minutes[minute] = {}
        in_hour = hours.get(minute - minute % hour_w)
        if in_hour is None:
            in_hour = hours[minute - minute % hour_w] = {}
        changed = False
        # Fields of one scope are its own (the names in a scope hold no separator, so the
        # prefix of `scope|counter` says the scope) and a minute has each scope once: a minute
        # bucket's field is set, never summed.
        for name, value in fields.items():
            if value:
                field = names.get(name)
                if field is None:
                    field = names[name] = keys.counter_field(scope, name)
                in_minute[field] = value
                if field in in_hour:
                    in_hour[field] += value
                else:
                    in_hour[field] = value
                changed = True
        live = changed and minute + minute_w + bucket_ttl_s > now_s
        if live and (scope not in scopes or scopes[scope] < minute):
            scopes[scope] = minute
    return minutes, hours, scopes


def _bucket_fields_by_rollup(
    deltas: Mapping[tuple[int, str], Mapping[str, int]], now_s: float, bucket_ttl_s: int
) -> tuple[dict[tuple[str, int], dict[str, int]], dict[str, int]]:
    """The plain definition, for deltas not keyed by minute starts (none the engine makes)."""
    out: dict[tuple[str, int], dict[str, int]] = {}
    scopes: dict[str, int] = {}
    for (res, start, scope), fields in rollup(deltas).items():
        if start + keys.RESOLUTIONS[res] + bucket_ttl_s <= now_s:
            continue
        flat = out.setdefault((res, start), {})
        for name, value in fields.items():
            flat[keys.counter_field(scope, name)] = value
        if res == "m":
            scopes[scope] = max(scopes.get(scope, 0), start)
    return out, scopes


def _totals(plan: Plan, key: KeyList, partition: int) -> dict[str, Any]:
    """The monotonic totals' increments; each scope's creation time, set once."""
    if not plan.totals:
        return {"totals_key": 0, "totals": [], "totals_since": []}
    flat: list[str] = []
    for (scope, name), count in sorted(plan.totals.items()):
        flat += (keys.counter_field(scope, name), str(count))
    scopes = sorted({scope for scope, _ in plan.totals})
    return {
        "totals_key": key(keys.partition_totals_key(partition)),
        "totals": flat,
        "totals_since": [keys.counter_field(s, keys.TOTALS_SINCE) for s in scopes],
    }


def _stats(plan: Plan) -> list[str]:
    stats = ["events_applied", str(plan.events), "batches_applied", "1"]
    if plan.dead:
        stats += ("dead_letters", str(len(plan.dead)))
    for reason, count in plan.not_counted().items():  # partial and uncounted events, by reason
        stats += (f"{keys.NOT_COUNTED_STAT}{reason}", str(count))
    return stats


_GAUGE_KEYS: dict[tuple[int, str], tuple[str, str]] = {}  # (partition, scope) -> its two keys


def gauge_keys(partition: int, scope: str) -> tuple[str, str]:
    """The scope's waiting and open sets in this partition, formatted once (they recur)."""
    found = _GAUGE_KEYS.get((partition, scope))
    if found is None:
        if len(_GAUGE_KEYS) > 50_000:  # scopes are open-ended (queues): stay bounded
            _GAUGE_KEYS.clear()
        found = _GAUGE_KEYS[(partition, scope)] = (
            keys.partition_waiting_key(partition, scope),
            keys.partition_active_key(partition, scope),
        )
    return found


def agent_log_ops(plan: Plan, key: KeyList, partition: int) -> list[tuple[int, int, list[str]]]:
    """Each agent's state changes in the step: its log and version keys (KEYS indexes, named in
    the order agents first appear) and `ms, event id|state, ...` in the plan's order. apply.lua
    adds them in one ZADD and trims, expires and versions the log once per agent, not once per
    change: the same log, as each of those repeats the one before within a step."""
    by_agent: defaultdict[str, list[str]] = defaultdict(list)
    for agent, event_id, state, ms in plan.agent_log:
        by_agent[agent] += (str(ms), f"{event_id}|{state}")
    return [
        (
            key(keys.partition_agent_log_key(partition, agent)),
            key(keys.partition_agent_log_version_key(partition, agent)),
            entries,
        )
        for agent, entries in by_agent.items()
    ]


def gauge_ops(plan: Plan, key: KeyList, partition: int) -> list[tuple[str, int, list[str]]]:
    """The sorted-set moves of contacts waiting and open now: every removal (ZREM's members by
    set), then every addition (ZADD's `since ms, contact` by set), one command per set and kind.
    A plan moves each contact once, removals before additions: one by one, no contact was added
    to a set before it was removed from it either, so the sets end the same."""
    # By scope first, its two sets named once per step rather than once per move.
    removed: defaultdict[str, list[str]] = defaultdict(list)  # scope -> contacts, both sets
    waiting: defaultdict[str, list[str]] = defaultdict(list)  # scope -> since ms, contact, ...
    active: defaultdict[str, list[str]] = defaultdict(list)
    for move in plan.gauges:
        contact = move.contact
        for scope in move.old.scopes:
            removed[scope].append(contact)
        new = move.new
        for since_ms, into in ((new.waiting_since_ms, waiting), (new.active_since_ms, active)):
            if since_ms is not None:
                since = str(since_ms)
                for scope in new.scopes:
                    into[scope].extend((since, contact))
    ops: list[tuple[str, int, list[str]]] = []
    for scope, contacts in removed.items():
        ops += [("rem", key(name), contacts) for name in gauge_keys(partition, scope)]
    ops += [("add", key(gauge_keys(partition, s)[0]), items) for s, items in waiting.items()]
    ops += [("add", key(gauge_keys(partition, s)[1]), items) for s, items in active.items()]
    return ops


def rollup(
    deltas: Mapping[tuple[int, str], Mapping[str, int]],
) -> dict[tuple[str, int, str], dict[str, int]]:
    """Minute deltas plus their sums per hour bucket, zeros dropped."""
    out: dict[tuple[str, int, str], dict[str, int]] = {}
    for (minute, scope), fields in deltas.items():
        for res in keys.RESOLUTIONS:
            cell = out.setdefault((res, keys.bucket_start_s(minute, res), scope), {})
            for name, value in fields.items():
                cell[name] = cell.get(name, 0) + value
    return {cell: {n: v for n, v in f.items() if v} for cell, f in out.items() if any(f.values())}


def _outcome(partition: int, reply: Any) -> Outcome:
    if isinstance(reply, Exception):
        raise reply
    code = int(reply[0])
    if code == APPLIED:
        return Outcome(partition, code)
    return Outcome(partition, code, _text(reply[1]), _text(reply[2]))


def _group_sheet(version: Any, members: Any, seen: Any) -> GroupSheet | None:
    """A group's hash fields as read (None: no sheet)."""
    if version is None:
        return None
    return GroupSheet.from_json(
        {"v": int(version), "m": orjson.loads(members or b"{}"), "s": orjson.loads(seen or b"{}")}
    )


def _version(sheet: GroupSheet | None) -> int:
    return 0 if sheet is None else sheet.version


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
