"""add_delta's and add_steps' shortcuts against their plain definitions, order included.

The step's payload lists the counters in the order `add_delta` first touches them, so a shortcut
must add the same cells and fields in the same order, not only the same numbers: each test here
compares ordered lists. The sheets are pairs as a batch makes them (the new one the old with a
few facts changed, unchanged stages shared) as well as unrelated ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import contributions as contrib
from aggregator import totals
from aggregator.facts import ContactFacts
from services import keys
from tests.unit.aggregator.test_contributions import calendars, sheets

FIELDS = [name for name in ContactFacts.__struct_fields__ if name != "contact"]


@st.composite
def pairs(draw: st.DrawFn) -> tuple[ContactFacts | None, ContactFacts]:
    """(old, new): unrelated, or new as old with some facts taken from another sheet."""
    old, other = draw(st.none() | sheets), draw(sheets)
    if old is None or draw(st.booleans()):
        return old, other
    changed = draw(st.sets(st.sampled_from(FIELDS), max_size=3))
    return old, msgspec.structs.replace(old, **{name: getattr(other, name) for name in changed})


def ordered(deltas: contrib.Contribution) -> list[tuple[contrib.Cell, list[tuple[str, int]]]]:
    return [(cell, list(fields.items())) for cell, fields in deltas.items()]


def plain_spread(
    into: contrib.Contribution, scopes: Sequence[str], items: list[contrib.Item]
) -> None:
    for scope in scopes:
        for minute, name, value in items:
            if value:
                cell = into.setdefault((minute, scope), {})
                cell[name] = cell.get(name, 0) + value


def plain_add_delta(
    into: contrib.Contribution,
    old: ContactFacts | None,
    new: ContactFacts,
    cal: contrib.Calendars,
) -> None:
    """add_delta before its shortcuts: every item of both sheets, summed, then subtracted."""
    new_scopes = contrib.scopes_of(new)
    old_scopes = contrib.scopes_of(old) if old is not None else ()
    if not old_scopes:
        if new_scopes:
            items, agent_items = contrib._items(new, cal)
            plain_spread(into, new_scopes, items)
            if contrib.agent_of(new) is not None:
                plain_spread(into, (keys.agent_scope(str(contrib.agent_of(new))),), agent_items)
        return
    assert old is not None
    new_whole, new_agent = contrib._sums(new, cal) if new_scopes else ({}, {})
    old_whole, old_agent = contrib._sums(old, cal)
    both = [s for s in new_scopes if s in old_scopes]
    plain_spread(into, both, contrib._minus(new_whole, old_whole))
    new_only = [s for s in new_scopes if s not in old_scopes]
    plain_spread(into, new_only, contrib._nonzero(new_whole))
    old_only = [s for s in old_scopes if s not in new_scopes]
    plain_spread(into, old_only, contrib._minus({}, old_whole))
    new_agent_name = contrib.agent_of(new) if new_scopes else None
    old_agent_name = contrib.agent_of(old)
    if new_agent_name == old_agent_name:
        if new_agent_name is not None:
            scope = (keys.agent_scope(new_agent_name),)
            plain_spread(into, scope, contrib._minus(new_agent, old_agent))
        return
    if new_agent_name is not None:
        plain_spread(into, (keys.agent_scope(new_agent_name),), contrib._nonzero(new_agent))
    if old_agent_name is not None:
        plain_spread(into, (keys.agent_scope(old_agent_name),), contrib._minus({}, old_agent))


@settings(max_examples=1500, deadline=None)
@given(first=pairs(), second=pairs(), cal=calendars)
def test_add_delta_adds_the_plain_cells_in_the_plain_order(
    first: tuple[ContactFacts | None, ContactFacts],
    second: tuple[ContactFacts | None, ContactFacts],
    cal: contrib.Calendars | None,
) -> None:
    """Two contacts of one batch: the second adds to cells the first made."""
    got: contrib.Contribution = {}
    want: contrib.Contribution = {}
    for old, new in (first, second):
        contrib.add_delta(got, old, new, cal)
        plain_add_delta(want, old, new, cal or {})
    assert ordered(got) == ordered(want)


items = st.lists(
    st.tuples(st.sampled_from([60, 120, 180]), st.sampled_from(["a", "b", "c"]), st.integers(0, 3)),
    max_size=8,
)


@settings(max_examples=500, deadline=None)
@given(after=items, before=items)
def test_net_is_minus_of_the_sums(after: list[contrib.Item], before: list[contrib.Item]) -> None:
    want = contrib._minus(contrib._summed(after), contrib._summed(before))
    assert contrib._net(after, before) == want


def plain_steps(old: ContactFacts | None, new: ContactFacts) -> totals.Steps:
    """docs/metrics.md: each cell's rise under its name, each fall under name + CORRECTED."""
    before, after = totals.counts(old), totals.counts(new)
    out: totals.Steps = {}
    for scope, name in before.keys() | after.keys():
        change = after.get((scope, name), 0) - before.get((scope, name), 0)
        if change:
            target = (scope, name if change > 0 else name + totals.CORRECTED)
            out[target] = out.get(target, 0) + abs(change)
    return out


@settings(max_examples=800, deadline=None)
@given(first=pairs(), second=pairs())
def test_add_steps_is_the_plain_change_of_the_counts(
    first: tuple[ContactFacts | None, ContactFacts],
    second: tuple[ContactFacts | None, ContactFacts],
) -> None:
    got: totals.Steps = {}
    want: totals.Steps = {}
    for old, new in (first, second):
        totals.add_steps(got, old, new)
        for cell, n in plain_steps(old, new).items():
            want[cell] = want.get(cell, 0) + n
    assert got == want


HELPERS = {
    "volume": contrib._volume_items,
    "answer": contrib._answer_items,
    "abandon": contrib._abandon_items,
    "stages": contrib._stage_items,
    "handle": contrib._handle_items,
    "resolution": contrib._resolution_items,
    "survey": contrib._survey_items,
}


def helper_items(name: str, f: ContactFacts, cal: contrib.Calendars) -> list[contrib.Item]:
    if name == "business":
        hours = contrib.hours_for(f, cal)
        return [] if hours is None else contrib._business_items(f, hours)
    out: list[contrib.Item] = []
    HELPERS[name](f, out)
    return out


@settings(max_examples=1000, deadline=None)
@given(
    old=sheets,
    other=sheets,
    changed=st.sets(st.sampled_from(FIELDS), max_size=2),
    cal=calendars,
    agent=st.booleans(),
)
def test_helpers_skipped_as_unchanged_give_both_sheets_the_same_items(
    old: ContactFacts,
    other: ContactFacts,
    changed: set[str],
    cal: contrib.Calendars | None,
    agent: bool,
) -> None:
    """What lets add_delta leave a helper's items out of both sheets: `_unchanged` names it
    only when its items (and hours) are equal; agent-counted helpers only with `agent`."""
    new = msgspec.structs.replace(old, **{name: getattr(other, name) for name in changed})
    skip = contrib._unchanged(old, new, bool(cal), agent)
    assert skip <= set(HELPERS) | {"business"}
    if not agent:
        assert not skip & {"volume", "answer", "handle", "resolution", "survey"}
    if not cal:
        assert "business" not in skip
    for name in skip:
        assert helper_items(name, old, cal or {}) == helper_items(name, new, cal or {}), name
    if "business" in skip:
        assert contrib.hours_for(old, cal or {}) == contrib.hours_for(new, cal or {})


def test_the_shared_unseen_gauges_are_a_new_contacts_gauges() -> None:
    """plan() gives every new contact's move this one frozen instance as its old side."""
    assert contrib.Gauges(*contrib.NO_GAUGES) == contrib.NOT_SEEN
    assert contrib.Gauges((), None, None) == contrib.NOT_SEEN
