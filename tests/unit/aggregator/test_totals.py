"""aggregator/totals.py: the monotonic totals count what contributions count, never go down,
and increases less corrections give the net change (docs/metrics.md, counters for rate())."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import contributions as contrib
from aggregator import totals
from aggregator.facts import ContactFacts, Register
from services import kpis
from tests.unit.aggregator.test_contributions import BASE_MS, sheets


@settings(max_examples=300, deadline=None)
@given(sheet=sheets)
def test_counts_are_the_contributions_counts(sheet: ContactFacts) -> None:
    whole: dict[tuple[str, str], int] = {}
    for (_, scope), fields in contrib.contribution(sheet).items():
        if scope.startswith("ag|"):
            continue
        for name, value in (
            (kpis.OFFERED, fields.get(kpis.OFFERED, 0)),
            (kpis.ANSWERED, kpis.answered(fields)),
            (kpis.ABANDONED, fields.get(kpis.ABANDONED, 0)),
        ):
            if value:
                whole[(scope, name)] = whole.get((scope, name), 0) + value
    assert totals.counts(sheet) == whole


@settings(max_examples=300, deadline=None)
@given(path=st.lists(sheets, min_size=1, max_size=5))
def test_totals_never_decrease_and_net_to_the_last_sheet(path: list[ContactFacts]) -> None:
    """One contact's sheets as batches apply them: every step adds only positive numbers, and
    per scope and count, increases less corrections equal the last sheet's count."""
    seen: totals.Steps = {}
    old: ContactFacts | None = None
    for sheet in path:
        step: totals.Steps = {}
        totals.add_steps(step, old, sheet)
        assert all(n > 0 for n in step.values())
        for cell, n in step.items():
            seen[cell] = seen.get(cell, 0) + n
        old = sheet
    by_scope: dict[str, dict[str, int]] = {}
    for (scope, name), n in seen.items():
        by_scope.setdefault(scope, {})[name] = n
    final = totals.counts(path[-1])
    for scope in by_scope.keys() | {scope for scope, _ in final}:
        for name in totals.COUNTS:
            assert totals.net(by_scope.get(scope, {}), name) == final.get((scope, name), 0)


def test_a_late_answer_moves_the_abandon_into_corrections() -> None:
    abandoned = ContactFacts(
        contact="c1",
        channel=Register("voice", BASE_MS, "e1"),
        offered_ms=BASE_MS,
        abandoned_ms=BASE_MS + 20_000,
    )
    answered = abandoned.copy()
    answered.answered_ms = BASE_MS + 10_000
    first: totals.Steps = {}
    totals.add_steps(first, None, abandoned)
    assert first == {("ch|voice", "offered"): 1, ("ch|voice", "abandoned"): 1}
    late: totals.Steps = {}
    totals.add_steps(late, abandoned, answered)
    assert late == {("ch|voice", "answered"): 1, ("ch|voice", "abandoned_corrected"): 1}
