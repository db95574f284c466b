"""The api's fast summing and merging paths equal the plain ones they replaced."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from api.live_reader import batched_keys, by_scope, parse_changes, sum_fields
from api.metrics import _scope_readings
from api.snapshot import _queue_name
from services import keys
from services.settings import Settings

names = st.sampled_from(["offered", "answered", "aw:3", "abst:menu", "handle_ms"])
scopes = st.sampled_from(
    ["ch|voice", "ch|chat", "q|voice|sales", "q|chat|sales", "q|voice|help", "ag|ann", "ag|bo"]
)
fields = st.builds(keys.counter_field, scopes, names)
values = st.integers(min_value=-(2**40), max_value=2**40)
partition_rows = st.lists(st.dictionaries(fields, values, max_size=12), max_size=6)


def slow_counters(rows: list[dict[str, int]], wanted: list[str]) -> dict[str, dict[str, int]]:
    """The reader before: every field of every partition parsed and added on its own."""
    out: dict[str, dict[str, int]] = {scope: {} for scope in wanted}
    for row in rows:
        for field, value in row.items():
            scope, name = keys.parse_counter_field(field)
            if scope in out:
                out[scope][name] = out[scope].get(name, 0) + value
    return out


def flat(row: dict[str, int], as_bytes: bool) -> list[str | bytes]:
    """A partition's reply as Redis sends it: `field, value, ...`, values as text."""
    out: list[str | bytes] = []
    for field, value in row.items():
        pair = (field, str(value))
        out += [p.encode() for p in pair] if as_bytes else pair
    return out


@settings(max_examples=300, deadline=None)
@given(partition_rows, st.lists(scopes, unique=True), st.booleans())
def test_summing_fields_first_equals_parsing_every_field(
    rows: list[dict[str, int]], wanted: list[str], as_bytes: bool
) -> None:
    fast = by_scope(sum_fields(flat(row, as_bytes) for row in rows), wanted)
    slow = slow_counters(rows, wanted)
    assert fast == slow
    for scope in wanted:  # same order of counters too: documents list them in that order
        assert list(fast[scope]) == list(slow[scope])


changes = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2**45),
        st.text("ab-|1", min_size=1, max_size=6),
        st.sampled_from(["available", "busy", "not_ready"]),
    ),
    max_size=8,
)


@given(changes)
def test_state_log_replies_parse_to_the_changes(log: list[tuple[int, str, str]]) -> None:
    """A script's `member, score` reply (scores as text) gives what redis-py's float scores
    gave: (ms, event id, state)."""
    reply: list[str | bytes] = []
    for ms, event_id, state in log:
        reply += [f"{event_id}|{state}".encode(), repr(float(ms)).encode()]
    assert parse_changes(reply) == log


queue_scopes = st.lists(
    st.tuples(st.sampled_from(["voice", "chat", "email"]), st.sampled_from(["a", "b", "sales"])),
    unique=True,
    max_size=8,
)


@given(queue_scopes)
def test_metrics_list_queues_in_the_live_document_order(pairs: list[tuple[str, str]]) -> None:
    """Queues come out sorted by the name the live document gives them (a name repeated on
    another channel gets `name (channel)`), each with its own queue name as the label."""
    scopes = sorted(keys.queue_scope(ch, q) for ch, q in pairs)
    document: dict[str, dict[str, str]] = {}
    for scope in scopes:
        _, channel, queue = keys.parse_scope(scope)
        document[_queue_name(document, channel, queue)] = {"channel": channel, "queue": queue}
    readings = _scope_readings(scopes, {}, {}, Settings())
    expected = [(v["channel"], v["queue"]) for _, v in sorted(document.items())]
    assert [(r.channel, r.queue) for r in readings] == expected


key_groups = st.lists(st.lists(st.text("abc", min_size=1, max_size=3), max_size=7), max_size=8)


@given(key_groups, st.integers(min_value=1, max_value=12))
def test_partitions_keys_are_batched_in_order_within_the_limit(
    groups: list[list[str]], limit: int
) -> None:
    batches = batched_keys(groups, limit)
    assert [k for b in batches for k in b] == [k for g in groups for k in g]
    sizes = [len(g) for g in groups]
    for batch in batches:
        assert len(batch) <= limit or len(batch) in sizes  # only a group too big alone exceeds
    for first, second in itertools.pairwise(batches):
        assert len(first) + len(second) > limit or not first or not second


@settings(max_examples=200, deadline=None)
@given(partition_rows)
def test_one_sum_over_partitions_equals_summing_each_partitions_sum(
    rows: list[dict[str, int]],
) -> None:
    """What one script over several partitions' buckets returns (their fields summed, in the
    order first seen) gives the same counters as one reply per partition summed here."""
    wanted = ["ch|voice", "q|voice|sales", "ag|ann"]
    together = sum_fields(flat(row, True) for row in rows)
    joined = flat({k.decode() if isinstance(k, bytes) else k: v for k, v in together.items()}, True)
    assert by_scope(sum_fields([joined]), wanted) == slow_counters(rows, wanted)
