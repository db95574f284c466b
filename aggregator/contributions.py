"""What one contact adds to every counter, as a pure function of its fact sheet.

The aggregator applies `contribution(new facts) - contribution(old facts)`, so a late or repeated
event moves exactly its own contact's counts, in the minute each fact belongs to.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from services import keys
from services import kpis as k
from services.calendar import BusinessHours, business_ms

from .facts import ContactFacts

Calendars = Mapping[str, BusinessHours]  # queue name (or "*") -> opening hours
Cell = tuple[int, str]  # (minute bucket start in epoch seconds, scope)
Contribution = dict[Cell, dict[str, int]]


@dataclass(frozen=True, slots=True)
class Gauges:
    """Where a contact stands now: waiting since, open since (epoch ms), with its scopes."""

    scopes: tuple[str, ...]
    waiting_since_ms: int | None
    active_since_ms: int | None


def minute_of(ms: int) -> int:
    return (ms // 60_000) * 60


# Wait edges in ms, ascending as kpis.WAIT_EDGES_S: the first one a wait does not exceed is
# found by bisection (tests/unit/aggregator/test_fold_fast.py tries every edge).
_EDGES_MS = [edge * 1000 for edge in k.WAIT_EDGES_S]
# Histogram family -> its fields by bucket index, formatted once.
_HIST_FIELDS = {
    family: tuple(f"{family}{index}" for index in range(k.OVERFLOW + 1))
    for family in (
        k.ANSWER_HIST,
        k.ANSWER_BH_HIST,
        k.QUEUE_ABANDON_HIST,
        k.IVR_ABANDON_HIST,
        k.HANDLE_HIST,
    )
}


def hist_field(family: str, wait_ms: int) -> str:
    """`f"{family}{k.bucket_index(wait_ms)}"` for the histogram families above, by bisection
    and a table instead of a scan of the edges and a format per item."""
    return _HIST_FIELDS[family][bisect_left(_EDGES_MS, wait_ms)]


def scopes_of(facts: ContactFacts) -> tuple[str, ...]:
    """Channel and channel+queue scopes; nothing until the channel is known."""
    if facts.channel is None:
        return ()
    queue = facts.queue
    at = (facts.channel.value, None if queue is None else queue.value)
    if type(at[0]) is not str or (at[1] is not None and type(at[1]) is not str):
        return _scopes(*at)  # equal keys must mean equal names: 1 == True, str(1) != str(True)
    found = _SCOPES.get(at)
    if found is None:
        found = _scopes(*at)
        if len(_SCOPES) > 10_000:  # queue names are open-ended: stay bounded
            _SCOPES.clear()
        _SCOPES[at] = found
    return found


def _scopes(channel_value: object, queue_value: object) -> tuple[str, ...]:
    channel = str(channel_value)
    if queue_value is None:
        return (keys.channel_scope(channel),)
    return (keys.channel_scope(channel), keys.queue_scope(channel, str(queue_value)))


# (channel, queue) names -> their scopes: each contact asks several times per plan and a few
# dozen pairs recur.
_SCOPES: dict[tuple[object, object], tuple[str, ...]] = {}


def agent_of(facts: ContactFacts) -> str | None:
    if facts.answered_agent is not None:
        return str(facts.answered_agent.value)
    return None if facts.agent is None else str(facts.agent.value)


def _queue_of(f: ContactFacts) -> str | None:
    return None if f.queue is None else str(f.queue.value)


def contribution(facts: ContactFacts, calendars: Calendars | None = None) -> Contribution:
    """Every (minute, scope, field) count this contact adds, per docs/metrics.md."""
    out: Contribution = defaultdict(dict)
    scopes = scopes_of(facts)
    if not scopes:
        return {}
    whole, agent_part = _sums(facts, calendars or {})
    for (minute, name), value in whole.items():
        for scope in scopes:
            _add(out, minute, scope, name, value)
    agent = agent_of(facts)
    if agent is not None:
        agent_scope = keys.agent_scope(agent)
        for (minute, name), value in agent_part.items():
            _add(out, minute, agent_scope, name, value)
    return dict(out)


def _add(out: Contribution, minute: int, scope: str, name: str, value: int) -> None:
    cell = out[(minute, scope)]
    cell[name] = cell.get(name, 0) + value


Sums = dict[tuple[int, str], int]  # (minute, field) -> value


def _items(
    f: ContactFacts, calendars: Calendars, skip: AbstractSet[str] = frozenset()
) -> tuple[list[Item], list[Item]]:
    """The contact's items, unsummed: for its channel and queue scopes (business-hours items
    included), and for its agent's scope (a subset, without them; empty with no agent). Every
    value is >= 0 (counts, clamped times, positions): `add_delta` relies on it. The helpers
    named in `skip` (`_contact_items`', and "business") add nothing."""
    items = _contact_items(f, skip)
    agent: list[Item] = []
    if agent_of(f) is not None:
        seen = _AGENT_FIELD_SEEN
        for item in items:
            name = item[1]
            is_agent = seen.get(name)
            if is_agent is None:
                is_agent = _is_agent_field(name)
            if is_agent:
                agent.append(item)
                if name == k.HANDLE_MS and f.channel is not None:
                    by_queue = k.queue_handle_field(str(f.channel.value), _queue_of(f))
                    agent.append((item[0], by_queue, item[2]))
    hours = hours_for(f, calendars) if calendars and "business" not in skip else None
    if hours is not None:
        items += _business_items(f, hours)
    return items, agent


def _sums(f: ContactFacts, calendars: Calendars) -> tuple[Sums, Sums]:
    """The contact's items summed per (minute, field): for its channel and queue scopes
    (business-hours items included), and for its agent's scope (a subset, without them)."""
    items, agent = _items(f, calendars)
    return _summed(items), _summed(agent)


def _summed(items: list[Item]) -> Sums:
    out: Sums = {}
    get = out.get
    for minute, name, value in items:
        key = (minute, name)
        out[key] = get(key, 0) + value
    return out


def add_delta(
    into: Contribution,
    old: ContactFacts | None,
    new: ContactFacts,
    calendars: Calendars | None = None,
) -> None:
    """Add `diff(contribution(old), contribution(new))` to `into`, field by field, as
    `engine._merge_deltas` would, without building either contribution: the difference is
    taken per (minute, field) once and then spread over the scopes both sheets share; a scope
    only one side has gets that side whole. Zero differences are never added, so a cell
    appears in `into` exactly when `diff` would have given it
    (tests/unit/aggregator/test_contributions.py)."""
    cal = calendars or {}
    new_scopes = scopes_of(new)
    old_scopes = scopes_of(old) if old is not None else ()
    if not old_scopes:  # most contacts of a batch are new: their whole contribution, once
        if new_scopes:
            # Items are >= 0, so a (minute, field) sums to zero exactly when all its items are
            # zero: spreading the nonzero items unsummed adds what the sums would.
            items, agent_items = _items(new, cal)
            _spread(into, new_scopes, items)
            new_agent_name = agent_of(new)
            if new_agent_name is not None:
                _spread(into, (keys.agent_scope(new_agent_name),), agent_items)
        return
    assert old is not None
    if new_scopes == old_scopes:  # most known contacts: one pass over both sheets' items
        _changed(into, old, new, new_scopes, cal)
        return
    new_whole, new_agent = _sums(new, cal) if new_scopes else ({}, {})
    old_whole, old_agent = _sums(old, cal)
    _spread(into, [s for s in new_scopes if s in old_scopes], _minus(new_whole, old_whole))
    _spread(into, [s for s in new_scopes if s not in old_scopes], _nonzero(new_whole))
    _spread(into, [s for s in old_scopes if s not in new_scopes], _minus({}, old_whole))
    _agent_delta(into, agent_of(new) if new_scopes else None, agent_of(old), new_agent, old_agent)


def _changed(
    into: Contribution,
    old: ContactFacts,
    new: ContactFacts,
    scopes: tuple[str, ...],
    cal: Calendars,
) -> None:
    """`add_delta` for two sheets of the same scopes. Each helper's items depend only on the
    facts `_unchanged` compares, and no two helpers share a field: a helper seeing equal facts
    adds equal items to both sides, which cancel, so both leave them out. Agent items are
    left out only when the agent stayed (another agent takes them whole)."""
    new_agent, old_agent = agent_of(new), agent_of(old)
    skip = _unchanged(old, new, bool(cal), new_agent == old_agent)
    new_items, new_agent_items = _items(new, cal, skip)
    old_items, old_agent_items = _items(old, cal, skip)
    _spread(into, scopes, _net(new_items, old_items))
    if new_agent == old_agent:
        if new_agent is not None:
            _spread(into, (keys.agent_scope(new_agent),), _net(new_agent_items, old_agent_items))
        return
    _agent_delta(into, new_agent, old_agent, _summed(new_agent_items), _summed(old_agent_items))


def _unchanged(old: ContactFacts, new: ContactFacts, hours: bool, agent: bool) -> set[str]:
    """The helpers (`_contact_items`' names) whose facts are equal in both sheets: those that
    add agent items only with `agent`, business hours only with `hours`. Unchanged mappings
    and registers are shared by a fold (`copy`): `is` decides most."""
    skip: set[str] = set()
    stages = new.stages is old.stages or new.stages == old.stages
    if stages:
        skip.add("stages")
    times = (
        old.offered_ms == new.offered_ms
        and old.queued_ms == new.queued_ms
        and old.answered_ms == new.answered_ms
    )
    if hours and times and old.resolved_ms == new.resolved_ms and _queue_of(old) == _queue_of(new):
        skip.add("business")
    if not times:
        return skip
    if (
        stages
        and old.abandoned_ms == new.abandoned_ms
        and old.timed_out_ms == new.timed_out_ms
        and old.abandon_stage == new.abandon_stage
    ):
        skip.add("abandon")
    if not agent:
        return skip
    skip.add("answer")
    if (
        old.timed_out_ms == new.timed_out_ms
        and old.transfers == new.transfers
        and old.escalations == new.escalations
    ):
        skip.add("volume")
    if old.completed_ms == new.completed_ms:
        skip.add("handle")
    if (
        old.resolved_ms == new.resolved_ms
        and old.first_contact == new.first_contact
        and old.issue == new.issue
    ):
        skip.add("resolution")
    if old.csat == new.csat and old.nps == new.nps:
        skip.add("survey")
    return skip


def _agent_delta(
    into: Contribution,
    new_agent: str | None,
    old_agent: str | None,
    new_sums: Sums,
    old_sums: Sums,
) -> None:
    """The agent scopes' part of `add_delta`: the difference when the agent stayed, else the
    new agent's sums added and the old one's taken away."""
    if new_agent == old_agent:
        if new_agent is not None:
            _spread(into, (keys.agent_scope(new_agent),), _minus(new_sums, old_sums))
        return
    if new_agent is not None:
        _spread(into, (keys.agent_scope(new_agent),), _nonzero(new_sums))
    if old_agent is not None:
        _spread(into, (keys.agent_scope(old_agent),), _minus({}, old_sums))


def _net(after: list[Item], before: list[Item]) -> list[Item]:
    """`_minus(_summed(after), _summed(before))` in one dict: after's (minute, field) keys in
    their order, then before's others in theirs, as `_minus` orders them; zeros dropped."""
    sums: Sums = {}
    get = sums.get
    for minute, name, value in after:
        key = (minute, name)
        sums[key] = get(key, 0) + value
    for minute, name, value in before:
        key = (minute, name)
        sums[key] = get(key, 0) - value
    return [(key[0], key[1], value) for key, value in sums.items() if value]


def _nonzero(sums: Sums) -> list[Item]:
    """`_minus(sums, {})`: the sums as items, zeros dropped."""
    return [(key[0], key[1], value) for key, value in sums.items() if value]


def _minus(after: Sums, before: Sums) -> list[Item]:
    """after - before, zero differences dropped."""
    out: list[Item] = []
    append = out.append
    get = before.get
    for key, value in after.items():
        change = value - get(key, 0)
        if change:
            append((key[0], key[1], change))
    for key, value in before.items():
        if value and key not in after:
            append((key[0], key[1], -value))
    return out


def _spread(into: Contribution, scopes: Sequence[str], items: list[Item]) -> None:
    """Add the items to each scope's cells, zeros left out."""
    if not items:
        return
    for scope in scopes:
        at = -1  # a contact's items come in runs of one minute: look its cell up once per run
        cell: dict[str, int] = {}
        for minute, name, value in items:
            if not value:
                continue  # a zero adds nothing, and must not make a cell
            if minute != at:
                at = minute
                found = into.get((minute, scope))
                if found is None:
                    found = into[(minute, scope)] = {}
                cell = found
            cell[name] = cell.get(name, 0) + value


Item = tuple[int, str, int]  # (minute, field, value)


def _contact_items(f: ContactFacts, skip: AbstractSet[str] = frozenset()) -> list[Item]:
    """Every helper's items in turn, but those named in `skip`. A helper is called only when
    the fact it starts from is known: it would add nothing otherwise (the same test it opens
    with), and most contacts of a batch are still open, so the call is spared."""
    out: list[Item] = []
    if "volume" not in skip:
        _volume_items(f, out)
    answered = f.answered_ms is not None
    if answered and "answer" not in skip:
        _answer_items(f, out)
    if f.abandoned_ms is not None and "abandon" not in skip:
        _abandon_items(f, out)
    if f.stages and "stages" not in skip:
        _stage_items(f, out)
    if answered and f.completed_ms is not None and "handle" not in skip:
        _handle_items(f, out)
    if f.resolved_ms is not None and "resolution" not in skip:
        _resolution_items(f, out)
    if (f.csat is not None or f.nps is not None) and "survey" not in skip:
        _survey_items(f, out)
    return out


def wait_start_ms(f: ContactFacts) -> int | None:
    """Waits run from queue entry, or from the offer when the contact never queued."""
    return f.queued_ms if f.queued_ms is not None else f.offered_ms


def is_answered(f: ContactFacts) -> bool:
    return f.answered_ms is not None


def is_abandoned(f: ContactFacts) -> bool:
    """An answer wins over an abandon report; a timeout is its own outcome. An abandon counts only
    once the contact's offer or queue entry is known: abandons are a share of offered contacts."""
    return (
        f.abandoned_ms is not None
        and f.answered_ms is None
        and f.timed_out_ms is None
        and wait_start_ms(f) is not None
    )


def _volume_items(f: ContactFacts, out: list[Item]) -> None:
    if f.offered_ms is not None:
        out.append((minute_of(f.offered_ms), k.OFFERED, 1))
    if f.queued_ms is not None:
        out.append((minute_of(f.queued_ms), k.QUEUED, 1))
    if f.timed_out_ms is not None and f.answered_ms is None:
        out.append((minute_of(f.timed_out_ms), k.TIMED_OUT, 1))
    for ms in f.transfers.values():
        out.append((minute_of(ms), k.TRANSFERRED, 1))
    for reg in f.escalations.values():
        out.append((minute_of(reg.ms), k.ESCALATED, 1))
        out.append((minute_of(reg.ms), f"{k.ESCALATION_REASON}{reg.value}", 1))


def answer_wait_ms(f: ContactFacts) -> int | None:
    start = wait_start_ms(f)
    if f.answered_ms is None or start is None:
        return None
    return max(0, f.answered_ms - start)


def _answer_items(f: ContactFacts, out: list[Item]) -> None:
    """An answer whose wait is unknown (no offer or queue entry seen) is still an answer: it
    counts in `answered` and AHT, but not in ASA or service level, which need the wait."""
    if f.answered_ms is None:
        return
    minute = minute_of(f.answered_ms)
    wait = answer_wait_ms(f)
    if wait is None:
        out.append((minute, k.ANSWERED_UNTIMED, 1))
        return
    out.append((minute, k.ANSWERED, 1))
    out.append((minute, k.ANSWER_WAIT_MS, wait))
    out.append((minute, hist_field(k.ANSWER_HIST, wait), 1))


def abandon_stage(f: ContactFacts) -> str:
    """The stage the abandon names, else the last stage entered before it, else `none`."""
    if f.abandon_stage is not None:
        return str(f.abandon_stage.value)
    assert f.abandoned_ms is not None
    before = [(ms, s) for s, ms in f.stages.items() if ms <= f.abandoned_ms]
    return max(before)[1] if before else "none"


def _abandon_items(f: ContactFacts, out: list[Item]) -> None:
    if not is_abandoned(f):
        return
    assert f.abandoned_ms is not None
    minute = minute_of(f.abandoned_ms)
    in_queue = f.queued_ms is not None and f.queued_ms <= f.abandoned_ms
    start = f.queued_ms if in_queue else f.offered_ms
    wait = max(0, f.abandoned_ms - start) if start is not None else 0
    out.append((minute, k.ABANDONED, 1))
    out.append((minute, k.ABANDON_WAIT_MS, wait))
    out.append((minute, k.ABANDONED_QUEUE if in_queue else k.ABANDONED_IVR, 1))
    family = k.QUEUE_ABANDON_HIST if in_queue else k.IVR_ABANDON_HIST
    out.append((minute, hist_field(family, wait), 1))
    out.append((minute, f"{k.ABANDON_STAGE}{abandon_stage(f)}", 1))


def _stage_items(f: ContactFacts, out: list[Item]) -> None:
    stages = f.stages
    if not stages:
        return
    # (ms, stage) pairs sort as (time, name): stage names are unique keys of the mapping.
    for position, (ms, stage) in enumerate(sorted([(ms, s) for s, ms in stages.items()])):
        minute = (ms // 60_000) * 60
        entered, rank = _stage_fields(stage)
        out.append((minute, entered, 1))
        out.append((minute, rank, position))


_STAGE_FIELDS: dict[str, tuple[str, str]] = {}


def _stage_fields(stage: str) -> tuple[str, str]:
    """The stage's `entered` and `rank` field names, formatted once (a few stages recur)."""
    found = _STAGE_FIELDS.get(stage)
    if found is None:
        if len(_STAGE_FIELDS) > 10_000:  # stage names come from events: stay bounded
            _STAGE_FIELDS.clear()
        found = _STAGE_FIELDS[stage] = (f"{k.STAGE_ENTERED}{stage}", f"{k.STAGE_RANK}{stage}")
    return found


def handle_ms(f: ContactFacts) -> int | None:
    if f.answered_ms is None or f.completed_ms is None:
        return None
    return max(0, f.completed_ms - f.answered_ms)


def _handle_items(f: ContactFacts, out: list[Item]) -> None:
    handle = handle_ms(f)
    if handle is None or f.completed_ms is None:
        return
    minute = minute_of(f.completed_ms)
    out.append((minute, k.HANDLED, 1))
    out.append((minute, k.HANDLE_MS, handle))
    out.append((minute, hist_field(k.HANDLE_HIST, handle), 1))


def _resolution_items(f: ContactFacts, out: list[Item]) -> None:
    if f.resolved_ms is None:
        return
    minute = minute_of(f.resolved_ms)
    start = f.offered_ms if f.offered_ms is not None else f.resolved_ms
    took = max(0, f.resolved_ms - start)
    out.append((minute, k.RESOLVED, 1))
    out.append((minute, k.RESOLUTION_MS, took))
    if f.first_contact is not None and f.first_contact.value is True:
        out.append((minute, k.RESOLVED_FIRST_CONTACT, 1))
    if f.issue is not None:
        out.append((minute, f"{k.ISSUE_RESOLVED}{f.issue.value}", 1))
        out.append((minute, f"{k.ISSUE_RESOLUTION_MS}{f.issue.value}", took))


def hours_for(f: ContactFacts, calendars: Calendars) -> BusinessHours | None:
    """The contact's queue's opening hours, else the default (`*`), else none (24/7)."""
    queue = None if f.queue is None else str(f.queue.value)
    if queue is not None and queue in calendars:
        return calendars[queue]
    return calendars.get("*")


def _business_items(f: ContactFacts, hours: BusinessHours) -> list[Item]:
    """Waits and resolution times counted only inside opening hours."""
    out: list[Item] = []
    start = wait_start_ms(f)
    if f.answered_ms is not None and start is not None:
        wait = business_ms(start, f.answered_ms, hours)
        out.append((minute_of(f.answered_ms), k.ANSWER_WAIT_BH_MS, wait))
        out.append((minute_of(f.answered_ms), hist_field(k.ANSWER_BH_HIST, wait), 1))
    if f.resolved_ms is not None and f.offered_ms is not None:
        took = business_ms(f.offered_ms, f.resolved_ms, hours)
        out.append((minute_of(f.resolved_ms), k.RESOLUTION_BH_MS, took))
    return out


def _survey_items(f: ContactFacts, out: list[Item]) -> None:
    if f.csat is not None:
        minute = minute_of(f.csat.ms)
        out.append((minute, k.CSAT_RESPONSES, 1))
        if int(f.csat.value) >= 4:
            out.append((minute, k.CSAT_SATISFIED, 1))
    if f.nps is not None:
        minute = minute_of(f.nps.ms)
        score = int(f.nps.value)
        out.append((minute, k.NPS_RESPONSES, 1))
        if score >= 9:
            out.append((minute, k.NPS_PROMOTERS, 1))
        elif score <= 6:
            out.append((minute, k.NPS_DETRACTORS, 1))


_AGENT_FIELDS = frozenset(
    {
        k.ANSWERED,
        k.ANSWERED_UNTIMED,
        k.ANSWER_WAIT_MS,
        k.HANDLED,
        k.HANDLE_MS,
        k.RESOLVED,
        k.RESOLUTION_MS,
        k.RESOLVED_FIRST_CONTACT,
        k.TRANSFERRED,
        k.CSAT_RESPONSES,
        k.CSAT_SATISFIED,
    }
)


_AGENT_FIELD_SEEN: dict[str, bool] = {}


def _is_agent_field(name: str) -> bool:
    """Whether the agent's scope counts this field too (cached: a few dozen names recur)."""
    seen = _AGENT_FIELD_SEEN.get(name)
    if seen is None:
        seen = name in _AGENT_FIELDS or name.startswith(k.ANSWER_HIST)
        if len(_AGENT_FIELD_SEEN) < 10_000:  # names embed stages and reasons: stay bounded
            _AGENT_FIELD_SEEN[name] = seen
    return seen


def gauges(f: ContactFacts) -> Gauges:
    """Waiting: queued and not yet answered, abandoned, timed out or completed. Open: not done."""
    return Gauges(*gauge_state(f))


GaugeState = tuple[tuple[str, ...], int | None, int | None]  # Gauges' fields, in order
NO_GAUGES: GaugeState = ((), None, None)  # a contact not seen before
NOT_SEEN = Gauges(*NO_GAUGES)  # the same, made once: frozen, so every move may share it


def gauge_state(f: ContactFacts) -> GaugeState:
    """`gauges(f)`'s fields as a plain tuple: the engine compares every contact's before and
    after, and builds the (frozen, slower to make) Gauges only for those that moved."""
    no_outcome = (  # answered, abandoned, timed out, completed: none yet (no generator made)
        f.answered_ms is None
        and f.abandoned_ms is None
        and f.timed_out_ms is None
        and f.completed_ms is None
    )
    waiting = f.queued_ms if no_outcome else None
    done = (
        f.completed_ms is not None
        or f.resolved_ms is not None
        or f.timed_out_ms is not None
        or is_abandoned(f)
    )
    return (scopes_of(f), waiting, None if done else f.offered_ms)


def diff(old: Contribution, new: Contribution) -> Contribution:
    """new - old, zero entries dropped: what to add to the stored counters."""
    out: Contribution = {}
    for cell in old.keys() | new.keys():
        before, after = old.get(cell, {}), new.get(cell, {})
        delta = {n: after.get(n, 0) - before.get(n, 0) for n in before.keys() | after.keys()}
        delta = {n: v for n, v in delta.items() if v}
        if delta:
            out[cell] = delta
    return out
