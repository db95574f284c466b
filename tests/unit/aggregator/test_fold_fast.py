"""The per-event shortcuts of the fold and the contributions against their plain definitions:
registers merged by `merge_register` with every name interned, histogram fields formatted from
`kpis.bucket_index`, and agent states normalised once per sheet fold and once per log line."""

from __future__ import annotations

import gc
import sys
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import contributions as contrib
from aggregator import engine
from aggregator.facts import (
    _HANDLERS,
    AgentFacts,
    ContactFacts,
    Register,
    Stamp,
    _fold_attributes,
    agent_state,
    fold,
    fold_agent,
    merge_register,
)
from services import kpis
from services.contract import Channel, ContactEvent, Event, EventType, WireEvent
from tests.unit.aggregator.test_contributions import sheets

BASE_MS = 1_760_000_000_000
HISTOGRAMS = (
    kpis.ANSWER_HIST,
    kpis.ANSWER_BH_HIST,
    kpis.QUEUE_ABANDON_HIST,
    kpis.IVR_ABANDON_HIST,
    kpis.HANDLE_HIST,
)
EDGE_WAITS = sorted({e * 1000 + d for e in kpis.WAIT_EDGES_S for d in (-1, 0, 1)} | {0})


def _plain_name(value: Any) -> Any:
    return sys.intern(value) if type(value) is str else value


def _plain_attributes(facts: ContactFacts, event: Event, stamp: Stamp) -> None:
    """The fold of the event's attributes as first written: a merge per attribute."""
    if event.channel is not None:
        facts.channel = merge_register(facts.channel, event.channel.value, stamp)
    if event.queue is not None:
        facts.queue = merge_register(facts.queue, _plain_name(event.queue), stamp)
    if event.agent is not None:
        facts.agent = merge_register(facts.agent, _plain_name(event.agent), stamp)
    if event.customer is not None:
        facts.customer = merge_register(facts.customer, event.customer, stamp)
    if event.issue is not None:
        facts.issue = merge_register(facts.issue, _plain_name(event.issue), stamp)


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


# The sheets' registers hold ids e1..e3 around BASE_MS: events tie with them in time and id.
stamps = st.tuples(
    st.integers(BASE_MS - 3_600_000, BASE_MS + 3 * 3_600_000),
    st.sampled_from(["e1", "e2", "e3", "e0", "e4"]),
)
attributes = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.sampled_from([Channel.VOICE, Channel.CHAT]),
        "queue": st.sampled_from(["sales", "support"]),
        "agent": st.sampled_from(["alice", "bob"]),
        "customer": st.sampled_from(["cust", "other"]),
        "issue": st.sampled_from(["billing", "order"]),
    },
)


def _event(wire: bool, stamp: Stamp, kind: EventType, fields: dict[str, Any]) -> Event:
    build = WireEvent if wire else ContactEvent
    return build(id=stamp[1], type=kind, time=_when(stamp[0]), contact="c1", **fields)  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(sheet=sheets, stamp=stamps, fields=attributes, wire=st.booleans())
def test_fold_attributes_is_a_merge_per_attribute(
    sheet: ContactFacts, stamp: Stamp, fields: dict[str, Any], wire: bool
) -> None:
    if stamp[0] % 3 == 0:  # ties in time with a register: the id decides
        stamp = (BASE_MS, stamp[1])
    event = _event(wire, stamp, EventType.ANSWERED, fields)
    want = sheet.copy()
    _plain_attributes(want, event, stamp)
    got = sheet.copy()
    _fold_attributes(got, event, stamp)
    assert got == want
    assert got.to_json() == want.to_json()


contact_events = st.lists(
    st.tuples(
        st.sampled_from(list(EventType)),
        st.sampled_from(["c1", "c2", "c3", None]),
        st.tuples(  # few times and ids: events tie with each other and with the registers
            st.sampled_from([BASE_MS - 60_000, BASE_MS, BASE_MS + 60_000]),
            st.sampled_from(["e1", "e2", "e3", "e0", "e4"]),
        ),
        attributes,
        st.fixed_dictionaries(
            {},
            optional={
                "stage": st.sampled_from(["menu", "queue", "welcome"]),
                "reason": st.sampled_from(["angry", "billing"]),
                "first_contact": st.booleans(),
                "csat": st.integers(1, 5),
                "nps": st.integers(0, 10),
                "state": st.sampled_from(["available", "lunch"]),
            },
        ),
        st.booleans(),
    ),
    max_size=16,
)


def _contact_event(row: tuple[Any, ...]) -> Event:
    """Any type, contact or none, on either decoder: WireEvent's constructor validates nothing,
    so it builds the rows ContactEvent refuses (an agent state naming a contact, say)."""
    kind, contact, stamp, fields, more, wire = row
    try:
        if not wire:
            return ContactEvent(
                id=stamp[1], type=kind, time=_when(stamp[0]), contact=contact, **fields, **more
            )
    except ValueError:
        pass
    at = _when(stamp[0])
    return WireEvent(id=stamp[1], type=kind, time=at, contact=contact, **fields, **more)


@settings(max_examples=400, deadline=None)
@given(rows=contact_events, sheet=sheets, known=st.sampled_from(["c1", "c2", None]))
def test_the_batch_fold_is_the_plain_fold_per_event(
    rows: list[tuple[Any, ...]], sheet: ContactFacts, known: str | None
) -> None:
    """The engine's batch fold against the plain definition per event (registers merged by
    `merge_register`, stamps tied with each other and with the old sheet's): equal sheets in
    the same order, and the old sheet left as it was (its registers and mappings shared)."""
    events = [_contact_event(row) for row in rows]
    stamps = [int(e.time.timestamp() * 1000) for e in events]
    old: dict[str, ContactFacts | None] = {"c3": None}
    if known is not None:
        sheet.contact = known
        for name in ("channel", "queue", "agent", "customer", "issue"):
            reg = getattr(sheet, name)
            if reg is not None and reg.ms % 2:  # half of them in time with the events
                setattr(sheet, name, Register(reg.value, BASE_MS, reg.id))
        old[known] = sheet
    before = sheet.to_json()
    want: dict[str, ContactFacts] = {}
    for event, ms in zip(events, stamps, strict=True):
        if event.contact is None or event.type is EventType.AGENT_STATE:
            continue
        if event.contact not in want:
            found = old.get(event.contact)
            want[event.contact] = found.copy() if found else ContactFacts(event.contact)
        _plain_fold(want[event.contact], event, ms)
    got = engine._fold_contacts(events, stamps, old)
    assert got == want
    assert list(got) == list(want)
    assert [s.to_json() for s in got.values()] == [s.to_json() for s in want.values()]
    assert sheet.to_json() == before


def _plain_fold(facts: ContactFacts, event: Event, ms: int) -> None:
    """`fold`, its attributes merged by the plain definition."""
    stamp = (ms, event.id)
    _plain_attributes(facts, event, stamp)
    handler = _HANDLERS.get(event.type)
    if handler is not None:
        handler(facts, event, ms, stamp)


def test_an_equal_time_is_won_by_the_greater_id_only() -> None:
    sheet = ContactFacts("c1", channel=Register("voice", BASE_MS, "e2"))
    for event_id, wins in (("e1", False), ("e2", False), ("e3", True)):
        got = sheet.copy()
        event = _event(True, (BASE_MS, event_id), EventType.OFFERED, {"channel": Channel.CHAT})
        _fold_attributes(got, event, (BASE_MS, event_id))
        assert (got.channel != sheet.channel) is wins


@settings(max_examples=200, deadline=None)
@given(wait=st.integers(-5, 250_000_000) | st.sampled_from(EDGE_WAITS))
def test_hist_field_is_the_bucket_index_formatted(wait: int) -> None:
    for family in HISTOGRAMS:
        assert contrib.hist_field(family, wait) == f"{family}{kpis.bucket_index(wait)}"


def test_hist_field_at_every_edge() -> None:
    for wait in EDGE_WAITS:
        for family in HISTOGRAMS:
            assert contrib.hist_field(family, wait) == f"{family}{kpis.bucket_index(wait)}"


agent_events = st.lists(
    st.tuples(
        st.sampled_from([EventType.AGENT_STATE, EventType.ANSWERED]),
        st.sampled_from(["alice", "bob", None]),
        st.sampled_from(["sales", None]),
        st.sampled_from(["available", "not_ready", "lunch", None]),
        st.sampled_from(["break", None]),
        st.integers(0, 5),
        st.booleans(),
    ),
    max_size=12,
)


def _agent_event(n: int, row: tuple[Any, ...]) -> Event:
    kind, agent, queue, state, reason, minute, wire = row
    fields = {"agent": agent, "queue": queue, "state": state, "reason": reason}
    if kind is not EventType.AGENT_STATE:
        fields["contact"] = f"c{n}"
    if kind is EventType.AGENT_STATE and (agent is None or state is None):
        wire = True  # ContactEvent refuses it; WireEvent's constructor does not validate
    build = WireEvent if wire else ContactEvent
    at = _when(BASE_MS + minute * 60_000)
    return build(id=f"e{n}", type=kind, time=at, **fields)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(rows=agent_events, known=st.booleans())
def test_fold_agents_and_its_log_are_their_plain_definitions(
    rows: list[tuple[Any, ...]], known: bool
) -> None:
    events = [_agent_event(n, row) for n, row in enumerate(rows)]
    stamps = [int(e.time.timestamp() * 1000) for e in events]
    old: dict[str, AgentFacts | None] = {"alice": None}
    if known:
        old["alice"] = AgentFacts("alice", Register("ready", BASE_MS + 120_000, "e3"), {"x": 1})
    sheets_got, log = engine._fold_agents(events, stamps, old)
    want: dict[str, AgentFacts] = {}
    for event, ms in zip(events, stamps, strict=True):
        if event.agent is None or not engine._touches_agent(event):
            continue
        if event.agent not in want:
            before = old.get(event.agent)
            want[event.agent] = before.copy() if before else AgentFacts(event.agent)
        fold_agent(want[event.agent], event, ms)
    assert sheets_got == want
    assert list(sheets_got) == list(want)
    assert log == [
        (e.agent, e.id, agent_state(e)[0], ms)
        for e, ms in zip(events, stamps, strict=True)
        if e.type is EventType.AGENT_STATE and e.agent is not None and e.state is not None
    ]


@settings(max_examples=300, deadline=None)
@given(sheet=sheets)
def test_contact_items_are_every_helpers_items(sheet: ContactFacts) -> None:
    """The helpers skipped for facts not yet known would have added nothing."""
    want: list[contrib.Item] = []
    for helper in (
        contrib._volume_items,
        contrib._answer_items,
        contrib._abandon_items,
        contrib._stage_items,
        contrib._handle_items,
        contrib._resolution_items,
        contrib._survey_items,
    ):
        helper(sheet, want)
    assert contrib._contact_items(sheet) == want


@settings(max_examples=300, deadline=None)
@given(sheet=sheets)
def test_gauge_state_is_its_plain_definition(sheet: ContactFacts) -> None:
    outcome = (sheet.answered_ms, sheet.abandoned_ms, sheet.timed_out_ms, sheet.completed_ms)
    waiting = None if any(ms is not None for ms in outcome) else sheet.queued_ms
    done = (
        sheet.completed_ms is not None
        or sheet.resolved_ms is not None
        or sheet.timed_out_ms is not None
        or contrib.is_abandoned(sheet)
    )
    want = (contrib.scopes_of(sheet), waiting, None if done else sheet.offered_ms)
    assert contrib.gauge_state(sheet) == want


@settings(max_examples=200, deadline=None)
@given(rows=agent_events)
def test_contacts_and_agents_of_are_their_plain_definitions(rows: list[tuple[Any, ...]]) -> None:
    events = [_agent_event(n, row) for n, row in enumerate(rows)]
    assert engine.contacts_of(events) == {
        e.contact for e in events if e.contact is not None and e.type is not EventType.AGENT_STATE
    }
    assert engine.agents_of(events) == {
        e.agent for e in events if e.agent is not None and engine._touches_agent(e)
    }


def test_registers_and_wire_events_stay_out_of_the_cyclic_collector() -> None:
    """A hot sheet holds about six registers and a poll thousands of wire events: kept out of
    the collector's generations (`gc=False`), its young collections took half the time in a
    catch-up (docs/capacity.md). Neither can be part of a cycle: names, numbers, ids, text."""
    event = engine.decode(
        0,
        [
            (
                0,
                b'{"id":"e1","type":"contact.offered","time":"2026-01-01T00:00:00Z",'
                b'"contact":"c1","channel":"voice"}',
            )
        ],
    ).events[0]
    assert type(event) is WireEvent
    assert not gc.is_tracked(event)
    assert not gc.is_tracked(Register("voice", 1, "e1"))
    sheet = ContactFacts("c1")
    fold(sheet, event)
    assert sheet.channel is not None and not gc.is_tracked(sheet.channel)
