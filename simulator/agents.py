"""The floor's agents: what each holds, the five states and which one follows from what it holds
and its schedule, what it may take next, and the roster. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from . import center
from .center import ROLES

AVAILABLE, ON_CONTACT, WRAP_UP, NOT_READY, OFFLINE = (
    "available",
    "on_contact",
    "wrap_up",
    "not_ready",
    "offline",
)
ROUTABLE = (AVAILABLE, ON_CONTACT)


@dataclass
class Agent:
    name: str
    role: str
    queues: frozenset[str]
    state: str = OFFLINE
    reason: str | None = None
    reserved: dict[str, str] = field(default_factory=dict)  # contact -> channel, ringing
    held: dict[str, str] = field(default_factory=dict)  # contact -> channel, answered
    wrap_until: float = 0.0
    break_due: float = float("inf")  # a not-ready period is wanted from then on
    break_until: float = 0.0
    logged_in: bool = False
    leaving: bool = False
    ready_since: float = 0.0

    def load(self) -> dict[str, str]:
        return {**self.held, **self.reserved}


def can_take(agent: Agent, channel: str, queue: str) -> bool:
    """Free capacity for one more contact of this channel on a queue the agent serves, in a
    state that allows it: a voice call alone, written contacts up to their limits."""
    if queue not in agent.queues or agent.state not in ROUTABLE:
        return False
    load = list(agent.load().values())
    if channel == "voice" or "voice" in load:
        return not load and agent.state == AVAILABLE
    same = sum(c == channel for c in load)
    return same < center.CAPACITY[channel] and len(load) < center.MAX_WRITTEN


def state_of(agent: Agent, now: float, may_break: bool) -> tuple[str, str | None]:
    """(state, not-ready reason) from what the agent holds, then its wrap-up, shift and breaks:
    `on_contact` exactly while it holds a contact; a ringing contact leaves it available."""
    if agent.held:
        return ON_CONTACT, None
    if agent.wrap_until > now:
        return WRAP_UP, None
    if agent.reserved:
        return AVAILABLE, None
    if agent.leaving or not agent.logged_in:
        return OFFLINE, None
    if agent.break_until > now:
        return NOT_READY, agent.reason
    if agent.break_due <= now and may_break:
        return NOT_READY, None
    return AVAILABLE, None


def break_kind(rng: random.Random, now: float, zone: ZoneInfo) -> tuple[str, float]:
    """(reason, mean minutes) of a not-ready period starting now: lunch around midday."""
    if 11 <= datetime.fromtimestamp(now, zone).hour < 14 and rng.random() < 0.5:
        return center.LUNCH
    weights = [w for _, w, _ in center.BREAKS]
    reason, _, minutes = rng.choices(center.BREAKS, weights=weights)[0]
    return reason, minutes


def roster(team: dict[str, int]) -> dict[str, Agent]:
    """Every agent of the peak team, by name, with its role's queues."""
    agents: dict[str, Agent] = {}
    for role in ROLES:
        for _ in range(team[role.name]):
            name = f"agent-{len(agents) + 1:03d}"
            agents[name] = Agent(name, role.name, frozenset(role.queues))
    return agents
