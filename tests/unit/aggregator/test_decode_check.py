"""`engine.decode` + `check` (a batch decoded at once, taken whole when its oldest and newest
events pass) against their plain definition: each record decoded, then judged by its age, the
dead letters in record order. Also `Source.poll`'s filter of records already applied, and
`agents_of` (the runner's lookup of a batch's agent sheets)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator import engine
from aggregator.source import past
from services.contract import decode_fast
from tests.clock import clock

LATENESS_S = 7200
NOW_S = float(int(clock.now()))


def plain(
    records: list[engine.Record], now_s: float, lateness_s: int
) -> tuple[list[Any], list[engine.DeadLetter], list[int]]:
    """What `check(decode(...))` means, one record at a time."""
    events: list[Any] = []
    dead: list[engine.DeadLetter] = []
    stamps: list[int] = []
    for record in records:
        try:
            event = decode_fast(record.value)
        except ValueError as exc:
            dead.append(engine.DeadLetter(record, f"invalid: {exc}"))
            continue
        time_s = event.time.timestamp()
        age = now_s - time_s
        if age > lateness_s:
            dead.append(engine.DeadLetter(record, f"late: {int(age)}s old, limit {lateness_s}s"))
        elif age < -engine.FUTURE_TOLERANCE_S:
            reason = f"future: {int(-age)}s ahead of the aggregator clock"
            dead.append(engine.DeadLetter(record, reason))
        else:
            events.append(event)
            stamps.append(int(time_s * 1000))
    return events, dead, stamps


def _value(n: int, age_s: float, kind: str) -> bytes:
    at = datetime.fromtimestamp(NOW_S - age_s, UTC).isoformat().replace("+00:00", "Z")
    body: dict[str, Any] = {"id": f"e{n}", "type": "contact.queued", "time": at, "contact": "c"}
    if kind == "invalid":
        body.pop("contact")
    elif kind == "garbage":
        return b"not json"
    elif kind == "agent":
        body = {"id": f"e{n}", "type": "agent.state", "time": at, "agent": "a", "state": "ready"}
    return json.dumps(body).encode()


# Ages around both limits (to the microsecond), and ordinary ones.
_AGES = st.one_of(
    st.integers(-3, 3).map(lambda d: LATENESS_S + d / 1e6),
    st.integers(-3, 3).map(lambda d: -engine.FUTURE_TOLERANCE_S + d / 1e6),
    st.sampled_from([LATENESS_S + 1.0, -engine.FUTURE_TOLERANCE_S - 1.0]),
    st.floats(0, LATENESS_S, allow_nan=False),
)
_ROWS = st.lists(
    st.tuples(_AGES, st.sampled_from(["ok", "ok", "ok", "agent", "invalid", "garbage"])),
    min_size=1,
    max_size=20,
)


@given(_ROWS, st.integers(0, 5), st.integers(0, 10**6))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_check_of_a_decoded_poll_is_the_plain_screen(
    rows: list[tuple[float, str]], partition: int, first: int
) -> None:
    values = [_value(n, age, kind) for n, (age, kind) in enumerate(rows)]
    offsets = [first + 2 * n for n in range(len(values))]  # gaps, as a compacted topic has
    records = [engine.Record(partition, o, v) for o, v in zip(offsets, values, strict=True)]
    decoded = engine.decode_values(partition, offsets, values)
    assert len(decoded) == len(values) and decoded.last == offsets[-1]
    assert engine.check(decoded, NOW_S, LATENESS_S) == plain(records, NOW_S, LATENESS_S)
    pairs = list(zip(offsets, values, strict=True))
    assert engine.check(engine.decode(partition, pairs), NOW_S, LATENESS_S) == plain(
        records, NOW_S, LATENESS_S
    )


def test_a_whole_batch_is_taken_only_when_both_limits_hold() -> None:
    """The shortcut's edges: an event exactly at the lateness limit is kept, one a microsecond
    past it (or past the future tolerance) turns the batch to the per-record path."""
    for ages in (
        [10.0, LATENESS_S, 5.0],
        [10.0, LATENESS_S + 1e-3, 5.0],
        [-engine.FUTURE_TOLERANCE_S, 1.0],
        [1.0, -engine.FUTURE_TOLERANCE_S - 1e-3],
    ):
        values = [_value(n, age, "ok") for n, age in enumerate(ages)]
        records = [engine.Record(0, n, v) for n, v in enumerate(values)]
        decoded = engine.decode(0, [(n, v) for n, v in enumerate(values)])
        assert engine.check(decoded, NOW_S, LATENESS_S) == plain(records, NOW_S, LATENESS_S)


def test_screen_keeps_record_order_across_partitions() -> None:
    kinds = ["ok", "garbage", "ok", "invalid", "agent", "ok"]
    values = [_value(n, 60.0 if n != 2 else LATENESS_S + 5, k) for n, k in enumerate(kinds)]
    records = [engine.Record(n % 2 + (n > 3), n, v) for n, v in enumerate(values)]
    events, dead, _ = plain(records, NOW_S, LATENESS_S)
    assert engine.screen(records, NOW_S, LATENESS_S) == (events, dead)
    assert engine.screen([], NOW_S, LATENESS_S) == ([], [])


def test_poll_keeps_only_records_past_what_was_applied() -> None:
    def recs(*offsets: int) -> list[Any]:
        return [SimpleNamespace(offset=o, value=None if o == 7 else b"v%d" % o) for o in offsets]

    assert past(4, recs(5, 6, 7)) == ([5, 6, 7], [b"v5", b"v6", b""])
    assert past(5, recs(5, 6, 7)) == ([6, 7], [b"v6", b""])
    assert past(6, recs(7, 5, 9)) == ([7, 9], [b"", b"v9"])  # kept in the order polled
    assert past(9, recs(5, 6)) == ([], [])
    assert past(0, []) == ([], [])


def test_agents_of_is_the_agents_whose_sheets_the_fold_changes() -> None:
    """`agents_of` inlines `_touches_agent`: the same agents as the fold asks it of."""
    at = datetime.fromtimestamp(NOW_S - 60, UTC).isoformat().replace("+00:00", "Z")
    bodies: list[dict[str, Any]] = [
        {"type": "agent.state", "agent": "a1", "state": "ready"},
        {"type": "agent.state", "agent": "a2", "state": "busy", "contact": "c1"},
        {"type": "contact.answered", "contact": "c1", "agent": "a3", "queue": "q"},
        {"type": "contact.answered", "contact": "c2", "agent": "a4"},  # no queue: not its sheet
        {"type": "contact.offered", "contact": "c3", "queue": "q", "channel": "voice"},
        {"type": "contact.completed", "contact": "c3", "agent": "a5", "queue": "q"},
    ]
    values = [json.dumps({"id": f"e{n}", "time": at, **b}).encode() for n, b in enumerate(bodies)]
    events = engine.decode(0, list(enumerate(values))).events
    plain = {e.agent for e in events if e.agent is not None and engine._touches_agent(e)}
    assert engine.agents_of(events) == plain == {"a1", "a2", "a3", "a5"}
