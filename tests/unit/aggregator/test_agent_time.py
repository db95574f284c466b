"""aggregator/agent_time.py: a late state change re-rolls only the intervals whose rows it can
move (`reroll_starts`), checked against the rows of every interval computed from scratch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.agent_time import interval_row, reroll_starts, rows_for
from services import keys
from services.kpis import StateChange

W = keys.INTERVAL_SECONDS
DAY_START = 1_893_456_000  # an interval start; the rows are pure functions of the log
STATES = ("available", "on_contact", "after_contact_work", "not_ready", "offline")

changes = st.lists(
    st.tuples(st.integers(0, 12 * W * 1000 - 1), st.sampled_from(STATES)), max_size=25
)


def log_of(items: list[tuple[int, str]], prefix: str) -> list[StateChange]:
    return [(DAY_START * 1000 + ms, f"{prefix}{n}", state) for n, (ms, state) in enumerate(items)]


def rows(log: list[StateChange], until_s: int) -> dict[int, dict[str, int]]:
    ordered = sorted(set(log))
    return {start: interval_row(start, ordered) for start in range(DAY_START, until_s, W)}


@settings(max_examples=300, deadline=None)
@given(before=changes, late=changes.filter(bool), watermark=st.integers(1, 12))
def test_rows_outside_the_reroll_stay_as_they_were(
    before: list[tuple[int, str]], late: list[tuple[int, str]], watermark: int
) -> None:
    """Rows rolled before late changes arrived differ from the rows after them only in the
    intervals `reroll_starts` names for the intervals those changes fell in."""
    until_s = DAY_START + watermark * W
    old_log = log_of(before, "a")
    new_log = old_log + log_of(late, "late")
    marks = {keys.interval_start_s(ms / 1000) for ms, _, _ in log_of(late, "late")}
    spans = reroll_starts(
        [m for m in marks if m < until_s], sorted({ms for ms, _, _ in new_log}), until_s
    )
    old_rows, new_rows = rows(old_log, until_s), rows(new_log, until_s)
    moved = {start for start in old_rows if old_rows[start] != new_rows[start]}
    assert moved <= spans
    assert all(DAY_START <= start < until_s for start in spans)


def test_a_late_change_re_rolls_up_to_the_next_change_only() -> None:
    times = [(DAY_START + 10) * 1000, (DAY_START + 3 * W + 5) * 1000]
    assert reroll_starts([DAY_START], times, DAY_START + 10 * W) == {
        DAY_START + n * W for n in range(4)
    }  # its interval, the next two, and the one where the next change takes over
    assert reroll_starts([DAY_START], times[:1], DAY_START + 5 * W) == {
        DAY_START + n * W for n in range(5)
    }  # no later change: up to the watermark


@settings(max_examples=200, deadline=None)
@given(log=changes, now_offset_s=st.integers(0, 12 * W))
def test_rows_for_equals_each_interval_computed_from_the_whole_log(
    log: list[tuple[int, str]], now_offset_s: int
) -> None:
    """`rows_for` reads only the changes around each interval; the rows equal `interval_row`
    over the whole log (ties in time included: the strategy repeats instants)."""
    changes_ = log_of(log, "c") + log_of(log[:3], "d")  # some changes at the same instant
    now_s = DAY_START + now_offset_s
    starts = list(range(DAY_START - W, DAY_START + 13 * W, W))
    upsert, empty = rows_for("ann", starts, changes_, now_s)
    ordered = sorted(set(changes_))
    want = {
        start: interval_row(start, ordered, min((start + W) * 1000, now_s * 1000))
        for start in starts
    }
    got = {row["start_s"]: {k: v for k, v in row.items() if k.endswith("_ms")} for row in upsert}
    assert got == {start: row for start, row in want.items() if any(row.values())}
    assert set(empty) == {start for start, row in want.items() if not any(row.values())}
