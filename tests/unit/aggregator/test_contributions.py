"""The fast paths of the counter deltas against their plain definitions, on random fact sheets.

`contributions.add_delta` must add exactly what `diff(contribution(old), contribution(new))`
followed by a merge adds (the same cells, the same fields, zeros included where merging makes
them), and `store.bucket_fields` exactly what `rollup` and one field string per scope and counter
give: any difference would move a counter.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import contributions as contrib
from aggregator.facts import ContactFacts, Register, fold
from aggregator.store import bucket_fields, rollup
from services import keys, kpis
from services.calendar import BusinessHours
from services.contract import ContactEvent

BASE_MS = 1_760_000_000_000
ms = st.integers(BASE_MS - 3_600_000, BASE_MS + 3 * 3_600_000)
ids = st.sampled_from(["e1", "e2", "e3"])


def register(values: st.SearchStrategy[object]) -> st.SearchStrategy[Register | None]:
    return st.none() | st.builds(Register, values, ms, ids)


sheets = st.builds(
    ContactFacts,
    contact=st.just("c1"),
    channel=register(st.sampled_from(["voice", "chat"])),
    queue=register(st.sampled_from(["sales", "support"])),
    agent=register(st.sampled_from(["alice", "bob"])),
    customer=register(st.just("cust")),
    issue=register(st.sampled_from(["billing", "order"])),
    offered_ms=st.none() | ms,
    queued_ms=st.none() | ms,
    answered_ms=st.none() | ms,
    answered_agent=register(st.sampled_from(["alice", "carol"])),
    abandoned_ms=st.none() | ms,
    abandon_stage=register(st.sampled_from(["menu", "queue"])),
    timed_out_ms=st.none() | ms,
    completed_ms=st.none() | ms,
    resolved_ms=st.none() | ms,
    first_contact=register(st.booleans()),
    stages=st.dictionaries(st.sampled_from(["welcome", "menu", "queue"]), ms, max_size=3),
    transfers=st.dictionaries(ids, ms, max_size=2),
    escalations=st.dictionaries(ids, st.builds(Register, st.just("angry"), ms, ids), max_size=2),
    csat=register(st.integers(1, 5)),
    nps=register(st.integers(0, 10)),
)
calendars = st.sampled_from(
    [
        None,
        {"*": BusinessHours()},
        {"sales": BusinessHours(open=time(9, 0), close=time(17, 0), timezone="Europe/Paris")},
    ]
)


def merged(*parts: contrib.Contribution) -> contrib.Contribution:
    """What engine._merge_deltas builds from per-contact diffs."""
    total: contrib.Contribution = {}
    for part in parts:
        for cell, fields in part.items():
            target = total.setdefault(cell, {})
            for name, value in fields.items():
                target[name] = target.get(name, 0) + value
    return total


@settings(max_examples=400, deadline=None)
@given(old=st.none() | sheets, new=sheets, other=sheets, cal=calendars)
def test_add_delta_is_the_diff_of_the_two_contributions(
    old: ContactFacts | None, new: ContactFacts, other: ContactFacts, cal: contrib.Calendars | None
) -> None:
    before = contrib.contribution(old, cal) if old is not None else {}
    want = merged(
        contrib.diff({}, contrib.contribution(other, cal)),  # another contact, same batch
        contrib.diff(before, contrib.contribution(new, cal)),
    )
    got: contrib.Contribution = {}
    contrib.add_delta(got, None, other, cal)
    contrib.add_delta(got, old, new, cal)
    assert got == want


@settings(max_examples=50, deadline=None)
@given(sheet=sheets, cal=calendars)
def test_a_sheet_against_itself_adds_nothing(sheet: ContactFacts, cal: contrib.Calendars) -> None:
    got: contrib.Contribution = {}
    contrib.add_delta(got, sheet, sheet, cal)
    assert got == {}


deltas = st.dictionaries(
    st.tuples(
        st.integers(0, 200).map(lambda m: 1_759_996_800 + m * 60),  # minute starts
        st.sampled_from(["ch|voice", "q|voice|sales", "ag|alice"]),
    ),
    st.dictionaries(st.sampled_from(["off", "ans", "aw:3"]), st.integers(-3, 3), max_size=3),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(plan_deltas=deltas, age_h=st.integers(0, 60))
def test_bucket_fields_is_rollup_with_field_names(
    plan_deltas: contrib.Contribution, age_h: int
) -> None:
    now_s = 1_759_996_800 + age_h * 3600
    ttl = 48 * 3600
    want: dict[tuple[str, int], dict[str, int]] = {}
    scopes: dict[str, int] = {}
    for (res, start, scope), fields in rollup(plan_deltas).items():
        if start + keys.RESOLUTIONS[res] + ttl <= now_s:
            continue
        flat = want.setdefault((res, start), {})
        for name, value in fields.items():
            flat[keys.counter_field(scope, name)] = value
        if res == "m":
            scopes[scope] = max(scopes.get(scope, 0), start)
    got, got_scopes = bucket_fields(plan_deltas, now_s, ttl)
    assert got == want
    assert got_scopes == scopes


_FOLDS = {
    "contact.ivr": {"stage": "menu"},
    "contact.queued": {"stage": "hold"},
    "contact.transferred": {},
    "contact.escalated": {"reason": "legal"},
}


def _event(kind: str, n: int) -> ContactEvent:
    at = datetime.fromtimestamp((BASE_MS + 4 * 3_600_000 + n) / 1000, UTC)
    return ContactEvent(id=f"later-{n}", type=kind, time=at, contact="c1", **_FOLDS[kind])


@settings(max_examples=100, deadline=None)
@given(sheet=sheets, kinds=st.lists(st.sampled_from(sorted(_FOLDS)), min_size=1, max_size=4))
def test_a_copied_sheet_is_equal_and_folding_into_it_leaves_the_original(
    sheet: ContactFacts, kinds: list[str]
) -> None:
    """The copy shares the original's mappings (never changed in place): a fold into the copy
    must replace them, or the plan's 'old' side of the diff would move with the new one."""
    before = sheet.to_json()
    copy = sheet.copy()
    assert copy == sheet
    assert copy.to_json() == before
    for n, kind in enumerate(kinds):
        fold(copy, _event(kind, n))
    assert sheet.to_json() == before
    held = {**copy.stages, **copy.transfers, **copy.escalations}
    assert all(_FOLDS[kind].get("stage", f"later-{n}") in held for n, kind in enumerate(kinds))


def test_bucket_fields_of_deltas_not_at_minute_starts_is_still_rollup() -> None:
    deltas = {(1_759_996_830, "ch|voice"): {"off": 1}, (1_759_996_850, "ch|voice"): {"off": -1}}
    assert bucket_fields(deltas, 1_759_996_800, 48 * 3600) == ({}, {})


def _plain_sums(
    f: ContactFacts, cal: contrib.Calendars
) -> tuple[dict[tuple[int, str], int], dict[tuple[int, str], int]]:
    """`contributions._sums` as metrics.md states it: every item summed per (minute, field);
    the agent's share is its fields' items (and each handle time again under its queue's
    field), business-hours items left out."""
    items = list(contrib._contact_items(f))
    agent: dict[tuple[int, str], int] = {}
    if contrib.agent_of(f) is not None:
        for minute, name, value in items:
            if name in contrib._AGENT_FIELDS or name.startswith(kpis.ANSWER_HIST):
                agent[(minute, name)] = agent.get((minute, name), 0) + value
                if name == kpis.HANDLE_MS and f.channel is not None:
                    queue = None if f.queue is None else str(f.queue.value)
                    by_queue = (minute, kpis.queue_handle_field(str(f.channel.value), queue))
                    agent[by_queue] = agent.get(by_queue, 0) + value
    hours = contrib.hours_for(f, cal)
    if hours is not None:
        items += contrib._business_items(f, hours)
    whole: dict[tuple[int, str], int] = {}
    for minute, name, value in items:
        whole[(minute, name)] = whole.get((minute, name), 0) + value
    return whole, agent


@settings(max_examples=300, deadline=None)
@given(sheet=sheets, cal=calendars)
def test_sums_are_the_items_summed(sheet: ContactFacts, cal: contrib.Calendars | None) -> None:
    """add_delta and contribution share `_sums`: the comparison above cannot see it drift."""
    assert contrib._sums(sheet, cal or {}) == _plain_sums(sheet, cal or {})


@settings(max_examples=200, deadline=None)
@given(sheet=sheets)
def test_stage_items_rank_stages_by_entry_time_then_name(sheet: ContactFacts) -> None:
    want: list[contrib.Item] = []
    path = sorted(sheet.stages.items(), key=lambda item: (item[1], item[0]))
    for position, (stage, at) in enumerate(path):
        want.append((contrib.minute_of(at), f"{kpis.STAGE_ENTERED}{stage}", 1))
        want.append((contrib.minute_of(at), f"{kpis.STAGE_RANK}{stage}", position))
    got: list[contrib.Item] = []
    contrib._stage_items(sheet, got)
    assert got == want


def test_stage_ties_in_time_rank_by_name() -> None:
    sheet = ContactFacts("c1", stages={"menu": BASE_MS, "hold": BASE_MS, "intro": BASE_MS - 1})
    got: list[contrib.Item] = []
    contrib._stage_items(sheet, got)
    assert [(name, value) for _, name, value in got if name.startswith(kpis.STAGE_RANK)] == [
        (f"{kpis.STAGE_RANK}intro", 0),
        (f"{kpis.STAGE_RANK}hold", 1),
        (f"{kpis.STAGE_RANK}menu", 2),
    ]


def test_scopes_of_names_each_sheet_by_its_own_values() -> None:
    """Scopes are remembered by (channel, queue): equal keys of other types (1 == True) and
    other queues must still get their own names."""
    voice = Register("voice", BASE_MS, "e1")
    sales = ContactFacts("c1", channel=voice, queue=Register("sales", BASE_MS, "e1"))
    support = ContactFacts("c2", channel=voice, queue=Register("support", BASE_MS, "e1"))
    assert contrib.scopes_of(sales) == ("ch|voice", "q|voice|sales")
    assert contrib.scopes_of(support) == ("ch|voice", "q|voice|support")
    assert contrib.scopes_of(ContactFacts("c3", channel=voice)) == ("ch|voice",)
    assert contrib.scopes_of(ContactFacts("c4", queue=sales.queue)) == ()
    one = ContactFacts("c5", channel=voice, queue=Register(1, BASE_MS, "e1"))
    true = ContactFacts("c6", channel=voice, queue=Register(True, BASE_MS, "e1"))
    assert contrib.scopes_of(one) == ("ch|voice", "q|voice|1")
    assert contrib.scopes_of(true) == ("ch|voice", "q|voice|True")


@settings(max_examples=300, deadline=None)
@given(sheet=sheets, cal=calendars)
def test_items_are_never_negative(sheet: ContactFacts, cal: contrib.Calendars | None) -> None:
    """add_delta spreads a new contact's items unsummed: exact only while none is negative
    (a zero sum then means all zeros, which add no field)."""
    items, agent = contrib._items(sheet, cal or {})
    assert all(value >= 0 for _, _, value in items + agent)
