"""`store.dirty_members` against its plain definition: every live (minute, scope) cell's
interval, and every recent agent state change's interval, formatted once each, sorted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.store import dirty_members
from services import keys
from tests.clock import clock

TTL_S = 48 * 3600
SCOPES = st.sampled_from(["ch|voice", "q|voice|sales", "ag|ann", "ch|chat"])
AGENTS = st.sampled_from(["ann", "bo", "cy"])


def _plain(
    deltas: dict[tuple[int, str], dict[str, int]],
    agent_log: list[tuple[str, str, str, int]],
    now_s: float,
) -> list[str]:
    oldest = now_s - TTL_S
    members = {
        keys.dirty_member(keys.interval_start_s(minute), scope)
        for minute, scope in deltas
        if minute + 60 > oldest
    }
    for agent, _, _, ms in agent_log:
        if ms / 1000 + 60 > oldest:
            start = keys.interval_start_s(ms / 1000)
            members.add(keys.dirty_member(start, keys.agent_scope(agent)))
    return sorted(members)


@settings(max_examples=300, deadline=None)
@given(
    minutes=st.lists(st.tuples(st.integers(-TTL_S // 60 - 5, 5), SCOPES), max_size=30),
    # Offsets in ms around the clock, interval edges and the retention edge among them.
    changes=st.lists(
        st.tuples(
            AGENTS,
            st.integers(-TTL_S * 1000 - 120_000, 60_000)
            | st.sampled_from([0, -1, 1, -(TTL_S - 60) * 1000, -(TTL_S - 60) * 1000 - 1]),
        ),
        max_size=30,
    ),
    skew_s=st.integers(0, 3600),
)
def test_dirty_members_are_their_plain_definition(
    minutes: list[tuple[int, str]], changes: list[tuple[str, int]], skew_s: int
) -> None:
    now_s = clock.now() + skew_s
    edge_ms = keys.interval_start_s(now_s) * 1000  # changes at and around an interval's start
    minute_now = int(now_s // 60) * 60
    deltas = {(minute_now + 60 * n, scope): {"off": 1} for n, scope in minutes}
    log = [(agent, f"e{i}", "idle", edge_ms + offset) for i, (agent, offset) in enumerate(changes)]
    assert dirty_members(deltas, log, now_s, TTL_S) == _plain(deltas, log, now_s)
