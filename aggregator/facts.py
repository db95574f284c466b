"""Fold events into a contact's fact sheet, so that order and duplicates cannot change the result.

Every field merges commutatively and idempotently: first-time facts keep the minimum time,
last-writer registers keep the value with the greatest (time, event id) stamp, and countable
events (transfers, escalations) are keyed by event id. Any delivery order gives the same sheet.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import msgspec

from services import agentstates
from services.contract import Event, EventType

Stamp = tuple[int, str]  # (event time in epoch ms, event id): a total order for registers


class Register(msgspec.Struct, frozen=True, gc=False):
    """Last-writer-wins by event time, ties broken by event id: the same winner in any order.

    Out of the cyclic collector's sight (`gc=False`: it holds a name, a number and an id, no
    container): a hot sheet holds about six, and the collector walked each of them."""

    value: Any
    ms: int
    id: str

    def stamp(self) -> Stamp:
        return (self.ms, self.id)


def merge_register(current: Register | None, value: Any, stamp: Stamp) -> Register:
    if current is None or stamp > (current.ms, current.id):  # `current.stamp()`, uncalled
        return Register(value, stamp[0], stamp[1])
    return current


def merge_min(current: int | None, ms: int) -> int:
    return ms if current is None or ms < current else current


def merge_max(current: int | None, ms: int) -> int:
    return ms if current is None or ms > current else current


# One shared empty mapping for the sheets' stages, transfers and escalations: most contacts
# have none of the last two, and an empty dict each took 3 x 80 bytes of every hot sheet. The
# mappings are never changed in place (a fold replaces them), so sheets and copies share them.
_NONE: Mapping[str, Any] = MappingProxyType({})


def _with(mapping: Mapping[str, Any], key: str, value: Any) -> Mapping[str, Any]:
    return {**mapping, key: value}


def _name(value: Any) -> Any:
    """Queue, agent, issue and stage names recur across contacts: one string object for each
    name, not one per event (the hot sheets hold up to CCPULSE_STATE_MAX_SHEETS of them)."""
    return sys.intern(value) if type(value) is str else value


class ContactFacts(msgspec.Struct, omit_defaults=True):
    """What is known of one contact; contributions are a pure function of this.

    A msgspec struct: `SHEET_ENCODER` writes the stored JSON (`to_json`'s, None and empty
    mappings left out) in one C call, a third of the time `to_json` and orjson took, and
    `copy` builds it in C too; both run for every contact of a batch."""

    contact: str
    channel: Register | None = None
    queue: Register | None = None
    agent: Register | None = None
    customer: Register | None = None
    issue: Register | None = None
    offered_ms: int | None = None
    queued_ms: int | None = None
    answered_ms: int | None = None
    answered_agent: Register | None = None
    abandoned_ms: int | None = None
    abandon_stage: Register | None = None
    timed_out_ms: int | None = None
    completed_ms: int | None = None
    resolved_ms: int | None = None
    first_contact: Register | None = None
    stages: Mapping[str, int] = _NONE  # stage -> first entry ms
    transfers: Mapping[str, int] = _NONE  # event id -> ms
    escalations: Mapping[str, Register] = _NONE  # event id -> reason
    csat: Register | None = None
    nps: Register | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored sheet as plain data (`SHEET_ENCODER` writes the same, as bytes)."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    def copy(self) -> ContactFacts:
        """A sheet the next fold may change while this one stays the 'old' side of the diff.
        Registers and mappings are never changed in place (merges replace them): shared, as
        msgspec's replace (a shallow copy, in C) shares them; this runs for every known contact."""
        return msgspec.structs.replace(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContactFacts:
        facts = cls(contact=data["contact"])
        for name in _REGISTERS:
            if name in data:
                reg = data[name]
                value = _name(reg["value"]) if name in _NAMES else reg["value"]
                setattr(facts, name, Register(value, reg["ms"], reg["id"]))
        for name in _TIMES:
            setattr(facts, name, data.get(name))
        if data.get("stages"):
            facts.stages = {_name(k): v for k, v in data["stages"].items()}
        if data.get("transfers"):
            facts.transfers = dict(data["transfers"])
        if data.get("escalations"):
            facts.escalations = {k: Register(**v) for k, v in data["escalations"].items()}
        return facts


_REGISTERS = (
    "channel",
    "queue",
    "agent",
    "customer",
    "issue",
    "answered_agent",
    "abandon_stage",
    "first_contact",
    "csat",
    "nps",
)
_NAMES = frozenset({"queue", "agent", "issue", "answered_agent", "abandon_stage"})
_TIMES = (
    "offered_ms",
    "queued_ms",
    "answered_ms",
    "abandoned_ms",
    "timed_out_ms",
    "completed_ms",
    "resolved_ms",
)
SHEET_ENCODER = msgspec.json.Encoder()  # a ContactFacts as `to_json` gives it, in bytes


def event_ms(event: Event) -> int:
    return int(event.time.timestamp() * 1000)


def fold(facts: ContactFacts, event: Event, ms: int | None = None) -> None:
    """Apply one event to the sheet in place; applying it again changes nothing. `ms` is
    `event_ms(event)` when the caller already has it (it costs a time-zone call per event)."""
    if ms is None:
        ms = event_ms(event)
    stamp = (ms, event.id)
    _fold_attributes(facts, event, stamp)
    handler = _HANDLERS.get(event.type)
    if handler is not None:
        handler(facts, event, ms, stamp)


def _fold_attributes(facts: ContactFacts, event: Event, stamp: Stamp) -> None:
    """`merge_register` of each attribute the event names, the name interned only when its
    register takes it (most events repeat the contact's channel and queue). A register is
    replaced exactly when `merge_register` would, its tuple comparison spelled out (no tuple
    or call per attribute: a quarter of this function's time)."""
    ms, id = stamp
    channel = event.channel
    if channel is not None:
        reg = facts.channel
        if reg is None or ms > reg.ms or (ms == reg.ms and id > reg.id):
            facts.channel = Register(channel._value_, ms, id)  # `.value`: a property, 5x slower
    name = event.queue
    if name is not None:
        reg = facts.queue
        if reg is None or ms > reg.ms or (ms == reg.ms and id > reg.id):
            facts.queue = Register(_name(name), ms, id)
    name = event.agent
    if name is not None:
        reg = facts.agent
        if reg is None or ms > reg.ms or (ms == reg.ms and id > reg.id):
            facts.agent = Register(_name(name), ms, id)
    name = event.customer
    if name is not None:
        reg = facts.customer
        if reg is None or ms > reg.ms or (ms == reg.ms and id > reg.id):
            facts.customer = Register(name, ms, id)
    name = event.issue
    if name is not None:
        reg = facts.issue
        if reg is None or ms > reg.ms or (ms == reg.ms and id > reg.id):
            facts.issue = Register(_name(name), ms, id)


def _offered(facts: ContactFacts, event: Event, ms: int, stamp: Stamp) -> None:
    facts.offered_ms = merge_min(facts.offered_ms, ms)


def _ivr(facts: ContactFacts, event: Event, ms: int, stamp: Stamp) -> None:
    stage = _name(event.stage or "ivr")
    facts.stages = _with(facts.stages, stage, merge_min(facts.stages.get(stage), ms))


def _queued(facts: ContactFacts, event: Event, ms: int, stamp: Stamp) -> None:
    facts.queued_ms = merge_min(facts.queued_ms, ms)
    stage = _name(event.stage or QUEUE_STAGE)
    facts.stages = _with(facts.stages, stage, merge_min(facts.stages.get(stage), ms))


def _answered(facts: ContactFacts, event: Event, ms: int, stamp: Stamp) -> None:
    facts.answered_ms = merge_min(facts.answered_ms, ms)
    if event.agent is not None:
        # The agent of the first answer owns the contact's answer and handle figures.
        first = (-ms, event.id)
        current = facts.answered_agent
        if current is None or first > (-current.ms, current.id):
            facts.answered_agent = Register(_name(event.agent), ms, event.id)


def _abandoned(facts: ContactFacts, event: Event, ms: int, stamp: Stamp) -> None:
    facts.abandoned_ms = merge_min(facts.abandoned_ms, ms)
    if event.stage is not None:
        facts.abandon_stage = merge_register(facts.abandon_stage, _name(event.stage), stamp)


def _timed_out(facts: ContactFacts, event: Event, ms: int, stamp: Stamp) -> None:
    facts.timed_out_ms = merge_min(facts.timed_out_ms, ms)


def _completed(facts: ContactFacts, event: Event, ms: int, stamp: Stamp) -> None:
    # The last completion includes wrap-up when the platform reports it after the call ends.
    facts.completed_ms = merge_max(facts.completed_ms, ms)


def _resolved(facts: ContactFacts, event: Event, ms: int, stamp: Stamp) -> None:
    facts.resolved_ms = merge_min(facts.resolved_ms, ms)
    if event.first_contact is not None:
        facts.first_contact = merge_register(facts.first_contact, event.first_contact, stamp)


def _escalated(facts: ContactFacts, event: Event, ms: int, stamp: Stamp) -> None:
    reason = Register(event.reason or "unspecified", ms, event.id)
    facts.escalations = _with(facts.escalations, event.id, reason)


def _transferred(facts: ContactFacts, event: Event, ms: int, stamp: Stamp) -> None:
    facts.transfers = _with(facts.transfers, event.id, ms)


def _survey(facts: ContactFacts, event: Event, ms: int, stamp: Stamp) -> None:
    if event.csat is not None:
        facts.csat = merge_register(facts.csat, event.csat, stamp)
    if event.nps is not None:
        facts.nps = merge_register(facts.nps, event.nps, stamp)


QUEUE_STAGE = "queue"
_AGENT_STATE = EventType.AGENT_STATE  # a global: the enum's member lookup costs ~60 ns per event

_HANDLERS = {
    EventType.OFFERED: _offered,
    EventType.IVR: _ivr,
    EventType.QUEUED: _queued,
    EventType.ANSWERED: _answered,
    EventType.ABANDONED: _abandoned,
    EventType.TIMED_OUT: _timed_out,
    EventType.COMPLETED: _completed,
    EventType.RESOLVED: _resolved,
    EventType.ESCALATED: _escalated,
    EventType.TRANSFERRED: _transferred,
    EventType.SURVEY: _survey,
}


@dataclass(slots=True)
class AgentFacts:
    """An agent's current state (last-writer-wins on the state events' (time, id)), and the
    queues the agent served, each with the last time seen (the wallboard's queue filter)."""

    agent: str
    state: Register | None = None
    queues: dict[str, int] = field(default_factory=dict)
    reason: str | None = None  # why not ready, from the event that set the current state

    def to_json(self) -> dict[str, Any]:
        state = self.state  # as dataclasses.asdict writes it, without its deep copy (3x slower)
        out: dict[str, Any] = {
            "agent": self.agent,
            "state": {"value": state.value, "ms": state.ms, "id": state.id} if state else None,
        }
        if self.queues:
            out["queues"] = self.queues
        if self.reason is not None:
            out["reason"] = self.reason
        return out

    def copy(self) -> AgentFacts:
        return AgentFacts(self.agent, self.state, dict(self.queues), self.reason)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentFacts:
        state = data.get("state")
        return cls(
            agent=data["agent"],
            state=Register(**state) if state else None,
            queues=dict(data.get("queues") or {}),
            reason=data.get("reason"),
        )


def agent_state(event: Event) -> tuple[str, str | None]:
    """The event's state as one of the five (services/agentstates.py), and its not-ready reason:
    the event's own `reason`, else the name it came with when that was not one of the five."""
    name = event.state or ""
    found = _NORMALISED.get(name)
    if found is None:
        if len(_NORMALISED) > 10_000:  # state names are the vendors' few: stay bounded anyway
            _NORMALISED.clear()
        found = _NORMALISED[name] = agentstates.normalise(name)
    state, derived = found
    reason = event.reason if event.reason and state == agentstates.NOT_READY else derived
    return state, reason


# State name -> `agentstates.normalise(name)` (pure without overrides): a few names recur.
_NORMALISED: dict[str, tuple[str, str | None]] = {}


def fold_agent(
    facts: AgentFacts,
    event: Event,
    ms: int | None = None,
    state_of: tuple[str, str | None] | None = None,
) -> None:
    """`state_of` is `agent_state(event)` when the caller already has it (the engine logs it)."""
    if ms is None:
        ms = event_ms(event)
    if event.type is _AGENT_STATE:
        state, reason = agent_state(event) if state_of is None else state_of
        facts.state = merge_register(facts.state, state, (ms, event.id))
        if facts.state.id == event.id:  # the reason is the winning state event's
            facts.reason = reason
    if event.queue is not None:
        facts.queues[event.queue] = merge_max(facts.queues.get(event.queue), ms)
