"""The alert loop: every few seconds the lock holder evaluates every rule and queues pages.

Every api replica runs this service; only the one holding the Redis lock evaluates and
delivers. The state it evaluates from is read back from Redis on every tick, so when the lock
passes to another replica (the holder stopped renewing it), the new holder continues from the
same pending and firing alerts: no second page for an alert that already fired.

Timing: a breach is seen at most one interval after it lands in Redis and fires `for_seconds`
later; with the defaults (5 s, 45 s) a spike pages within 50 s plus delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.alerting import AlertRule
from services.clock import Clock
from services.keys import alert_id
from services.settings import Settings

from ..live_reader import LiveReader
from ..snapshot import SCOPE_MEMORY_S
from .alert_state import AlertStore, Change, LeaderLock, Notice, view
from .baseline import BaselineSource, NoBaseline
from .notify import Links, Receiver, Sender, receivers
from .observe import Observer, covered
from .rules import AlertState, Transition, step

log = logging.getLogger("ccpulse.alerts")

OUTBOX_MAX_AGE_S = 3600.0  # a page that could not be delivered for an hour is dropped


class AlertService:
    def __init__(
        self,
        redis: Redis,
        reader: LiveReader,
        settings: Settings,
        clock: Clock,
        baseline: BaselineSource | None = None,
    ) -> None:
        self.clock = clock
        self.rules: dict[str, AlertRule] = {r.name: r for r in settings.alert_rules}
        self.interval_s = settings.alert_eval_interval_seconds
        self.lock = LeaderLock(redis, ttl_s=max(3 * self.interval_s, 2.0))
        self.store = AlertStore(redis)
        self.observer = Observer(reader, baseline or NoBaseline())
        self.receivers: dict[str, Receiver] = {r.name: r for r in receivers(settings)}
        self.attempts = settings.alert_notify_attempts
        self.links = Links.of(settings)
        self.resend_s = settings.alertmanager_resend_seconds
        self._resent_at = 0.0  # monotonic: the last re-send of firing alerts to Alertmanager
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._adopted = False  # legacy alert keys moved (once per process, by a leader)
        self._client: httpx.AsyncClient | None = None
        self.sender: Sender | None = None

    async def start(self) -> None:
        """Nothing to do without rules (`CCPULSE_ALERT_RULES=[]` switches the alerter off)."""
        if not self.rules:
            return
        self._client = httpx.AsyncClient(follow_redirects=False)
        self.sender = Sender(self._client, self.attempts, self.links, self.clock.now)
        self._tasks = [
            asyncio.create_task(self._evaluate_loop()),
            asyncio.create_task(self._deliver_loop()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._tasks:
            with contextlib.suppress(RedisError, OSError):
                await self.lock.release()  # let another replica take over at once
        if self._client is not None:
            await self._client.aclose()

    # --- evaluation ---
    async def _evaluate_loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                if await self.lock.hold():
                    await self._adopt_legacy()
                    if await self.evaluate(self.clock.now()):
                        self._wake.set()
            except (RedisError, OSError) as exc:
                log.warning("alert evaluation skipped: %s", exc)
            except Exception:  # a bad stored state or a bug must not end alerting for good
                log.exception("alert evaluation failed")
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def _adopt_legacy(self) -> None:
        if not self._adopted:
            moved = await self.store.adopt_legacy()
            if moved:
                log.warning("moved %d alert entries from the keys of an earlier release", moved)
            self._adopted = True

    async def evaluate(self, now: float) -> list[Transition]:
        """One pass over every rule; returns the transitions it saved (none if not leader)."""
        stored = await self.store.states()
        active = await self.observer.reader.active_scopes(int(now) - SCOPE_MEMORY_S)
        change, moves, firing = Change(), [], []
        for rule in self.rules.values():
            mine = [s for s in stored.values() if s.rule == rule.name]
            observed = await self.observer.observe(rule, covered(rule, active, mine), now)
            for (channel, queue), obs in observed.items():
                aid = alert_id(rule.name, channel, queue)
                new, done = step(rule, stored.get(aid), obs, now, channel=channel, queue=queue)
                self._record(change, rule, stored.get(aid), new, done)
                moves += done
                firing += [view(new, rule)] if new.phase == "firing" else []
        for aid, old in stored.items():
            if old.rule not in self.rules:
                log.warning("alert %s dropped: its rule is no longer configured", aid)
                change.drop.append(aid)
        if any(t.notified for t in moves):
            change.publish = socket_message(firing)
        return moves if await self.store.save(self.lock, change) else []

    def _record(
        self,
        change: Change,
        rule: AlertRule,
        old: AlertState | None,
        new: AlertState,
        done: list[Transition],
    ) -> None:
        if new.active:
            change.put[new.id] = new.model_dump_json()
        elif old is not None:
            change.drop.append(new.id)
        for transition in done:
            if transition.notified:
                log.info(
                    "alert %s %s (value %s, limit %s)",
                    new.id,
                    transition.kind,
                    new.value,
                    new.limit,
                )
                change.notify(transition, rule, sorted(self.receivers))

    # --- delivery ---
    async def _deliver_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._wake.clear()
            if not self.lock.held:
                continue
            try:
                await self.deliver()
                if time.monotonic() - self._resent_at >= self.resend_s:
                    await self.resend()  # after deliver(): never overtakes a queued resolve
            except (RedisError, OSError) as exc:
                log.warning("alert delivery postponed: %s", exc)
            except Exception:
                log.exception("alert delivery failed")

    async def deliver(self) -> None:
        """Every receiver gets its queued notifications in order, receivers in parallel."""
        queued: dict[str, list[tuple[str, Notice]]] = {}
        for field, target, notice in await self.store.outbox():
            queued.setdefault(target, []).append((field, notice))
        await asyncio.gather(*(self._deliver_to(t, items) for t, items in queued.items()))

    async def resend(self) -> None:
        """Every firing alert to every Alertmanager again, or it would resolve it on its own."""
        managers = [r for r in self.receivers.values() if r.kind == "alertmanager"]
        if not managers:
            return
        assert self.sender is not None, "resend() runs after start()"
        firing = [
            Notice(kind="firing", at=s.fired_at, alert=s, rule=self.rules[s.rule])
            for s in (await self.store.states()).values()
            if s.phase == "firing" and s.fired_at is not None and s.rule in self.rules
        ]
        self._resent_at = time.monotonic()
        await asyncio.gather(*(self.sender.resend(m, firing) for m in managers))

    async def _deliver_to(self, target: str, items: list[tuple[str, Notice]]) -> None:
        receiver = self.receivers.get(target)
        assert self.sender is not None, "deliver() runs after start()"
        for field, notice in items:
            if receiver is None:
                log.warning("receiver %s is no longer configured: %s dropped", target, field)
            elif await self.sender.send(receiver, notice) == "failed":
                if self.clock.now() - notice.at < OUTBOX_MAX_AGE_S:
                    return  # keep the order: a resolve never overtakes its trigger
                log.error("%s: giving up on %s after an hour", target, field)
            await self.store.sent(field)

    # --- reading, for REST and the websocket ---
    async def overview(self, recent: int = 50) -> dict[str, Any]:
        states = await self.store.states()
        views = [view(s, self.rules.get(s.rule)) for s in states.values()]
        return {
            "firing": [v for v in views if v["state"] == "firing"],
            "pending": [v for v in views if v["state"] == "pending"],
            "recent": await self.store.history(recent),
            "rules": [r.model_dump() for r in self.rules.values()],
            "evaluation_interval_seconds": self.interval_s,
            "evaluating": self.lock.held,  # this replica holds the lock (one replica does)
        }

    async def current_message(self) -> str | None:
        """The firing alerts as a websocket message, for a client that just connected."""
        firing = (await self.overview(recent=0))["firing"]
        return socket_message(firing) if firing else None


def socket_message(firing: list[dict[str, Any]]) -> str:
    return json.dumps({"type": "alerts", "data": firing})
