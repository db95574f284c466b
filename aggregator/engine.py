"""One polled batch in, one plan out: new fact sheets, counter deltas, gauge moves, dead letters.

Pure: the caller loads the old fact sheets and writes the plan in one atomic step, so the same
batch planned twice from the same state gives the same plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from services.contract import Event, EventType, decode_batch

from . import contributions as contrib
from . import repeats
from .facts import AgentFacts, ContactFacts, agent_state, event_ms, fold, fold_agent
from .totals import Steps, add_steps

FUTURE_TOLERANCE_S = 3600
FactsIn = Mapping[str, ContactFacts | None]
AgentsIn = Mapping[str, AgentFacts | None]
GroupsIn = Mapping[str, repeats.GroupSheet | None]


class Record(NamedTuple):
    """A Kafka record as the engine needs it (a named tuple: one is built per record polled,
    and a frozen dataclass's constructor costs three times as much)."""

    partition: int
    offset: int
    value: bytes


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: Record
    reason: str


@dataclass(slots=True)
class GaugeMove:
    contact: str
    old: contrib.Gauges
    new: contrib.Gauges


AgentLog = list[tuple[str, str, str, int]]  # agent, event id, state, ms


@dataclass(slots=True)
class Plan:
    facts: dict[str, ContactFacts] = field(default_factory=dict)
    agents: dict[str, AgentFacts] = field(default_factory=dict)
    agent_log: AgentLog = field(default_factory=list)  # agent, id, state, ms
    groups: dict[str, repeats.GroupSheet] = field(default_factory=dict)
    deltas: contrib.Contribution = field(default_factory=dict)  # the partition's own counters
    # What each changed group adds (measured FCR): written by the group's shard, not here.
    group_deltas: dict[str, contrib.Contribution] = field(default_factory=dict)
    gauges: list[GaugeMove] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    events: int = 0
    # Events of this batch that counted partially or not at all, by reason (see `not_counted`).
    partial: dict[str, int] = field(default_factory=dict)
    # Increases and corrections of the contact counts, for the monotonic totals (totals.py).
    totals: Steps = field(default_factory=dict)

    def all_deltas(self) -> contrib.Contribution:
        """Every counter change of the batch, its groups' included (rebuilds, recounts). Read
        only: a cell no group changes is the plan's own (groups touch a few of its cells, and
        copying every one cost more than the merge)."""
        out = dict(self.deltas)
        copied: set[contrib.Cell] = set()
        for delta in self.group_deltas.values():
            for cell, fields in delta.items():
                if cell not in copied:
                    copied.add(cell)
                    out[cell] = dict(out.get(cell, ()))
                target = out[cell]
                for name, value in fields.items():
                    target[name] = target.get(name, 0) + value
        return out

    def not_counted(self) -> dict[str, int]:
        """Reason -> events, for `keys.NOT_COUNTED_STAT` fields: the partial counts above and
        the dead letters by kind (`late`, `future`, `invalid`). Judged when the batch applies."""
        out = dict(self.partial)
        for letter in self.dead:
            reason = letter.reason.split(":", 1)[0]
            out[reason] = out.get(reason, 0) + 1
        return out


def screen(
    records: Iterable[Record], now_s: float, lateness_s: int
) -> tuple[list[Event], list[DeadLetter]]:
    """Decode and check each record; what cannot be used becomes a dead letter with its reason.
    Records may be of several partitions (a rebuild's): each run of one partition is decoded
    as a poll of it, in order."""
    events: list[Event] = []
    dead: list[DeadLetter] = []
    run: list[tuple[int, bytes]] = []
    partition = None
    for record in [*records, None]:
        if record is None or record.partition != partition:
            if run and partition is not None:
                more, letters, _ = check(decode(partition, run), now_s, lateness_s)
                events += more
                dead += letters
            if record is None:
                break
            partition, run = record.partition, []
        run.append((record.offset, record.value))
    return events, dead


@dataclass(slots=True)
class Decoded:
    """One partition's polled records decoded, clock-free (the runner decodes the next poll
    while Redis applies the previous one): the events in record order with their times (read
    once: each read is a time-zone call), and the records refused with their reasons."""

    partition: int
    offsets: list[int]
    values: list[bytes]
    events: list[Event]
    times: list[float]  # the events' times in epoch seconds
    stamps: list[int]  # the same in epoch ms (`facts.event_ms`)
    invalid: dict[int, str]  # record index -> dead letter reason

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def last(self) -> int:
        return self.offsets[-1]

    def record(self, index: int) -> Record:
        return Record(self.partition, self.offsets[index], self.values[index])


def decode(partition: int, rows: Iterable[tuple[int, bytes]]) -> Decoded:
    """The clock-free half of `screen`, for one partition's (offset, value) records."""
    pairs = list(rows)
    offsets = [offset for offset, _ in pairs]
    values = [value for _, value in pairs]
    return decode_values(partition, offsets, values)


def decode_values(partition: int, offsets: list[int], values: list[bytes]) -> Decoded:
    """`decode` of offsets and values as parallel lists (as `Source.poll` gives them)."""
    events, refused = decode_batch(values)
    times = [event.time.timestamp() for event in events]
    stamps = [int(time_s * 1000) for time_s in times]
    invalid = {index: f"invalid: {exc}" for index, exc in refused.items()}
    return Decoded(partition, offsets, values, events, times, stamps, invalid)


def check(
    decoded: Decoded, now_s: float, lateness_s: int
) -> tuple[list[Event], list[DeadLetter], list[int]]:
    """The clock half of `screen`: events too old or too far ahead become dead letters. Also
    returns the events' times in epoch ms (`facts.event_ms`) for `plan`. An age falls as the
    time grows (float subtraction rounds monotonically), so when neither the oldest nor the
    newest event is refused, none is, and the batch is taken whole."""
    times = decoded.times
    if (
        not decoded.invalid
        and times
        and not now_s - min(times) > lateness_s
        and not now_s - max(times) < -FUTURE_TOLERANCE_S
    ):
        return list(decoded.events), [], list(decoded.stamps)
    return _check_each(decoded, now_s, lateness_s)


def _check_each(
    decoded: Decoded, now_s: float, lateness_s: int
) -> tuple[list[Event], list[DeadLetter], list[int]]:
    """`check` record by record, the dead letters in record order."""
    events: list[Event] = []
    dead: list[DeadLetter] = []
    stamps: list[int] = []
    position = 0  # the next decoded event's index
    for index in range(len(decoded)):
        reason = decoded.invalid.get(index)
        if reason is not None:
            dead.append(DeadLetter(decoded.record(index), reason))
            continue
        event, time_s = decoded.events[position], decoded.times[position]
        position += 1
        age = now_s - time_s
        if age > lateness_s:
            reason = f"late: {int(age)}s old, limit {lateness_s}s"
        elif age < -FUTURE_TOLERANCE_S:
            reason = f"future: {int(-age)}s ahead of the aggregator clock"
        else:
            events.append(event)
            stamps.append(int(time_s * 1000))
            continue
        dead.append(DeadLetter(decoded.record(index), reason))
    return events, dead, stamps


# A module global: `EventType.AGENT_STATE` looks the member up on the enum class each time
# (about 60 ns, several times per event).
_AGENT_STATE = EventType.AGENT_STATE


def contacts_of(events: Iterable[Event]) -> set[str]:
    return {e.contact for e in events if e.contact is not None and e.type is not _AGENT_STATE}


def agents_of(events: Iterable[Event]) -> set[str]:
    """Agents whose sheet this batch changes: state events, and contacts naming agent and queue."""
    return {
        e.agent
        for e in events
        if e.agent is not None and (e.type is _AGENT_STATE or e.queue is not None)
    }  # `_touches_agent(e)`, inline


def _touches_agent(event: Event) -> bool:
    return event.type is _AGENT_STATE or event.queue is not None


def groups_needed(events: Sequence[Event], old_facts: FactsIn) -> set[str]:
    """The customer x issue groups (measured FCR) this batch may change. One pass: the
    contacts are `contacts_of(events)`, added in the same order (so the set iterates alike)."""
    customers: dict[str, set[str]] = {}
    issues: dict[str, set[str]] = {}
    contacts: set[str] = set()
    for e in events:
        contact = e.contact
        if contact is None:
            continue
        if e.type is not _AGENT_STATE:
            contacts.add(contact)
        if e.customer is not None:
            customers.setdefault(contact, set()).add(e.customer)
        if e.issue is not None:
            issues.setdefault(contact, set()).add(e.issue)
    return repeats.candidate_groups(contacts, old_facts, customers, issues)


def plan(
    events: Sequence[Event],
    old_facts: FactsIn,
    old_agents: AgentsIn,
    old_groups: GroupsIn | None = None,
    fcr_window_ms: int = 7 * 86_400_000,
    calendars: contrib.Calendars | None = None,
    measured_fcr: bool = True,
    stamps: Sequence[int] | None = None,
) -> Plan:
    """Fold the batch into its contacts and agents and diff their contributions (measured FCR
    only when asked: its groups cross partitions, see docs/aggregation.md)."""
    result = Plan(events=len(events))
    if stamps is None:  # once per event: each costs a time-zone call (`check` gives them)
        stamps = [event_ms(e) for e in events]
    new_facts = _fold_contacts(events, stamps, old_facts)
    for contact, facts in new_facts.items():
        old = old_facts.get(contact)
        contrib.add_delta(result.deltas, old, facts, calendars)
        add_steps(result.totals, old, facts)
        before = contrib.gauge_state(old) if old is not None else contrib.NO_GAUGES
        after = contrib.gauge_state(facts)
        if before != after:
            was = contrib.Gauges(*before) if old is not None else contrib.NOT_SEEN
            result.gauges.append(GaugeMove(contact, was, contrib.Gauges(*after)))
    result.facts = new_facts
    result.partial = partial_counts(events, new_facts)
    if measured_fcr:
        result.groups = repeats.regroup(new_facts, old_facts, old_groups or {})
        result.group_deltas = repeats.deltas(old_groups or {}, result.groups, fcr_window_ms)
    result.agents, result.agent_log = _fold_agents(events, stamps, old_agents)
    return result


def regrouped(
    plan: Plan,
    old_facts: FactsIn,
    made_with: GroupsIn,
    old_groups: GroupsIn,
    fcr_window_ms: int = 7 * 86_400_000,
) -> Plan:
    """`plan`, made with the group sheets `made_with`, as `plan` with `old_groups` would give
    it (a group conflict: another partition's step wrote one since it was read). Nothing else
    of a plan depends on the groups, so the fold and contributions stand; and only the groups
    whose sheet differs are made again: a group's new sheet and delta depend on its own sheet
    and the batch's facts alone (`repeats.regroup`), and a conflict is mostly a few groups of
    a step's thousand."""
    moved = {
        g
        for g in made_with.keys() | old_groups.keys()
        if not _same(made_with.get(g), old_groups.get(g))
    }
    if not moved:
        return replace(plan)
    fresh = {g: old_groups.get(g) for g in moved}
    held = {c for sheet in fresh.values() if sheet is not None for c in sheet.members}
    touched = {
        c: f
        for c, f in plan.facts.items()
        if c in held or repeats.group_of(f) in moved or repeats.group_of(old_facts.get(c)) in moved
    }
    made = repeats.regroup(touched, old_facts, fresh)  # other groups' sheets here are partial
    made = {g: sheet for g, sheet in made.items() if g in moved}
    groups = {g: sheet for g, sheet in plan.groups.items() if g not in moved}
    groups.update(made)
    group_deltas = {g: d for g, d in plan.group_deltas.items() if g not in moved}
    group_deltas.update(repeats.deltas(fresh, made, fcr_window_ms))
    return replace(plan, groups=groups, group_deltas=group_deltas)


def _same(one: repeats.GroupSheet | None, other: repeats.GroupSheet | None) -> bool:
    """The same sheet content (not only the version: a group that expired restarts at 1)."""
    if one is None or other is None:
        return one is other
    return one.version == other.version and one.members == other.members and one.seen == other.seen


def partial_counts(events: Sequence[Event], facts: Mapping[str, ContactFacts]) -> dict[str, int]:
    """Events that, on their contact's facts after the batch, count partially or not at all."""
    out: dict[str, int] = {}
    for event in events:
        sheet = facts.get(event.contact) if event.contact is not None else None
        if sheet is None or (sheet.channel is not None and event.type not in _WAIT_CHECKED):
            continue  # most events: partial_reason would say None (a call each spared)
        reason = partial_reason(event, sheet)
        if reason is not None:
            out[reason] = out.get(reason, 0) + 1
    return out


# The only types partial_reason judges once the contact's channel is known.
_WAIT_CHECKED = frozenset({EventType.ANSWERED, EventType.ABANDONED})


def partial_reason(event: Event, facts: ContactFacts) -> str | None:
    """Why an event counts partially: no channel yet (nothing counts), an answer with no known
    wait (no ASA or service level), an abandon with no known offer (not counted): metrics.md."""
    if event.type is EventType.AGENT_STATE:
        return None
    if facts.channel is None:
        return "no_channel"
    if event.type is EventType.ANSWERED and contrib.answer_wait_ms(facts) is None:
        return "answer_without_wait"
    if event.type is EventType.ABANDONED and contrib.wait_start_ms(facts) is None:
        return "abandon_without_offer"
    return None


def _fold_contacts(
    events: Sequence[Event],
    stamps: Sequence[int],
    old_facts: Mapping[str, ContactFacts | None],
) -> dict[str, ContactFacts]:
    sheets: dict[str, ContactFacts] = {}
    for event, ms in zip(events, stamps, strict=True):
        contact = event.contact
        if contact is None or event.type is _AGENT_STATE:
            continue
        sheet = sheets.get(contact)
        if sheet is None:
            old = old_facts.get(contact)
            sheet = old.copy() if old is not None else ContactFacts(contact)
            sheets[contact] = sheet
        fold(sheet, event, ms)
    return sheets


def _fold_agents(
    events: Sequence[Event],
    stamps: Sequence[int],
    old_agents: Mapping[str, AgentFacts | None],
) -> tuple[dict[str, AgentFacts], AgentLog]:
    """The agents' new sheets, and the log of their state events in batch order (those naming
    a state): each event's state normalised once for both (`agent_state`)."""
    sheets: dict[str, AgentFacts] = {}
    log: AgentLog = []
    for event, ms in zip(events, stamps, strict=True):
        agent = event.agent
        if agent is None:
            continue
        is_state = event.type is _AGENT_STATE
        if not is_state and event.queue is None:  # `_touches_agent`, inline
            continue
        sheet = sheets.get(agent)
        if sheet is None:
            old = old_agents.get(agent)
            sheet = old.copy() if old else AgentFacts(agent)
            sheets[agent] = sheet
        if is_state:
            state = agent_state(event)
            fold_agent(sheet, event, ms, state)
            if event.state is not None:
                log.append((agent, event.id, state[0], ms))
        else:
            fold_agent(sheet, event, ms)
    return sheets, log


def merge_deltas(total: contrib.Contribution, more: contrib.Contribution) -> None:
    """Add `more` into `total`, field by field."""
    for cell, fields in more.items():
        target = total.setdefault(cell, {})
        for name, value in fields.items():
            target[name] = target.get(name, 0) + value
