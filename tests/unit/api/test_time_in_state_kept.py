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
