"""Time in state with the closed intervals kept (api/time_in_state.py) equals
`kpis.time_in_state` exactly (the same floats), read again at later ends and other starts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.time_in_state import time_in_state
from services import kpis

changes = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from(["e1", "e2", "e3"]), st.sampled_from("abc")),
    max_size=12,
)


@given(changes, st.integers(0, 10_000), st.lists(st.integers(0, 20_000), min_size=1, max_size=4))
def test_equals_the_definition_at_every_end(
    log: list[kpis.StateChange], start: int, ends: list[int]
) -> None:
    for end in ends:  # the same log read again as the clock moves (and once past the end)
        assert time_in_state(log, start, end) == kpis.time_in_state(log, start, end)
        inside = [change for change in log if change[0] < end]
        assert time_in_state(inside, start, end) == kpis.time_in_state(inside, start, end)


@given(
    changes,
    st.lists(changes, min_size=1, max_size=4),
    st.integers(0, 10_000),
    st.sampled_from(["agent-a", "agent-b"]),
)
def test_a_named_log_read_again_as_it_grows_equals_the_definition(
    first: list[kpis.StateChange],
    more: list[list[kpis.StateChange]],
    start: int,
    name: str,
) -> None:
    """A busy agent's log, read push after push: appended to in order, or out of order (a
    late change), or with repeats; each read equals the definition (the same floats)."""
    log = sorted(set(first))
    for extra in more:
        after = max((at for at, _, _ in log), default=0) + 1
        later = sorted({(after + at, event, state) for at, event, state in extra})
        for grown in (log + later, log + sorted(set(extra)), log + extra):  # after, or as it comes
            end = max((at for at, _, _ in grown), default=0) + 1
            assert time_in_state(grown, start, end, log=name) == kpis.time_in_state(
                grown, start, end
            )
        log = sorted(set(log + extra))


def test_a_log_that_goes_on_in_order_is_summed_from_where_it_was() -> None:
    """Later reads only add the new changes, also when the log kept ended before the window's
    start: their floats are the definition's all the same."""
    log = [(1_000 * i, f"e{i}", "abc"[i % 3]) for i in range(1, 200)]
    for n in (50, 51, 120, 199):
        seen = log[:n]
        end = seen[-1][0] + 1
        assert time_in_state(seen, 50_500, end, log="busy") == kpis.time_in_state(seen, 50_500, end)


def test_a_log_kept_out_of_order_is_summed_again_when_it_grows() -> None:
    """A log read once out of order (a late change): what comes next may fall before its
    latest change, so the sums are made again, not gone on from."""
    first = [(5_000, "e5", "a"), (3_000, "e3", "b")]
    grown = [*first, (4_000, "e4", "c")]
    assert time_in_state(first, 0, 6_000, log="late") == kpis.time_in_state(first, 0, 6_000)
    assert time_in_state(grown, 0, 6_000, log="late") == kpis.time_in_state(grown, 0, 6_000)
