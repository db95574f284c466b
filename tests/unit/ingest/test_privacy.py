"""The personal-data scanner and what the ingest does with its findings, on tables of shapes."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from ingest.adapters import registry as reg
from ingest.adapters.redact import redact
from ingest.state import protect
from services.contract import ContactEvent
from services.privacy import (
    looks_personal,
    personal_spans,
    pseudonymise,
    pseudonymise_id,
    scrub,
    scrub_text,
)
from services.sources import SourceSettings

KEY = b"test-hash-key"
RECEIVED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("call me on +44 (0) 20 7946 0000 ext. 12 please", "+44 (0) 20 7946 0000 ext. 12"),
        ("tel:+442079460000", "+442079460000"),
        ("(020) 7946 0000", "(020) 7946 0000"),
        ("4155550121", "4155550121"),
        ("mail Jane.Roe@Example.org now", "Jane.Roe@Example.org"),
        ("mailto:jane@acme.inc", "jane@acme.inc"),
    ],
)
def test_numbers_and_addresses_are_found_inside_text(text: str, found: str) -> None:
    assert [text[a:b] for a, b in personal_spans(text)] == [found]


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-03T06:07:46Z",
        "2026-12-03 06:07:46",
        "2010-04-01",
        "order 12345",
        "550e8400-e29b-41d4-a716-446655440000",
        "CA1234567890abcdef",
        "1366720340.303267",
        "Mon, 16 Aug 2010 03:45:01 +0000",
        "chatwoot:123:created:offered",
        "sip:alice@pbx",
        "client:alice",
        "1234567 apples",
        "h:0123456789abcdef0123456789abcdef",
    ],
)
def test_dates_ids_and_agent_uris_are_not_personal(text: str) -> None:
    assert personal_spans(text) == []


@pytest.mark.parametrize(
    "hostile",
    [
        "1 " * 300_000,
        "a@" * 300_000,
        "@." * 300_000,
        "+1" * 300_000,
        "9" * 600_000,
        ("x" * 63 + "@") * 10_000,
        "a." * 300_000 + "@",
    ],
)
def test_the_scanner_is_linear_on_hostile_text(hostile: str) -> None:
    started = time.monotonic()
    personal_spans(hostile)
    assert time.monotonic() - started < 3, "a 600 kB value must not hold the ingest"


def test_the_same_number_hashes_alike_however_written() -> None:
    forms = ["+44 20 7946 0000", "tel:+442079460000", "+44 (0) 20 7946 0000", "+44-20-7946-0000"]
    assert len({pseudonymise(f, KEY) for f in forms}) == 1
    assert looks_personal("tel:+44 20 7946 0000") and looks_personal("mailto:a@b.co")


def test_ids_holding_personal_data_become_one_hash_and_stay_it() -> None:
    hashed = pseudonymise_id("tel:+44 20 7946 0000", KEY)
    assert hashed == pseudonymise("+442079460000", KEY)
    assert pseudonymise_id(hashed, KEY) == hashed
    assert pseudonymise_id("call-" + scrub_text("+44 20 7946 0000", KEY), KEY) == (
        pseudonymise_id("call-+44 20 7946 0000", KEY)
    )
    assert pseudonymise_id("twilio:CA123", KEY) == "twilio:CA123"


def test_attributes_personal_fields_are_hashed_whole_and_numbers_inside_others() -> None:
    kept = scrub(
        {
            "customer_name": "Ophelia Quixote",
            "customerName": "O Q",
            "note": "ring +44 20 7946 0000",
            "nested": '{"contact": {"first_name": "Ophelia", "tier": "gold"}}',
            "tier": "gold",
        },
        KEY,
    )
    assert kept["customer_name"] == pseudonymise("Ophelia Quixote", KEY)
    assert kept["customerName"].startswith("h:") and kept["tier"] == "gold"
    assert kept["note"] == "ring " + pseudonymise("+44 20 7946 0000", KEY)
    assert "Ophelia" not in kept["nested"] and "gold" in kept["nested"]


def test_protect_hashes_ids_reason_and_keeps_the_contract_lengths() -> None:
    event = ContactEvent.model_validate(
        {
            "id": "e1",
            "type": "contact.offered",
            "time": RECEIVED,
            "contact": "+44 20 7946 0000",
            "channel": "voice",
            "agent": "agent@example.com",
            "reason": "x" * 1000 + " +4420794600",
            "attributes": {"customer_name": "Jane"},
        }
    )
    kept = protect(event, KEY)
    assert kept.contact == pseudonymise("+442079460000", KEY)
    assert kept.agent is not None and kept.agent.startswith("h:")
    assert kept.reason is not None and len(kept.reason) <= 1024 and "+44" not in kept.reason
    assert ContactEvent.model_validate_json(kept.to_wire()) == kept
    assert kept.partition_key() == kept.contact.encode()


def test_the_raw_copy_keeps_no_bodies_locations_or_names() -> None:
    payload = {
        "CallSid": "CA1",
        "Body": "hello",
        "FromCity": "LEEDS",
        "FromZip": "LS1",
        "CallerName": "Jane",
        "FromCountry": "GB",
        "ToCity": "LEEDS",
        "content": "hi",
        "conversation": {"messages": [{"content": "x", "id": 3}]},
        "comment": {
            "body": "b",
            "html_body": "b",
            "is_public": True,
            "author": {"is_staff": False, "name": "Jane Roe"},
        },
    }
    kept = redact(payload, KEY)
    for gone in ("Body", "FromCity", "FromZip", "ToCity", "content"):
        assert gone not in kept
    assert kept["FromCountry"] == "GB" and kept["CallerName"].startswith("h:")
    assert kept["conversation"] == {"messages": [{"id": 3}]}
    assert kept["comment"]["author"]["name"].startswith("h:")
    assert "body" not in kept["comment"] and "html_body" not in kept["comment"]


@pytest.mark.parametrize(
    ("source", "payload"),
    [
        (
            reg.CLOUDEVENTS,
            {
                "specversion": "1.0",
                "id": "c1",
                "source": "s",
                "type": "com.acme.contact.offered",
                "time": "2024-05-01T11:59:00Z",
                "subject": "tel:+44 20 7946 0000",
                "data": {
                    "channel": "voice",
                    "reason": "call +44 (0) 20 7946 0001",
                    "attributes": {"customer_name": "Jane", "n": "a@b.co"},
                },
            },
        ),
        (
            reg.TWILIO_VOICE,
            {
                "CallSid": "CA1",
                "CallStatus": "completed",
                "From": "+14158675309",
                "FromCity": "SF",
                "Body": "hi",
                "CallDuration": "30",
                "Timestamp": "Mon, 16 Aug 2010 03:45:01 +0000",
            },
        ),
    ],
)
def test_a_replay_of_the_redacted_raw_copy_gives_the_same_protected_events(
    source: str, payload: object
) -> None:
    options = SourceSettings()
    live = [protect(e, KEY) for e in reg.dispatch(source, payload, RECEIVED, options).events]
    record = reg.raw_record(source, payload, RECEIVED, KEY)
    assert b"7946" not in record and b"Jane" not in record and b"a@b.co" not in record
    replayed = [protect(e, KEY) for e in reg.renormalise(record, options).events]
    assert live and replayed == live


def test_identifiers_shaped_like_uuids_are_not_phone_numbers() -> None:
    for value in (
        "connect:11111111-1111-1111-1111-111111111111",
        "12345678-1234-1234-1234-123456789012",
        "order 1234-5678-9012-3456-7890-1234",  # 24 digits: an identifier, not a number
    ):
        assert personal_spans(value) == [], value
    assert personal_spans("call +44 20 7946 0000 ext. 12") != []
