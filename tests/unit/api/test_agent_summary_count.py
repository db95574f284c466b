"""Agents counted in their channels' and queues' summaries (api/snapshot.py `_count`, which
works out once per agent what does not depend on the summary) give exactly what counting each
agent in each summary one by one gives: the same counts, reasons, longest times and rounded
running totals (the same float additions in the same order)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from api.snapshot import NO_REASON, _count, _empty_summary
from services import agentstates

STATES = [
    agentstates.AVAILABLE,
    agentstates.ON_CONTACT,
    agentstates.WRAP_UP,
    agentstates.NOT_READY,
    "offline",
]


def count_one(
    summary: dict[str, Any], state: str, reason: str | None, agent: dict[str, Any]
) -> None:
    """The plain definition: one agent in one summary."""
    bucket = "after_contact_work" if state == agentstates.WRAP_UP else state
    summary[bucket] += 1
    if state == agentstates.NOT_READY:
        by_reason = summary["not_ready_by_reason"]
        by_reason[reason or NO_REASON] = by_reason.get(reason or NO_REASON, 0) + 1
    if "state_seconds" not in agent:
        return
    seconds = agent["state_seconds"]
    timing = summary["current_state_seconds"][bucket]
    timing["longest_seconds"] = max(timing["longest_seconds"] or 0.0, seconds)
    timing["total_seconds"] = round(timing["total_seconds"] + seconds, 3)
    if state == agentstates.AVAILABLE:
        summary["longest_available_seconds"] = timing["longest_seconds"]


agents = st.lists(
    st.tuples(
        st.sampled_from(STATES),
        st.sampled_from([None, "lunch", "training"]),
        st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
        st.sets(st.integers(0, 3), max_size=4),  # the summaries it counts in
    ),
    max_size=30,
)


@given(agents)
def test_counting_an_agent_in_several_summaries_equals_one_by_one(
    rows: list[tuple[str, str | None, float | None, set[int]]],
) -> None:
    fast = [_empty_summary() for _ in range(4)]
    plain = [_empty_summary() for _ in range(4)]
    for state, reason, seconds, into in rows:
        agent: dict[str, Any] = {"state": state}
        if seconds is not None:
            agent["state_seconds"] = seconds
        _count([fast[i] for i in sorted(into)], state, reason, agent)
        for i in sorted(into):
            count_one(plain[i], state, reason, agent)
    assert fast == plain
