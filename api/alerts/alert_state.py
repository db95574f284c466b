"""Alert state in Redis: the leader lock, alert states, the notification outbox and history.

Only the replica holding the lock writes states and queues notifications, and it does both in
one Lua step that first checks it still holds the lock: a replica that lost the lock (paused,
partitioned) cannot queue a second page. The outbox keeps each (notification, receiver) until
it is delivered, so a replica that takes over sends what the previous one had not.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from services import keys, locks
from services.alerting import AlertRule, severity_of

from ..live_reader import iso
from .rules import AlertState, Transition

HISTORY_LENGTH = 200  # alert transitions kept in keys.ALERT_HISTORY
# KEYS: lock, states, outbox, history (one slot). ARGV: token, change (JSON), history length,
# the channel to publish on (a channel, not a key: on a cluster it reaches every node).
SAVE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
local change = cjson.decode(ARGV[2])
for id, state in pairs(change.put) do redis.call('hset', KEYS[2], id, state) end
for _, id in ipairs(change.drop) do redis.call('hdel', KEYS[2], id) end
for id, notice in pairs(change.outbox) do redis.call('hset', KEYS[3], id, notice) end
for _, item in ipairs(change.history) do redis.call('lpush', KEYS[4], item) end
redis.call('ltrim', KEYS[4], 0, tonumber(ARGV[3]) - 1)
if change.publish ~= '' then redis.call('publish', ARGV[4], change.publish) end
return 1
"""


class LeaderLock:
    """The `services.locks` lock: one evaluating replica; another takes over after `ttl_s`."""

    def __init__(self, redis: Redis, ttl_s: float, key: str = keys.ALERTS_LEADER_LOCK) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = max(1000, int(ttl_s * 1000))
        self.token = secrets.token_hex(16)
        self._valid_until = 0.0  # monotonic: we hold it at least until then

    @property
    def held(self) -> bool:
        return time.monotonic() < self._valid_until

    async def hold(self) -> bool:
        """Take the lock if free, renew it if ours; False when another replica has it."""
        started = time.monotonic()
        got = bool(await self.redis.eval(locks.HOLD, 1, self.key, self.token, self.ttl_ms))
        self._valid_until = started + self.ttl_ms / 1000 * 0.9 if got else 0.0
        return bool(got)

    async def release(self) -> None:
        self._valid_until = 0.0
        await self.redis.eval(locks.RELEASE, 1, self.key, self.token)


class Notice(BaseModel):
    """One notification to send: the transition and the rule as they were when it happened."""

    model_config = ConfigDict(frozen=True)

    kind: str  # firing | resolved
    at: float
    alert: AlertState
    rule: AlertRule


@dataclass
class Change:
    """What one evaluation writes; saved atomically by `AlertStore.save`."""

    put: dict[str, str] = field(default_factory=dict)
    drop: list[str] = field(default_factory=list)
    outbox: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)
    publish: str = ""

    def notify(self, transition: Transition, rule: AlertRule, targets: list[str]) -> None:
        notice = Notice(kind=transition.kind, at=transition.at, alert=transition.state, rule=rule)
        nid = keys.alert_notification_id(notice.at, notice.alert.id, notice.kind)
        for target in targets:
            self.outbox[keys.alert_outbox_field(nid, target)] = notice.model_dump_json()
        self.history.append(json.dumps(view(transition.state, rule)))


def view(state: AlertState, rule: AlertRule | None) -> dict[str, Any]:
    """The public shape (REST, websocket, wallboard banner) of one alert."""
    started = state.fired_at if state.fired_at is not None else state.pending_since
    return {
        "id": state.id,
        "rule": state.rule,
        "name": state.rule,
        "severity": severity_of(rule, state.baseline) if rule else None,
        "metric": rule.metric if rule else None,
        "state": state.phase,
        "channel": state.channel,
        "queue": state.queue,
        "value": state.value,
        "threshold": state.limit,
        "baseline": state.baseline,
        "volume": state.volume,
        # The window `value` is for: the short one while only it is breached.
        "window_seconds": state.window_seconds or (rule.window_seconds if rule else None),
        "started_at": None if started is None else iso(started),
        "breach_seen_at": None if state.pending_since is None else iso(state.pending_since),
        "fired_at": None if state.fired_at is None else iso(state.fired_at),
        "resolved_at": None if state.resolved_at is None else iso(state.resolved_at),
        "evaluated_at": None if state.evaluated_at is None else iso(state.evaluated_at),
    }


class AlertStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def states(self) -> dict[str, AlertState]:
        raw = await self.redis.hgetall(keys.ALERT_STATES)
        states = (AlertState.model_validate_json(v) for v in raw.values())
        return {s.id: s for s in states}

    async def history(self, limit: int = 50) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        raw = await self.redis.lrange(keys.ALERT_HISTORY, 0, limit - 1)
        return [json.loads(item) for item in raw]

    async def save(self, lock: LeaderLock, change: Change) -> bool:
        """Write the change only while `lock` is still ours; False means someone else leads."""
        body = {
            "put": change.put,
            "drop": change.drop,
            "outbox": change.outbox,
            "history": change.history,
            "publish": change.publish,
        }
        keys_ = (
            keys.ALERTS_LEADER_LOCK,
            keys.ALERT_STATES,
            keys.ALERT_OUTBOX,
            keys.ALERT_HISTORY,
        )
        args = (lock.token, json.dumps(body), HISTORY_LENGTH, keys.ALERTS_CHANNEL)
        return bool(await self.redis.eval(SAVE, len(keys_), *keys_, *args))

    async def adopt_legacy(self) -> int:
        """Move states, undelivered notices and history from the keys of releases before the
        `{alerts}` hash tag (keys.LEGACY_ALERT_*); what the new keys hold already wins. Returns
        the entries moved. One key at a time, so it runs on a cluster too; a crash midway
        leaves the rest for the next leader (at worst a history line twice)."""
        moved = 0
        for old, new in (
            (keys.LEGACY_ALERT_STATES, keys.ALERT_STATES),
            (keys.LEGACY_ALERT_OUTBOX, keys.ALERT_OUTBOX),
        ):
            entries = await self.redis.hgetall(old)
            for name, value in entries.items():
                moved += int(await self.redis.hsetnx(new, name, value))
            if entries:
                await self.redis.delete(old)
        history = await self.redis.lrange(keys.LEGACY_ALERT_HISTORY, 0, HISTORY_LENGTH - 1)
        if history:  # older than anything under the new key: after it (newest first)
            await self.redis.rpush(keys.ALERT_HISTORY, *history)
            await self.redis.ltrim(keys.ALERT_HISTORY, 0, HISTORY_LENGTH - 1)
            await self.redis.delete(keys.LEGACY_ALERT_HISTORY)
            moved += len(history)
        return moved

    async def outbox(self) -> list[tuple[str, str, Notice]]:
        """(field, target, notice) in the order the transitions happened."""
        raw = await self.redis.hgetall(keys.ALERT_OUTBOX)
        out = []
        for name in sorted(raw, key=_text):
            target = _text(name).rpartition("#")[2]
            out.append((_text(name), target, Notice.model_validate_json(raw[name])))
        return out

    async def sent(self, outbox_field: str) -> None:
        """Delivered (or given up): never sent again, whoever leads next."""
        await self.redis.hdel(keys.ALERT_OUTBOX, outbox_field)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
