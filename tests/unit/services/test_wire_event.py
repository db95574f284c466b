"""The aggregator's msgspec decoder (`contract.decode_fast`) decides exactly as `ContactEvent`:
the same values for every record, the same refusal for every bad one; and it is the path the
records ingest writes actually take (a silent fallback to pydantic would only show as speed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services import contract
from services.contract import ContactEvent, WireEvent, decode_fast, decode_wire
from simulator.scenario import Day, generate
from tests.clock import clock

FIELDS = list(ContactEvent.model_fields)


def outcome(decode: Any, raw: bytes) -> tuple[str, Any]:
    """Each field's value with its type and the time as an instant, or the refusal's text."""
    try:
        event = decode(raw)
    except ValueError as exc:
        return "refused", str(exc)
    values: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(event, name)
        if isinstance(value, datetime):
            value = (value.timestamp(), value.utcoffset())
        values[name] = (type(value).__name__, value)
    return "event", values


def test_the_struct_has_the_models_fields_in_order_with_its_defaults() -> None:
    assert WireEvent.__struct_fields__ == tuple(FIELDS)
    bare = WireEvent(
        id="e", type=contract.EventType.OFFERED, time=datetime.fromtimestamp(clock.now(), UTC)
    )
    for name in FIELDS[3:]:
        default = ContactEvent.model_fields[name].get_default(call_default_factory=True)
        assert getattr(bare, name) == default, name


def _simulated() -> list[bytes]:
    """A simulated hour of a contact centre, as ingest writes it: `ContactEvent.to_wire`."""
    now = clock.now()
    day = Day(seed=3, agents=12, customers=300, prefix="w")
    rows = generate(day, now - 3600, 400, 400 / 3600)
    return [ContactEvent.model_validate(row).to_wire() for row in rows]


def test_every_record_ingest_writes_takes_the_fast_path_with_equal_values() -> None:
    records = _simulated()
    full = ContactEvent(
        id="ev-1",
        type=contract.EventType.RESOLVED,
        time=datetime.fromtimestamp(clock.now(), UTC).replace(microsecond=123456),
        contact="c-1",
        channel=contract.Channel.CHAT,
        queue="sales",
        agent="alice",
        customer="h:5f1d",
        stage="menu",
        issue="billing",
        first_contact=True,
        reason="customer said 0123 was wrong",
        state="ready",
        csat=5,
        nps=0,
        attributes={"tier": "gold", "é": "ü"},
    )
    records.append(full.to_wire())
    kinds = {json.loads(r)["type"] for r in records}
    assert len(kinds) >= 8, kinds  # the corpus covers the contract's kinds of event
    for raw in records:
        assert type(decode_fast(raw)) is WireEvent, raw
        assert outcome(decode_fast, raw) == outcome(decode_wire, raw), raw


EDGE_CASES = [
    b'{"id": "a", "type": "contact.offered", "time": "2026-01-01T00:00:00.1234567Z", '
    b'"contact": "c", "channel": "voice"}',  # msgspec rounds the 7th digit, pydantic cuts it
    b'{"id": "a", "type": "contact.offered", "time": "2026-01-01T00:00:00.9999995+01:00", '
    b'"contact": "c", "channel": "voice"}',
    b'{"id": "a", "type": "contact.offered", "time": "2026-01-01T00:00:00.123456\\u0037Z", '
    b'"contact": "c", "channel": "voice"}',  # the 7th digit escaped: no pattern sees it
    b'{"id": "a", "type": "contact.offered", "time": "2026-01-01T00:00:00\\u002e9999995Z", '
    b'"contact": "c", "channel": "voice"}',  # the dot escaped
    b'{"id": "a", "type": "contact.queued", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"queue": " sales "}',  # pydantic strips a name
    b'{"id": "a", "type": "contact.queued", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"queue": "sales\\u2028"}',
    b'{"id": "a", "type": "contact.queued", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"queue": "a|b"}',
    b'{"id": "a", "type": "contact.offered", "time": "2026-01-01T00:00Z", "contact": "c", '
    b'"channel": "voice"}',  # no seconds: pydantic only
    b'{"id": "a", "type": "contact.offered", "time": "2026-01-01T00:00:00", "contact": "c", '
    b'"channel": "voice"}',  # no offset: refused by both
    b'{"id": "a", "type": "contact.offered", "time": 1767225600, "contact": "c", '
    b'"channel": "voice"}',  # epoch seconds: pydantic only
    b'{"id": "a", "type": "contact.offered", "time": "2026-01-01T00:00:00Z", "contact": "c"}',
    b'{"id": "a", "type": "agent.state", "time": "2026-01-01T00:00:00Z", "agent": "x"}',
    b'{"id": "a", "type": "survey.response", "time": "2026-01-01T00:00:00Z", "contact": "c"}',
    b'{"id": "a", "type": "survey.response", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"csat": "5"}',  # a numeric string: pydantic's lax mode takes it
    b'{"id": "a", "type": "survey.response", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"csat": 5.0}',
    b'{"id": "a", "type": "survey.response", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"csat": true}',
    b'{"id": "a", "type": "contact.resolved", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"first_contact": 1}',
    b'{"id": "a", "type": "contact.resolved", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"first_contact": "true"}',
    b'{"id": "a", "id": "b", "type": "contact.offered", "time": "2026-01-01T00:00:00Z", '
    b'"contact": "c", "channel": "voice"}',  # a repeated key
    b'{"id": "a", "type": "contact.offered", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"channel": "voice", "extra": 1}',
    b'{"id": "a", "type": "contact.offered", "time": "2026-01-01T00:00:00Z", "contact": null, '
    b'"channel": "voice"}',
    b'{"id": "a", "type": "contact.offered", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"channel": "voice", "attributes": null}',
    b'{"id": "", "type": "contact.offered", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"channel": "voice"}',
    b'{"id": "a\\ud800", "type": "contact.offered", "time": "2026-01-01T00:00:00Z"}',
    b'{"id": "a", "type": "contact.offered", "time": "2026-02-30T00:00:00Z", "contact": "c"}',
    b'{"id": "a", "type": "contact.queued", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"queue": "sales\\n"}',  # an escaped final newline: a `$` pattern let it through
    b'{"id": "a", "type": "contact.queued", "time": "2026-01-01T00:00:00Z", "contact": "c", '
    b'"queue": "sales", "attributes": {"tier\\n": "x"}}',
    # Compact, as ingest writes: only the scans (`_plain`) can see these names' spaces.
    b'{"id":"a","type":"contact.queued","time":"2026-01-01T00:00:00Z","contact":"c",'
    b'"queue":"sales "}',
    b'{"id":"a","type":"contact.queued","time":"2026-01-01T00:00:00Z","contact":"c",'
    b'"queue":" sales"}',
    b'{"id":"a","type":"contact.queued","time":"2026-01-01T00:00:00Z","contact":"c",'
    b'"queue":"sales","attributes":{"tier ":"gold"}}',
    b'{"id":"a","type":"contact.queued","time":"2026-01-01T00:00:00Z","contact":"c","queue":"a|b"}',
    b'{"id":"a","type":"contact.queued","time":"2026-01-01T00:00:00Z","contact":"c",'
    b'"queue":"sales\\t"}',
    b'{"id":"a","type":"contact.queued","time":"2026-01-01T00:00:00Z","contact":"c",'
    b'"queue":"sales\xc2\xa0"}',  # a no-break space, raw UTF-8
    b'{"id":"a","type":"contact.queued","time":"2026-01-01T00:00:00Z","contact":"c",'
    b'"queue":"sales\x7f"}',  # DEL: neither decoder calls it whitespace
    b"[]",
    b"null",
    b"{",
    b"",
]


@pytest.mark.parametrize("raw", EDGE_CASES)
def test_edge_cases_decide_as_the_model(raw: bytes) -> None:
    assert outcome(decode_fast, raw) == outcome(decode_wire, raw)


# Values that sit on the decoders' borders: whitespace of every kind, separators, control
# characters, lengths around the limits, lax spellings of numbers and booleans.
_CHARS = st.sampled_from(list("aZé| \t\n\x00\x1f\x7f\x85\xa0\u2028\u3000\u180e\u200b😀-.0@"))
_TEXT = st.one_of(
    st.lists(_CHARS, max_size=6).map("".join),
    st.integers(0, 3).map(lambda n: "a" * (contract.NAME_MAX - 1 + n)),
    st.integers(0, 3).map(lambda n: "b" * (contract.IDENT_MAX - 1 + n)),
    st.integers(0, 3).map(lambda n: "c" * (contract.TEXT_MAX - 1 + n)),
)
_SCALAR = st.one_of(
    _TEXT, st.none(), st.booleans(), st.integers(-2, 12), st.floats(-1, 11), st.just("5")
)


@st.composite
def _times(draw: st.DrawFn) -> str:
    at = datetime.fromtimestamp(clock.now(), UTC) + timedelta(
        seconds=draw(st.integers(-(10**9), 10**9)), microseconds=draw(st.integers(0, 999_999))
    )
    text = at.strftime(draw(st.sampled_from(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"])))
    digits = draw(st.integers(0, 9))
    if digits:
        text += "." + f"{at.microsecond:06d}{draw(st.integers(0, 999))}"[:digits]
    return text + draw(st.sampled_from(["Z", "z", "+00:00", "-05:30", "+1400", "", "+24:00"]))


_KINDS = [t.value for t in contract.EventType] + ["contact.unknown"]


@st.composite
def _records(draw: st.DrawFn) -> bytes:
    record: dict[str, Any] = {
        "id": draw(st.one_of(_TEXT, st.just("ev"))),
        "type": draw(st.sampled_from(_KINDS)),
        "time": draw(st.one_of(_times(), st.integers(0, 2 * 10**9), _TEXT)),
    }
    optional = [f for f in FIELDS[3:] if f != "attributes"]
    for name in draw(st.lists(st.sampled_from(optional), unique=True)):
        record[name] = draw(
            st.one_of(_SCALAR, st.sampled_from([c.value for c in contract.Channel]))
        )
    if draw(st.booleans()):
        record["attributes"] = draw(st.dictionaries(_TEXT, _SCALAR, max_size=3))
    if draw(st.integers(0, 9)) == 0:
        record["unexpected"] = 1
    separators = draw(st.sampled_from([(", ", ": "), (",", ":")]))  # (",", ":"): as ingest
    return json.dumps(record, ensure_ascii=draw(st.booleans()), separators=separators).encode()


@given(_records())
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_record_decides_as_the_model(raw: bytes) -> None:
    assert outcome(decode_fast, raw) == outcome(decode_wire, raw)


def test_the_aggregator_decodes_with_it() -> None:
    """`engine.decode` is the aggregator's only decoder of polled records."""
    from aggregator import engine

    raw = _simulated()[0]
    [event] = engine.decode(0, [(0, raw)]).events
    assert type(event) is WireEvent


def batch_outcome(values: list[bytes]) -> list[tuple[str, Any, str]]:
    """`decode_batch`'s verdicts put back in record order: an event's values and decoder, or the
    refusal's text."""
    events, refused = contract.decode_batch(values)
    decoded = iter(events)
    out = []
    for index in range(len(values)):
        if index in refused:
            out.append(("refused", str(refused[index]), "ValueError"))
        else:
            event = next(decoded)
            out.append((*outcome(lambda _, e=event: e, b""), type(event).__name__))
    assert next(decoded, None) is None
    return out


def each_outcome(values: list[bytes]) -> list[tuple[str, Any, str]]:
    out = []
    for raw in values:
        try:
            name = type(decode_fast(raw)).__name__
        except ValueError:
            name = "ValueError"
        out.append((*outcome(decode_fast, raw), name))
    return out


@given(st.lists(st.one_of(_records(), st.sampled_from(_simulated()[:40])), max_size=12))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_batch_decides_each_record_as_decode_fast(values: list[bytes]) -> None:
    """One regex scan per batch and the fields check inlined: each record still gets
    `decode_fast`'s verdict and decoder (a sub-microsecond time anywhere, or a record msgspec
    refuses, must not change another record's path or value)."""
    assert batch_outcome(values) == each_outcome(values)


def test_a_batch_with_a_sub_microsecond_time_still_decides_each_record_alike() -> None:
    simulated = _simulated()[:30]
    body = json.loads(simulated[3])
    body["time"] = body["time"].replace("Z", "").split(".")[0] + ".1234567Z"
    offered = {k: v for k, v in json.loads(simulated[0]).items() if k != "channel"}
    values = [*simulated[:3], json.dumps(body).encode(), json.dumps(offered).encode(), b"{"]
    values += simulated[3:]
    assert batch_outcome(values) == each_outcome(values)
    assert batch_outcome(values[:3] + values[4:]) == each_outcome(values[:3] + values[4:])


_SCAN_TOKENS = [b".", b"7", b"123", b"123456", b"\\", b"u", b"00", b"2", b"3", b"4", b'"', b"Z"]


@given(st.binary(max_size=40) | st.lists(st.sampled_from(_SCAN_TOKENS), max_size=16).map(b"".join))
@settings(max_examples=2000, deadline=None)
def test_the_split_scan_finds_what_the_sub_microsecond_pattern_finds(data: bytes) -> None:
    """`_clean`, the two halves searched apart, decides as the one pattern it replaces."""
    assert contract._clean(data) == (contract._SUB_MICROSECOND.search(data) is None)


def test_the_split_scan_on_each_half() -> None:
    for data, clean in [
        (b'"time":"2026-01-01T00:00:00.123456Z"', True),
        (b'"time":"2026-01-01T00:00:00.1234567Z"', False),
        (b'"queue":"\\u0037"', False),
        (b'"queue":"\\u0041\\n"', True),
        (b"", True),
    ]:
        assert contract._clean(data) is clean, data
        assert (contract._SUB_MICROSECOND.search(data) is None) is clean, data
