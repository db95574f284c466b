"""CloudEvents 1.0: the spec's required attributes, structured, batched and binary modes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.adapters.base import PayloadError
from ingest.adapters.cloudevents import binary_event, map_cloudevents
from services.contract import EventType

# Shaped like the spec's example (specversion, type, source, subject, id, time, datacontenttype).
STRUCTURED: dict[str, Any] = {
    "specversion": "1.0",
    "type": "com.example.ccpulse.contact.offered",
    "source": "https://crm.example.com/contacts",
    "subject": "c-123",
    "id": "A234-1234-1234",
    "time": "2018-04-05T17:31:00Z",
    "comexampleextension1": "value",
    "datacontenttype": "application/json",
    "data": {"channel": "chat", "queue": "sales"},
}


def test_the_envelope_fills_what_data_leaves_out() -> None:
    (event,) = map_cloudevents(STRUCTURED).events
    assert event.type is EventType.OFFERED
    assert event.id == "ce:https://crm.example.com/contacts:A234-1234-1234"
    assert (event.contact, event.queue) == ("c-123", "sales")
    assert event.time == datetime(2018, 4, 5, 17, 31, tzinfo=UTC)


def test_data_that_is_a_whole_contract_event_wins() -> None:
    data = {
        "id": "e-1",
        "type": "contact.answered",
        "time": "2018-04-05T17:32:00Z",
        "contact": "c-123",
        "agent": "alice",
    }
    (event,) = map_cloudevents({**STRUCTURED, "data": data}).events
    assert (event.id, event.type, event.agent) == ("e-1", EventType.ANSWERED, "alice")


def test_batch_and_ignored_types() -> None:
    other = {**STRUCTURED, "id": "B1", "type": "com.github.pull_request.opened", "data": {}}
    mapped = map_cloudevents([STRUCTURED, other])
    assert (len(mapped.events), mapped.ignored) == (1, 1)


def test_binary_mode_and_base64_data() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-type": "contact.queued",
        "ce-source": "/pbx",
        "ce-id": "q1",
        "ce-subject": "c-9",
        "ce-time": "2018-04-05T17:31:00Z",
    }
    envelope = binary_event(headers, json.dumps({"queue": "support"}).encode(), "application/json")
    (event,) = map_cloudevents(envelope).events
    assert (event.type, event.contact, event.queue) == (EventType.QUEUED, "c-9", "support")
    encoded = base64.b64encode(json.dumps({"channel": "sms"}).encode()).decode()
    with_b64 = {k: v for k, v in STRUCTURED.items() if k != "data"} | {"data_base64": encoded}
    assert map_cloudevents(with_b64).events[0].channel is not None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**STRUCTURED, "specversion": "0.3"}, "specversion"),
        ({k: v for k, v in STRUCTURED.items() if k != "source"}, "source"),
        ([STRUCTURED, {**STRUCTURED, "id": ""}], "1.id"),
        (
            {**STRUCTURED, "datacontenttype": "text/xml", "data": '<much wow="xml"/>'},
            "datacontenttype",
        ),
        ({**STRUCTURED, "data": {"channel": "fax"}}, "data.channel"),
        ({**STRUCTURED, "data": {"csat": 9}, "type": "survey.response"}, "data.csat"),
        ([], "body"),
    ],
)
def test_malformed_events_name_the_field(payload: Any, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        map_cloudevents(payload)
    assert caught.value.field == field
