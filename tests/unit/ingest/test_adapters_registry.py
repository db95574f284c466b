"""The raw copy kept for replays: personal values hashed, and a replay maps to the same events."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ingest.adapters import registry as reg
from ingest.adapters.base import PayloadError
from ingest.adapters.redact import redact, redact_line
from services.privacy import pseudonymise
from services.sources import SourceSettings

KEY = b"test-hash-key"
RECEIVED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def protect_customer(value: str | None) -> str | None:
    return None if value is None else pseudonymise(value, KEY)


def test_phone_numbers_emails_and_customer_names_are_hashed_agent_names_kept() -> None:
    payload = {
        "From": "+14158675309",
        "CallerName": "Jane Doe",
        "To": "client:alice",
        "Timestamp": "1281930301",
        "TimestampMs": "1281930301000",
        "meta": {"sender": {"type": "contact", "name": "jane", "email": "jane@acme.inc"}},
        "sender": {"type": "user", "name": "John"},
        "CustomerEndpoint": {"Address": "+14155550100", "Type": "TELEPHONE_NUMBER"},
    }
    kept = redact(payload, KEY)
    assert kept["From"] == pseudonymise("+14158675309", KEY)
    assert kept["CallerName"].startswith("h:")
    assert kept["meta"]["sender"]["name"].startswith("h:")
    assert kept["meta"]["sender"]["email"].startswith("h:")
    assert kept["CustomerEndpoint"]["Address"].startswith("h:")
    assert (kept["To"], kept["sender"]["name"]) == ("client:alice", "John")
    assert (kept["Timestamp"], kept["TimestampMs"]) == ("1281930301", "1281930301000")


def test_queue_log_lines_keep_their_head_and_hash_caller_ids() -> None:
    line = "1366720340|1366720340.303267|support|NONE|ENTERQUEUE||4155550121|1"
    kept = redact_line(line, KEY).split("|")
    assert kept[:5] == line.split("|")[:5]
    assert kept[6] == pseudonymise("4155550121", KEY)


@pytest.mark.parametrize(
    ("source", "payload", "query"),
    [
        (
            reg.TWILIO_VOICE,
            {
                "CallSid": "CA1",
                "CallStatus": "completed",
                "From": "+14158675309",
                "CallDuration": "30",
                "Timestamp": "Mon, 16 Aug 2010 03:45:01 +0000",
            },
            {"queue": "support"},
        ),
        (reg.ASTERISK, ["1366720340|1.1|support|NONE|ENTERQUEUE||4155550121|1"], {}),
        (
            reg.CHATWOOT,
            {
                "event": "conversation_created",
                "id": 10,
                "inbox_id": 1,
                "status": "open",
                "channel": "Channel::WebWidget",
                "created_at": 1627063308,
                "meta": {"sender": {"type": "contact", "email": "jane@acme.inc"}},
            },
            {},
        ),
    ],
)
def test_a_replay_from_the_raw_topic_maps_to_the_same_events(
    source: str, payload: object, query: dict[str, str]
) -> None:
    options = SourceSettings()
    live = reg.dispatch(source, payload, RECEIVED, options, query).events
    record = reg.raw_record(source, payload, RECEIVED, KEY, query)
    assert b"4155550121" not in record and b"jane@acme.inc" not in record
    replayed = reg.renormalise(record, options).events
    assert [e.id for e in replayed] == [e.id for e in live]
    assert [protect_customer(e.customer) for e in replayed] == [
        protect_customer(e.customer) for e in live
    ]


def test_unknown_raw_records_are_named() -> None:
    with pytest.raises(PayloadError) as caught:
        reg.renormalise(json.dumps({"v": 9}).encode(), SourceSettings())
    assert caught.value.field == "record.v"
    with pytest.raises(PayloadError):
        reg.dispatch("fax", {}, RECEIVED, SourceSettings())
