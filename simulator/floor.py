"""The live contact-center floor as a discrete-event simulation: contacts arrive on the daily
curve, wait in their queue, are routed only to an agent with free capacity on a queue it serves,
are handled and wrapped up, or abandoned when the customer's patience runs out; agents log in
and out with the schedule and take breaks. Every agent.state event follows from what the agent
holds: `on_contact` exactly while it holds a contact.

Pure and seeded: `advance(until)` returns the contract events up to that instant, in time order.
The async shell (realtime.py) calls it with its injected clock and posts what comes back.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import center
from .agents import (
    AVAILABLE,
    NOT_READY,
    OFFLINE,
    ROUTABLE,
    Agent,
    break_kind,
    can_take,
    roster,
    state_of,
)
from .center import CHANNELS, ROLES, CenterConfig

STAFF_EVERY_S = 60.0


def iso(epoch_s: float) -> str:
    stamp = datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


@dataclass
class Contact:
    id: str
    channel: str
    queue: str
    issue: str
    patience_at: float = float("inf")  # when the customer gives up waiting (inf: never)
    agent: str | None = None  # reserved for, then held by
    queued: bool = False
    answered: bool = False
    done: bool = False


class Floor:
    """The simulated center from `start`; events are dicts in the contract's shape."""

    def __init__(self, config: CenterConfig, seed: int, start: float, prefix: str) -> None:
        self.config, self.rng, self.now, self.prefix = config, random.Random(seed), start, prefix
        self.agents = roster(center.peak_team(config))
        self.on_floor: dict[str, Agent] = {}  # logged in (or logging out), by name
        self.waiting: dict[str, Contact] = {}  # in arrival order
        self.events: list[dict[str, Any]] = []
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._serial = itertools.count(1)
        self._numbers = itertools.count(1)
        self._staff()
        self._next_arrival(start)

    # --- the loop ---

    def advance(self, until: float) -> list[dict[str, Any]]:
        """Run the floor up to `until` and return the events that happened, in time order."""
        while self._timers and self._timers[0][0] <= until:
            at, _, action = heapq.heappop(self._timers)
            self.now = max(self.now, at)
            action()
            self._route()
        self.now = max(self.now, until)
        out, self.events = self.events, []
        return out

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (max(when, self.now), next(self._order), action))

    def emit(self, kind: str, contact: str | None = None, **extra: Any) -> None:
        event: dict[str, Any] = {
            "id": f"{self.prefix}-{next(self._serial):09d}",  # ids sort as they were made
            "type": kind,
            "time": iso(self.now),
        }
        if contact is not None:
            event["contact"] = contact
        event.update({k: v for k, v in extra.items() if v is not None})
        self.events.append(event)

    # --- arrivals ---

    def _next_arrival(self, after: float) -> None:
        """Thinning: candidates at the peak rate, kept with the curve's share at their time."""
        peak = self.config.peak_rate_per_s
        if peak <= 0:
            return
        t = after
        for _ in range(100_000):  # bounded: the curve never drops below 2 % of the peak
            t += self.rng.expovariate(peak)
            if self.rng.random() * peak <= center.arrival_rate(self.config, t):
                self.at(t, self._arrive)
                return

    def _arrive(self) -> None:
        self._next_arrival(self.now)
        rng = self.rng
        channel = rng.choices(list(CHANNELS), weights=[m.share for m in CHANNELS.values()])[0]
        model = CHANNELS[channel]
        number = next(self._numbers)
        contact = Contact(
            f"{self.prefix}-c{number:08d}",
            channel,
            rng.choice(model.queues),
            rng.choice(("billing", "technical", "account", "order", "cancel")),
        )
        customer = (
            f"+4420{rng.randrange(10**7):07d}"
            if channel == "voice"
            else f"customer{rng.randrange(5000)}@example.com"
        )
        self.emit(
            "contact.offered",
            contact.id,
            channel=channel,
            queue=contact.queue,
            customer=customer,
            issue=contact.issue,
        )
        if channel == "voice":
            self.at(self.now + rng.uniform(2, 12), lambda: self._ivr(contact, 0))
        else:
            self.at(self.now + rng.uniform(0.5, 3), lambda: self._enqueue(contact))

    def _ivr(self, contact: Contact, step: int) -> None:
        stage, hang_up = center.IVR_STAGES[step]
        self.emit("contact.ivr", contact.id, stage=stage)
        if self.rng.random() < hang_up:
            self.at(self.now + self.rng.uniform(1, 20), lambda: self._abandon(contact))
        elif step + 1 < len(center.IVR_STAGES):
            self.at(self.now + self.rng.uniform(2, 12), lambda: self._ivr(contact, step + 1))
        else:
            self.at(self.now + self.rng.uniform(0.5, 3), lambda: self._enqueue(contact))

    def _enqueue(self, contact: Contact) -> None:
        self.emit("contact.queued", contact.id, queue=contact.queue, stage="queue")
        self.waiting[contact.id] = contact
        contact.queued = True
        patience = CHANNELS[contact.channel].patience_s
        if patience is not None:
            extra = self.rng.expovariate(1 / (patience - center.MIN_PATIENCE_S))
            contact.patience_at = self.now + center.MIN_PATIENCE_S + extra
            self.at(contact.patience_at, lambda: self._abandon(contact))
        max_wait = CHANNELS[contact.channel].max_wait_s
        if max_wait is not None:
            self.at(self.now + max_wait, lambda: self._time_out(contact))

    # --- leaving the queue ---

    def _abandon(self, contact: Contact) -> None:
        """The customer hangs up: only while still waiting (in the IVR, the queue or ringing)."""
        if contact.answered or contact.done:
            return
        self.emit("contact.abandoned", contact.id, stage="queue" if contact.queued else None)
        self._drop(contact)

    def _time_out(self, contact: Contact) -> None:
        if contact.answered or contact.done:
            return
        self.emit("contact.timed_out", contact.id, reason="queue timeout")
        self._drop(contact)

    def _drop(self, contact: Contact) -> None:
        contact.done = True
        self.waiting.pop(contact.id, None)
        if contact.agent is not None:
            agent = self.agents[contact.agent]
            agent.reserved.pop(contact.id, None)
            self._settle(agent)

    # --- routing and handling ---

    def _route(self) -> None:
        """Oldest contact first, to the eligible agent ready the longest."""
        ready = [
            a
            for a in self.on_floor.values()
            if a.state in ROUTABLE and len(a.load()) < center.MAX_WRITTEN
        ]
        for contact in list(self.waiting.values()) if ready else []:
            agent = self._pick(contact, ready)
            if agent is None:
                continue
            del self.waiting[contact.id]
            contact.agent = agent.name
            agent.reserved[contact.id] = contact.channel
            lo, hi = center.RING_S
            self.at(self.now + self.rng.uniform(lo, hi), functools.partial(self._answer, contact))

    def _pick(self, contact: Contact, ready: list[Agent]) -> Agent | None:
        free = [a for a in ready if can_take(a, contact.channel, contact.queue)]
        if not free:
            return None
        return min(free, key=lambda a: (len(a.load()), a.ready_since, a.name))

    def _answer(self, contact: Contact) -> None:
        if contact.done:
            return
        agent = self.agents[str(contact.agent)]
        del agent.reserved[contact.id]
        agent.held[contact.id] = contact.channel
        contact.answered = True
        self.emit("contact.answered", contact.id, agent=agent.name, queue=contact.queue)
        self._settle(agent, contact.queue)
        handle = self.rng.lognormvariate(0, 0.5) * CHANNELS[contact.channel].handle_s
        self.at(self.now + handle, lambda: self._complete(contact))

    def _complete(self, contact: Contact) -> None:
        agent = self.agents[str(contact.agent)]
        del agent.held[contact.id]
        contact.done = True
        self.emit("contact.completed", contact.id, agent=agent.name)
        self._outcome(contact)
        if not agent.held and not agent.reserved:  # a chat ringing in: no wrap-up before it
            wrap = self.rng.uniform(0.5, 1.5) * CHANNELS[contact.channel].wrap_s
            agent.wrap_until = self.now + wrap
            self.at(agent.wrap_until, lambda: self._settle(agent))
        self._settle(agent, contact.queue)

    def _outcome(self, contact: Contact) -> None:
        rng = self.rng
        if rng.random() < 0.06:
            self.emit("contact.escalated", contact.id, reason=rng.choice(("supervisor", "tier2")))
        else:
            first = rng.random() < 0.75
            self.emit("contact.resolved", contact.id, first_contact=first, issue=contact.issue)
        if rng.random() < 0.3:
            csat, nps = rng.randint(1, 5), rng.randint(0, 10)
            self.at(self.now + 60, lambda: self._survey(contact.id, csat, nps))

    def _survey(self, contact: str, csat: int, nps: int) -> None:
        self.emit("survey.response", contact, csat=csat, nps=nps)

    # --- agent states ---

    def _settle(self, agent: Agent, queue: str | None = None) -> None:
        """The agent's state from what it holds and its schedule; an event when it changes."""
        state, reason = state_of(agent, self.now, self._may_break())
        if state == NOT_READY:
            self._start_break(agent)
            reason = agent.reason
        if state == OFFLINE:  # logging out ends a break too
            agent.logged_in = agent.leaving = False
            self.on_floor.pop(agent.name, None)
            agent.break_until = 0.0
        if state == agent.state and (state != NOT_READY or reason == agent.reason):
            return
        agent.state, agent.reason = state, reason
        if state == AVAILABLE:
            agent.ready_since = self.now
        self.emit("agent.state", agent=agent.name, state=state, reason=reason, queue=queue)

    def _may_break(self) -> bool:
        on = self.on_floor.values()
        out = sum(a.state == NOT_READY for a in on)
        return out + 1 <= center.MAX_NOT_READY_SHARE * len(on)

    def _start_break(self, agent: Agent) -> None:
        if agent.break_until > self.now:
            return
        reason, minutes = break_kind(self.rng, self.now, self.config.zone)
        agent.reason = reason
        agent.break_until = self.now + self.rng.uniform(0.6, 1.4) * minutes * 60
        agent.break_due = agent.break_until + self.rng.uniform(*center.BREAK_EVERY_S)
        self.at(agent.break_until, lambda: self._settle(agent))

    # --- the schedule ---

    def _staff(self) -> None:
        """Log agents in or out so each role has what the next minutes' arrivals need, and
        keep who the present arrivals need: a team sized only ahead left too few agents for
        the last minutes before a drop in the curve (a third of queued calls abandoned)."""
        rate = max(center.arrival_rate(self.config, t) for t in (self.now, self.now + 900))
        wanted = center.team_for(self.config, rate)
        for role in ROLES:
            members = [a for a in self.agents.values() if a.role == role.name]
            on = [a for a in members if a.logged_in and not a.leaving]
            for agent in [a for a in members if not a.logged_in][: wanted[role.name] - len(on)]:
                self._log_in(agent)
            for agent in on[wanted[role.name] :]:
                agent.leaving = True
                self._settle(agent)
        for agent in list(self.on_floor.values()):  # breaks that waited for a free moment
            if agent.state == AVAILABLE and not agent.reserved:
                self._settle(agent)
        self.at(self.now + STAFF_EVERY_S, self._staff)

    def _log_in(self, agent: Agent) -> None:
        agent.logged_in, agent.leaving = True, False
        self.on_floor[agent.name] = agent
        if self.config.breaks:
            agent.break_due = self.now + self.rng.uniform(0, center.BREAK_EVERY_S[1])
        for queue in sorted(agent.queues):  # the wallboard learns the queues it serves
            agent.state = OFFLINE
            self._settle(agent, queue)
