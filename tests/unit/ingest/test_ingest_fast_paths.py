"""The ingest's fast paths decide exactly as the plain ones: orjson decoding, one pydantic-core
call per clean batch, and the remembered murmur2 hashes of the partitioner."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import edge, jsonsafe, routes
from ingest.publisher import KeyPartitioner
from services import contract
from tests.clock import clock


def outcome(decode: Any, text: str) -> tuple[str, Any]:
    """The value with its types spelled out (1 and 1.0 compare equal), or the refusal."""
    try:
        return "value", typed(decode(text))
    except jsonsafe.JsonRefused as exc:
        return type(exc).__name__, (exc.field, exc.message)


def typed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, repr(value))


EDGE_CASES = [
    '{"id": "a", "csat": 18446744073709551616}',  # beyond 64 bits: orjson would give a float
    '{"n": -9223372036854775809}',
    '{"n": 18446744073709551615}',
    '{"n": 1e400}',
    '{"n": NaN}',
    "[1.5e-400, -0, -0.0, 0.1]",
    '"\\ud800"',
    '{"\\udc00": 1}',
    '"\\ud83d\\ude00"',
    "\ufeff[1]",
    '{"a": 1, "a": 2}',
    "[" * 64 + "]" * 64,
    "[" * 65 + "1" + "]" * 65,
    '{"x":' * 65 + "1" + "}" * 65,
    '{"x":' * 64 + "{}" + "}" * 64,
    "[" * 1100 + "]" * 1100,
    '{"a": 1}\n{"b": 2}',
    "",
    "nul",
    '{"a": "\x01"}',
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_fast_decoding_matches_the_standard_parser(text: str) -> None:
    assert outcome(routes._loads, text) == outcome(jsonsafe.loads, text)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_fast_decoding_matches_on_any_json(value: Any) -> None:
    text = json.dumps(value)
    assert outcome(routes._loads, text) == outcome(jsonsafe.loads, text)


def test_fast_decoding_keeps_ndjson_and_its_refusals() -> None:
    good = b'{"a": 1}\n{"b": 18446744073709551616}\n'
    assert routes.decode_body(good, "application/x-ndjson", 10) == [
        {"a": 1},
        {"b": 18446744073709551616},
    ]
    with pytest.raises(edge.BodyError) as refused:
        routes.decode_body(b'{"a": 1}\n{"b": \n', "application/json", 10)
    assert refused.value.status == 400 and refused.value.field == "line 2"


def event(n: int, when: datetime) -> dict[str, Any]:
    return {
        "id": f"e{n}",
        "type": "contact.offered",
        "time": when.isoformat(),
        "contact": f"c{n}",
        "channel": "voice",
    }


def test_a_clean_batch_is_validated_whole_and_still_checked_for_the_future() -> None:
    now = datetime.fromtimestamp(clock.now(), UTC)
    items = [event(n, now - timedelta(minutes=1)) for n in range(5)]
    items[3]["time"] = (now + timedelta(hours=1)).isoformat()
    assert contract.parse_valid(items) is not None
    events, errors = routes.validate(items, now.timestamp())
    assert [e.id for e in events] == ["e0", "e1", "e2", "e4"]
    assert [(e.index, e.field) for e in errors] == [(3, "time")]
    assert "in the future" in errors[0].message


def test_a_batch_with_problems_names_each_by_index_and_field() -> None:
    now = datetime.fromtimestamp(clock.now(), UTC)
    items: list[Any] = [event(n, now - timedelta(minutes=1)) for n in range(4)]
    del items[1]["channel"]
    items[2]["csat"] = 9
    items[3] = "not an object"
    assert contract.parse_valid(items) is None
    events, errors = routes.validate(items, now.timestamp())
    assert [e.id for e in events] == ["e0"]
    assert [(e.index, e.field) for e in errors] == [(1, "channel"), (2, "csat"), (3, "event")]


@pytest.mark.parametrize("kind", list(contract.EventType))
def test_every_contact_event_and_survey_needs_a_contact(kind: contract.EventType) -> None:
    raw = {
        "id": "x",
        "type": kind.value,
        "time": "2026-01-01T00:00:00Z",
        "channel": "voice",
        "agent": "a",
        "state": "ready",
        "csat": 3,
    }
    event, problems = contract.parse_event(raw)
    needs_contact = kind.value.startswith("contact.") or kind is contract.EventType.SURVEY
    assert [p.field for p in problems] == (["contact"] if needs_contact else [])
    assert event is None or event.is_contact_event is needs_contact


@pytest.mark.parametrize("partitions", [1, 6, 7, 24])
def test_remembered_hashes_give_the_default_partition(partitions: int) -> None:
    rng = random.Random(partitions)
    ours, theirs = KeyPartitioner(), DefaultPartitioner()
    everything = list(range(partitions))
    keys = [rng.randbytes(rng.randint(0, 40)) for _ in range(2000)]
    for key in keys + keys:  # the second pass reads the remembered hashes
        assert ours(key, everything, everything) == theirs(key, everything, everything)
