"""A realistic contact-center day as contract events: arrivals by channel, IVR stages with
abandonment at each, queue waits that grow when agents are busy, handling, resolution, surveys.

Pure and seeded, so the same seed gives the same day: the simulator posts it live, the tests
post it as a corpus and recount it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

QUEUES = {
    "voice": ("sales", "support", "billing"),
    "chat": ("chat-support", "chat-sales"),
    "email": ("email-support",),
    "sms": ("sms-care",),
    "social": ("social-care",),
}
CHANNEL_WEIGHTS = {"voice": 55, "chat": 25, "email": 12, "sms": 5, "social": 3}
IVR_STAGES = (("welcome", 0.03), ("menu", 0.05), ("identify", 0.02))
ISSUES = ("billing", "technical", "account", "order", "cancel")
# Mean seconds to the first agent answer when an agent is free, per channel.
ANSWER_MEAN_S = {"voice": 15, "chat": 40, "email": 3 * 3600, "sms": 1200, "social": 1800}
HANDLE_MEAN_S = {"voice": 300, "chat": 480, "email": 600, "sms": 300, "social": 300}
PATIENCE_MEAN_S = {"voice": 120, "chat": 300}


def iso(epoch_s: float) -> str:
    return (
        datetime.fromtimestamp(epoch_s, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@dataclass
class Day:
    """Knobs of a generated day."""

    seed: int = 1
    agents: int = 12
    customers: int = 400
    busy_factor: float = 1.0  # >1 makes queues longer and abandons more likely
    surveys: float = 0.3
    prefix: str = "sim"


@dataclass
class Builder:
    day: Day
    rng: random.Random
    events: list[dict[str, Any]] = field(default_factory=list)
    serial: int = 0

    def emit(self, contact: str | None, kind: str, t: float, **extra: Any) -> None:
        self.serial += 1
        event = {"id": f"{self.day.prefix}-{self.serial}", "type": kind, "time": iso(t)}
        if contact is not None:
            event["contact"] = contact
        event.update({k: v for k, v in extra.items() if v is not None})
        self.events.append(event)


def contact_events(b: Builder, number: int, start: float) -> None:
    """One contact's whole life, from offer to survey."""
    rng, day = b.rng, b.day
    channel = rng.choices(list(CHANNEL_WEIGHTS), weights=list(CHANNEL_WEIGHTS.values()))[0]
    queue = rng.choice(QUEUES[channel])
    contact = f"{day.prefix}-c{number}"
    customer = (
        f"+4420{rng.randrange(day.customers):07d}"
        if channel == "voice"
        else f"customer{rng.randrange(day.customers)}@example.com"
    )
    issue = rng.choice(ISSUES)
    t = start
    b.emit(
        contact, "contact.offered", t, channel=channel, queue=queue, customer=customer, issue=issue
    )
    if channel == "voice":
        for stage, p_abandon in IVR_STAGES:
            t += rng.uniform(2, 12)
            b.emit(contact, "contact.ivr", t, stage=stage)
            if rng.random() < p_abandon * day.busy_factor:
                b.emit(contact, "contact.abandoned", t + rng.uniform(1, 20))
                return
    t += rng.uniform(0.5, 3)
    b.emit(contact, "contact.queued", t, queue=queue, stage="queue")
    wait = rng.expovariate(1 / (ANSWER_MEAN_S[channel] * day.busy_factor))
    patience = rng.expovariate(1 / PATIENCE_MEAN_S.get(channel, 10**9))
    if patience < wait:
        b.emit(contact, "contact.abandoned", t + patience, stage="queue")
        return
    if channel == "voice" and wait > 600:
        b.emit(contact, "contact.timed_out", t + 600, reason="queue timeout")
        return
    handle_contact(b, contact, channel, queue, issue, t + wait)


def handle_contact(
    b: Builder, contact: str, channel: str, queue: str, issue: str, t: float
) -> None:
    rng = b.rng
    agent = f"agent-{rng.randrange(b.day.agents):02d}"
    b.emit(contact, "contact.answered", t, agent=agent, queue=queue)
    b.emit(None, "agent.state", t, agent=agent, state="on_contact")
    handle = rng.lognormvariate(0, 0.5) * HANDLE_MEAN_S[channel]
    if rng.random() < 0.08:
        b.emit(contact, "contact.transferred", t + handle / 2, agent=agent, reason="skill")
    end = t + handle
    b.emit(contact, "contact.completed", end, agent=agent)
    b.emit(None, "agent.state", end, agent=agent, state="wrap_up")
    wrap = rng.uniform(5, 60)
    if channel == "voice" and rng.random() < 0.3:
        # Some platforms report completion again when after-contact work ends.
        b.emit(contact, "contact.completed", end + wrap, agent=agent)
    b.emit(None, "agent.state", end + wrap, agent=agent, state="available")
    if rng.random() < 0.06:
        b.emit(contact, "contact.escalated", end, reason=rng.choice(("supervisor", "tier2")))
    else:
        b.emit(contact, "contact.resolved", end, first_contact=rng.random() < 0.75, issue=issue)
    if rng.random() < b.day.surveys:
        b.emit(contact, "survey.response", end + 60, csat=rng.randint(1, 5), nps=rng.randint(0, 10))


def generate(day: Day, start: float, contacts: int, rate_per_s: float) -> list[dict[str, Any]]:
    """`contacts` contacts arriving as a Poisson stream from `start`, events sorted by time."""
    b = Builder(day, random.Random(day.seed))
    t = start
    for number in range(contacts):
        t += b.rng.expovariate(rate_per_s)
        contact_events(b, number, t)
    return sorted(b.events, key=lambda e: e["time"])


def shuffle_within_contacts(
    events: list[dict[str, Any]], seed: int, dup_rate: float
) -> list[dict[str, Any]]:
    """Deliveries as platforms make them: reordered, with some events sent twice."""
    rng = random.Random(seed)
    out = list(events)
    rng.shuffle(out)
    extra = [e for e in events if rng.random() < dup_rate]
    for e in extra:
        out.insert(rng.randrange(len(out) + 1), dict(e))
    return out
