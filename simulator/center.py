"""What the live simulator's contact center is made of: channels (share of arrivals, queues,
customer patience, handle and after-contact work), what an agent can hold at once, the team's
roles, the daily arrival curve and a team sized for it. Pure: numbers and small functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from .history import arrival_share
from .scenario import CHANNEL_WEIGHTS, QUEUES


@dataclass(frozen=True)
class ChannelModel:
    """One channel's customers and work; times are means in seconds."""

    queues: tuple[str, ...]
    share: float  # of all arrivals
    handle_s: float
    wrap_s: float
    patience_s: float | None  # None: written contacts are not withdrawn while they wait
    max_wait_s: float | None = None  # the platform times the contact out of the queue


_TOTAL = sum(CHANNEL_WEIGHTS.values())
CHANNELS: dict[str, ChannelModel] = {
    "voice": ChannelModel(QUEUES["voice"], 55 / _TOTAL, 300, 30, 120, 600),
    "chat": ChannelModel(QUEUES["chat"], 25 / _TOTAL, 480, 20, 240),
    "email": ChannelModel(QUEUES["email"], 12 / _TOTAL, 600, 60, None),
    "sms": ChannelModel(QUEUES["sms"], 5 / _TOTAL, 300, 15, None),
    "social": ChannelModel(QUEUES["social"], 3 / _TOTAL, 300, 15, None),
}
QUEUE_CHANNEL = {q: channel for channel, model in CHANNELS.items() for q in model.queues}

# What one agent holds at once: a voice call alone, or written contacts up to these limits.
CAPACITY = {"voice": 1, "chat": 3, "email": 2, "sms": 2, "social": 2}
MAX_WRITTEN = 3
MIN_PATIENCE_S = 10.0  # hardly anyone hangs up in the first seconds
RING_S = (2.0, 8.0)  # from routing to the agent's answer (the agent stays `available`)
IVR_STAGES = (("welcome", 0.01), ("menu", 0.02), ("identify", 0.01))  # (stage, hang-up chance)

# Not-ready reasons: (reason, weight, mean minutes); lunch only around midday.
BREAKS = (("break", 6, 10.0), ("training", 1, 20.0), ("meeting", 1, 15.0))
LUNCH = ("lunch", 30.0)
BREAK_EVERY_S = (45 * 60, 120 * 60)  # between an agent's not-ready periods
MAX_NOT_READY_SHARE = 0.15  # the floor keeps most of its agents ready
TARGET_OCCUPANCY = 0.85


@dataclass(frozen=True)
class Role:
    """Agents of one role serve these queues (a skill set)."""

    name: str
    queues: tuple[str, ...]
    concurrency: float  # contacts worked at once, on average, for sizing


ROLES = (
    Role("voice", QUEUES["voice"], 1.0),
    Role("digital", (*QUEUES["chat"], *QUEUES["sms"], *QUEUES["social"]), 2.5),
    Role("email", (*QUEUES["email"], *QUEUES["sms"]), 2.0),
)


@dataclass(frozen=True)
class CenterConfig:
    """Knobs of the live floor. `team` fixes the agents per role; None sizes it from the rate,
    following the arrival curve through the day."""

    peak_rate_per_s: float = 0.2
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    team: Mapping[str, int] | None = None
    breaks: bool = True
    flat_curve: bool = False  # the peak rate at every hour (tests of load, not of the curve)


def curve_share(epoch_s: float, zone: ZoneInfo) -> float:
    """The share of the peak arrival rate at this instant, by its local hour (the demo history's
    working-day curve, so live traffic and forecasts agree in shape)."""
    return arrival_share(datetime.fromtimestamp(epoch_s, zone))


def arrival_rate(config: CenterConfig, epoch_s: float) -> float:
    """Contacts per second arriving at this instant."""
    share = 1.0 if config.flat_curve else curve_share(epoch_s, config.zone)
    return config.peak_rate_per_s * share


def role_workload(role: Role, rate_per_s: float) -> float:
    """Erlangs of work this role's queues bring at this arrival rate (a queue served by two
    roles is split between them)."""
    work = 0.0
    for queue in role.queues:
        channel = QUEUE_CHANNEL[queue]
        model = CHANNELS[channel]
        per_queue = rate_per_s * model.share / len(model.queues)
        servers = sum(queue in r.queues for r in ROLES)
        work += per_queue * (model.handle_s + model.wrap_s) / servers
    return work / role.concurrency


def agents_needed(workload: float) -> int:
    """Square-root staffing, with enough slack that occupancy stays near the target."""
    if workload <= 0:
        return 1
    return max(1, math.ceil(workload / TARGET_OCCUPANCY + math.sqrt(workload)))


def team_for(config: CenterConfig, rate_per_s: float) -> dict[str, int]:
    """Agents each role needs at this arrival rate (or the fixed team)."""
    if config.team is not None:
        return {role.name: int(config.team.get(role.name, 0)) for role in ROLES}
    return {role.name: agents_needed(role_workload(role, rate_per_s)) for role in ROLES}


def peak_team(config: CenterConfig) -> dict[str, int]:
    """The whole roster: the team the peak hour needs."""
    return team_for(config, config.peak_rate_per_s)
