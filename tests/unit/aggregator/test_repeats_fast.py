"""The measured-FCR fast paths (aggregator/repeats.py) against their plain definitions, kept
here as the specification: the same groups, members, versions and counter deltas, in the same
order (the payloads written to Redis must not change by a byte)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import engine, repeats
from aggregator.contributions import Contribution, diff, minute_of
from aggregator.facts import ContactFacts, Register
from aggregator.repeats import GroupSheet
from aggregator.state import GroupCache
from services import keys
from services import kpis as k
from services.contract import Channel, ContactEvent, Event, EventType, WireEvent

BASE_MS = 1_760_000_000_000
WINDOW_MS = 3_600_000
ms = st.integers(BASE_MS, BASE_MS + 3 * WINDOW_MS)
CONTACTS = ["c1", "c2", "c3", "c4", "c5"]
GROUPS = [f"{c}{keys.SEP}{i}" for c in ("ann", "bob") for i in ("x", "y")]

members = st.tuples(
    st.none() | ms,
    st.none() | ms,
    st.sampled_from(["voice", "chat"]),
    st.none() | st.sampled_from(["sales", "support"]),
)
sheets = st.builds(
    GroupSheet,
    st.integers(0, 5),
    st.dictionaries(st.sampled_from(CONTACTS), members, max_size=5),
    st.dictionaries(st.integers(0, 3), st.integers(0, 100), max_size=2),
)
groups = st.dictionaries(st.sampled_from(GROUPS), st.none() | sheets, max_size=4)


def register(values: Iterable[object]) -> st.SearchStrategy[Register | None]:
    return st.none() | st.builds(Register, st.sampled_from(list(values)), ms, st.just("e1"))


def contact_facts(contact: str) -> st.SearchStrategy[ContactFacts]:
    return st.builds(
        ContactFacts,
        contact=st.just(contact),
        channel=register(["voice", "chat"]),
        queue=register(["sales", "support"]),
        customer=register(["ann", "bob"]),
        issue=register(["x", "y"]),
        offered_ms=st.none() | ms,
        resolved_ms=st.none() | ms,
    )


@st.composite
def facts_by_contact(draw: st.DrawFn) -> dict[str, ContactFacts]:
    chosen = draw(st.lists(st.sampled_from(CONTACTS), unique=True, max_size=5))
    return {c: draw(contact_facts(c)) for c in chosen}


def plain_regroup(
    new_facts: Mapping[str, ContactFacts],
    old_facts: Mapping[str, ContactFacts | None],
    old_groups: Mapping[str, GroupSheet | None],
) -> dict[str, GroupSheet]:
    """`regroup` as first written: every contact's before and after, every group's members."""
    changed: dict[str, GroupSheet] = {}

    def sheet(key: str) -> GroupSheet:
        if key not in changed:
            old = old_groups.get(key) or GroupSheet()
            changed[key] = GroupSheet(old.version + 1, dict(old.members))
        return changed[key]

    holders: dict[str, list[str]] = {}
    for key, group in old_groups.items():
        for contact in group.members if group is not None else ():
            if contact in new_facts:
                holders.setdefault(contact, []).append(key)
    for contact, facts in new_facts.items():
        old = old_facts.get(contact)
        before = (repeats.group_of(old), repeats.member_of(old))
        after = (repeats.group_of(facts), repeats.member_of(facts))
        if before != after:
            if before[0] is not None:
                sheet(before[0]).members.pop(contact, None)
            if after[0] is not None and after[1] is not None:
                sheet(after[0]).members[contact] = after[1]
        for key in holders.get(contact, ()):
            if key not in (before[0], after[0]):
                current = changed[key] if key in changed else old_groups[key]
                if current is not None and contact in current.members:
                    sheet(key).members.pop(contact, None)
    return changed


def plain_contribution(sheet: GroupSheet | None, window_ms: int) -> Contribution:
    """`contribution` as first written."""
    out: Contribution = {}
    if sheet is None:
        return out
    offers = [(c, m[0]) for c, m in sheet.members.items() if m[0] is not None]
    for contact, (_, resolved, channel, queue) in sheet.members.items():
        if resolved is None:
            continue
        repeated = any(
            resolved < offered <= resolved + window_ms
            for other, offered in offers
            if other != contact
        )
        scopes = [keys.channel_scope(channel)]
        if queue is not None:
            scopes.append(keys.queue_scope(channel, queue))
        for scope in scopes:
            cell = out.setdefault((minute_of(resolved), scope), {})
            cell[k.FCR_ELIGIBLE] = cell.get(k.FCR_ELIGIBLE, 0) + 1
            if not repeated:
                cell[k.FCR_MET] = cell.get(k.FCR_MET, 0) + 1
    return out


def plain_candidates(
    contacts: Iterable[str],
    old_facts: Mapping[str, ContactFacts | None],
    new_customers: Mapping[str, set[str]],
    new_issues: Mapping[str, set[str]],
) -> set[str]:
    """`candidate_groups` as first written."""
    out: set[str] = set()
    for contact in contacts:
        old = old_facts.get(contact)
        customers = set(new_customers.get(contact, ()))
        issues = set(new_issues.get(contact, ()))
        if old is not None and old.customer is not None:
            customers.add(str(old.customer.value))
        if old is not None and old.issue is not None:
            issues.add(str(old.issue.value))
        out.update(f"{c}{keys.SEP}{i}" for c in customers for i in issues)
    return out


def ordered(contribution: Contribution) -> list[tuple[object, list[tuple[str, int]]]]:
    """Equal, and in the same order: cells and their fields."""
    return [(cell, list(fields.items())) for cell, fields in contribution.items()]


def listed(changed: Mapping[str, GroupSheet]) -> list[tuple[str, int, list[object]]]:
    return [(g, s.version, list(s.members.items())) for g, s in changed.items()]


@settings(max_examples=500, deadline=None)
@given(new=facts_by_contact(), old=facts_by_contact(), read=groups)
def test_regroup_is_its_plain_definition(
    new: dict[str, ContactFacts], old: dict[str, ContactFacts], read: dict[str, GroupSheet | None]
) -> None:
    """Stale holders included: the groups read may hold any contact of the batch."""
    assert listed(repeats.regroup(new, old, read)) == listed(plain_regroup(new, old, read))


@settings(max_examples=500, deadline=None)
@given(sheet=st.none() | sheets, window=st.sampled_from([1, WINDOW_MS, 10 * WINDOW_MS]))
def test_contribution_is_its_plain_definition(sheet: GroupSheet | None, window: int) -> None:
    assert ordered(repeats.contribution(sheet, window)) == ordered(
        plain_contribution(sheet, window)
    )


@settings(max_examples=500, deadline=None)
@given(old=groups, new=st.dictionaries(st.sampled_from(GROUPS), sheets, max_size=4))
def test_deltas_are_the_diff_of_the_plain_contributions(
    old: dict[str, GroupSheet | None], new: dict[str, GroupSheet]
) -> None:
    """Groups with no resolved member on either side skip both contributions: still `{}`."""
    fast = repeats.deltas(old, new, WINDOW_MS)
    plain = {
        g: diff(plain_contribution(old.get(g), WINDOW_MS), plain_contribution(s, WINDOW_MS))
        for g, s in new.items()
    }
    assert [(g, ordered(d)) for g, d in fast.items()] == [(g, ordered(d)) for g, d in plain.items()]


cells = st.tuples(st.sampled_from([0, 60, 120]), st.sampled_from(["ch|voice", "q|voice|sales"]))
contributions = st.dictionaries(
    cells, st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(-2, 2)), max_size=4
)


@settings(max_examples=500, deadline=None)
@given(old=contributions, new=contributions)
def test_group_diff_is_diff(old: Contribution, new: Contribution) -> None:
    """Any contributions, zeros and equal cells included."""
    assert ordered(repeats.group_diff(old, new)) == ordered(diff(old, new))
    assert repeats.group_diff(new, new) == {}


many_fields = st.dictionaries(  # enough fields that a set of them resizes (five and more)
    cells,
    st.dictionaries(st.sampled_from([f"f{n}" for n in range(8)]), st.integers(-2, 2)),
    max_size=8,
)


@settings(max_examples=500, deadline=None)
@given(new=contributions | many_fields)
def test_gained_is_the_diff_from_nothing(new: Contribution) -> None:
    """Cells and fields in the very order `group_diff({}, new)` gives them (set order)."""
    assert ordered(repeats._gained(new)) == ordered(repeats.group_diff({}, new))
    assert ordered(repeats._gained(new)) == ordered(diff({}, new))


@settings(max_examples=300, deadline=None)
@given(
    old=facts_by_contact(),
    contacts=st.lists(st.sampled_from(CONTACTS), unique=True),
    customers=st.dictionaries(st.sampled_from(CONTACTS), st.sets(st.sampled_from(["ann", "b"]))),
    issues=st.dictionaries(st.sampled_from(CONTACTS), st.sets(st.sampled_from(["x", "z"]))),
)
def test_candidate_groups_are_their_plain_definition(
    old: dict[str, ContactFacts],
    contacts: list[str],
    customers: dict[str, set[str]],
    issues: dict[str, set[str]],
) -> None:
    fast = repeats.candidate_groups(contacts, old, customers, issues)
    assert list(fast) == list(plain_candidates(contacts, old, customers, issues))


@settings(max_examples=300, deadline=None)
@given(sheet=sheets)
def test_dumps_is_to_json_dumped(sheet: GroupSheet) -> None:
    """The group cache's text and the payloads' members as `to_json` would write them."""
    assert sheet.dumps() == orjson.dumps(sheet.to_json())
    assert orjson.dumps(sheet.members) == orjson.dumps(sheet.to_json()["m"])
    back = GroupSheet.from_json(orjson.loads(sheet.dumps()))
    assert (back.version, back.members, back.seen) == (sheet.version, sheet.members, sheet.seen)


@settings(max_examples=300, deadline=None)
@given(sheet=sheets)
def test_group_cache_text_is_dumps(sheet: GroupSheet) -> None:
    """The cache keeps a group as `dumps` writes it, and gives back an equal sheet."""
    cache = GroupCache(max_groups=4)
    cache.put({"ann|x": sheet})
    assert cache.sheets["ann|x"] == sheet.dumps().decode()
    assert cache.known(["ann|x"]) == ({"ann|x": sheet}, [])


def plain_groups_needed(
    events: list[Event], old_facts: Mapping[str, ContactFacts | None]
) -> set[str]:
    """`engine.groups_needed` as first written: two passes over the events."""
    customers: dict[str, set[str]] = {}
    issues: dict[str, set[str]] = {}
    for e in events:
        if e.contact is not None and e.customer is not None:
            customers.setdefault(e.contact, set()).add(e.customer)
        if e.contact is not None and e.issue is not None:
            issues.setdefault(e.contact, set()).add(e.issue)
    return plain_candidates(engine.contacts_of(events), old_facts, customers, issues)


def either(wire: bool, **fields: Any) -> Event:
    """An event as either decoder gives it (their fields are equal)."""
    if not wire:
        return ContactEvent.model_construct(**fields)
    return msgspec.structs.replace(
        WireEvent(id="e1", type=EventType.OFFERED, time=datetime(2030, 1, 1, tzinfo=UTC)), **fields
    )


wire_events = st.builds(
    either,
    wire=st.booleans(),
    type=st.sampled_from([EventType.OFFERED, EventType.RESOLVED, EventType.AGENT_STATE]),
    contact=st.none() | st.sampled_from(CONTACTS),
    customer=st.none() | st.sampled_from(["ann", "bob"]),
    issue=st.none() | st.sampled_from(["x", "y", "z"]),
)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(wire_events, max_size=12), old=facts_by_contact())
def test_groups_needed_is_its_plain_definition(
    events: list[Event], old: dict[str, ContactFacts]
) -> None:
    """Agent-state events name no contact of the batch, but their customer and issue count."""
    assert list(engine.groups_needed(events, old)) == list(plain_groups_needed(events, old))


@st.composite
def contact_batches(draw: st.DrawFn) -> list[Event]:
    """Offers and resolutions of the test's contacts, with customers and issues."""
    out: list[Event] = []
    for n in range(draw(st.integers(0, 10))):
        at_ms = draw(ms)
        out.append(
            either(
                draw(st.booleans()),
                id=f"e{n}",
                type=draw(st.sampled_from([EventType.OFFERED, EventType.RESOLVED])),
                time=datetime.fromtimestamp(at_ms / 1000, UTC),
                contact=draw(st.sampled_from(CONTACTS)),
                channel=draw(st.sampled_from([None, Channel.VOICE, Channel.CHAT])),
                customer=draw(st.none() | st.sampled_from(["ann", "bob"])),
                issue=draw(st.none() | st.sampled_from(["x", "y"])),
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(events=contact_batches(), old=facts_by_contact(), first=groups, second=groups)
def test_regrouped_is_the_plan_made_with_the_other_groups(
    events: list[Event],
    old: dict[str, ContactFacts],
    first: dict[str, GroupSheet | None],
    second: dict[str, GroupSheet | None],
) -> None:
    """A group conflict's retry (`engine.regrouped`): the plan made with some group sheets,
    its groups' part made again with others, is the plan made with those others."""
    made = engine.plan(events, old, {}, first, WINDOW_MS)
    want = engine.plan(events, old, {}, second, WINDOW_MS)
    same_plan(engine.regrouped(made, old, first, second, WINDOW_MS), want)


@settings(max_examples=400, deadline=None)
@given(events=contact_batches(), old=facts_by_contact(), first=groups, changes=groups)
def test_regrouped_makes_again_only_the_groups_that_changed(
    events: list[Event],
    old: dict[str, ContactFacts],
    first: dict[str, GroupSheet | None],
    changes: dict[str, GroupSheet | None],
) -> None:
    """A conflict changes a few of a step's groups: given the sheets the plan was made with,
    `regrouped` makes only those again and keeps the others' sheets and deltas, and the plan
    is still the one made with the new sheets. Also after the step marked its groups
    (`repeats.unapplied`, as the runner's `_step` does)."""
    second = {**first, **changes}
    want = engine.plan(events, old, {}, second, WINDOW_MS)
    made = engine.plan(events, old, {}, first, WINDOW_MS)
    same_plan(engine.regrouped(made, old, first, second, WINDOW_MS), want)
    marked = marked_by_step(engine.plan(events, old, {}, first, WINDOW_MS), first)
    got = engine.regrouped(marked, old, first, second, WINDOW_MS)
    same_plan(marked_by_step(got, second), marked_by_step(want, second))


def marked_by_step(plan: engine.Plan, read: dict[str, GroupSheet | None]) -> engine.Plan:
    """The plan as `Runner._step` leaves it for a batch of partition 0 up to offset 9."""
    plan.groups = repeats.unapplied(plan.groups, read, 0, 9)
    plan.group_deltas = {g: d for g, d in plan.group_deltas.items() if g in plan.groups}
    return plan


def same_plan(got: engine.Plan, want: engine.Plan) -> None:
    assert {g: s.dumps() for g, s in got.groups.items()} == {
        g: s.dumps() for g, s in want.groups.items()
    }
    assert got.group_deltas == want.group_deltas
    assert got.deltas == want.deltas and got.totals == want.totals
    assert {c: f.to_json() for c, f in got.facts.items()} == {
        c: f.to_json() for c, f in want.facts.items()
    }
