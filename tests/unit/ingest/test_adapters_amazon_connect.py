"""Amazon Connect: the admin guide's contact-event samples (either key casing) and CTRs."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.adapters.amazon_connect import is_firehose, map_connect
from ingest.adapters.base import PayloadError
from services.contract import Channel, EventType
from services.sources import SourceSettings

RECEIVED = datetime(2021, 8, 4, 18, 0, tzinfo=UTC)
OPTIONS = SourceSettings()
INSTANCE = "arn:aws:connect:us-west-2:123456789012:instance/12345678-1234-1234-1234-123456789012"
QUEUE_ARN = INSTANCE + "/queue/12345678-1234-1234-1234-123456789012"
AGENT_ARN = INSTANCE + "/agent/12345678-1234-1234-1234-123456789012"


def envelope(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "abcabcab-abca-abca-abca-abcabcabcabc",
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "account": "111122223333",
        "time": "2021-08-04T17:43:48Z",
        "region": "us-west-2",
        "resources": ["arn:aws:...", "contactArn", "instanceArn"],
        "detail": detail,
    }


# "Sample contact event for when a voice call is connected to an agent" (camelCase keys).
CONNECTED_TO_AGENT = envelope(
    {
        "initiationTimestamp": "2021-08-04T17:17:53.000Z",
        "contactId": "11111111-1111-1111-1111-111111111111",
        "channel": "VOICE",
        "instanceArn": INSTANCE,
        "initiationMethod": "INBOUND",
        "eventType": "CONNECTED_TO_AGENT",
        "agentInfo": {
            "agentArn": AGENT_ARN,
            "connectedToAgentTimestamp": "2021-08-04T17:29:09.000Z",
        },
        "queueInfo": {
            "queueType": "type",
            "queueArn": QUEUE_ARN,
            "enqueueTimestamp": "2021-08-04T17:29:04.000Z",
        },
        "tags": {"aws:connect:instanceId": "12345678-1234-1234-1234-123456789012"},
    }
)

# "Sample contact event ... connected to an agent using routing criteria" (PascalCase keys).
CONNECTED_PASCAL = envelope(
    {
        "ContactId": "12345678-1234-1234-1234-123456789012",
        "Channel": "VOICE",
        "InstanceArn": INSTANCE,
        "InitiationMethod": "INBOUND",
        "EventType": "CONNECTED_TO_AGENT",
        "AgentInfo": {
            "AgentArn": AGENT_ARN,
            "ConnectedToAgentTimestamp": "2021-08-04T17:29:09.000Z",
        },
        "QueueInfo": {
            "QueueType": "type",
            "QueueArn": QUEUE_ARN,
            "EnqueueTimestamp": "2021-08-04T17:29:04.000Z",
        },
    }
)

# "Sample contact event for when a voice call is disconnected" (an OUTBOUND call, mixed casing).
DISCONNECTED_OUTBOUND = envelope(
    {
        "eventType": "DISCONNECTED",
        "contactId": "11111111-1111-1111-1111-111111111111",
        "initialContactId": "11111111-2222-3333-4444-555555555555",
        "previousContactId": "11111111-2222-3333-4444-555555555555",
        "channel": "Voice",
        "instanceArn": INSTANCE,
        "initiationMethod": "OUTBOUND",
        "initiationTimestamp": "2021-08-04T17:17:53.000Z",
        "connectedToSystemTimestamp": "2021-08-04T17:17:55.000Z",
        "disconnectTimestamp": "2021-08-04T17:18:37.000Z",
        "agentInfo": {"agentArn": "arn", "connectedToAgentTimestamp": "2021-08-04T17:29:09.000Z"},
        "CustomerVoiceActivity": {
            "greetingStartTimestamp": "2021-08-04T17:29:20.000Z",
            "greetingEndTimestamp": "2021-08-04T17:29:22.000Z",
        },
        "tags": {"aws:connect:systemEndpoint": "+11234567890", "Dept": "Finance"},
    }
)

# "Sample event for when contact properties are updated" (1970 placeholders for "none").
DATA_UPDATED = envelope(
    {
        "eventType": "CONTACT_DATA_UPDATED",
        "contactId": "the-contact-id",
        "channel": "CHAT",
        "instanceArn": INSTANCE,
        "initiationMethod": "API",
        "queueInfo": {
            "queueArn": QUEUE_ARN,
            "enqueueTimestamp": "2023-10-24T02:39:15.240Z",
            "queueType": "STANDARD",
        },
        "agentInfo": {
            "agentArn": AGENT_ARN,
            "connectedToAgentTimestamp": "1970-01-01T00:00:00.001Z",
        },
        "updatedProperties": ["ContactLens.ConversationalAnalytics.Configuration"],
        "initiationTimestamp": "2023-10-24T02:39:15.154Z",
        "connectedToSystemTimestamp": "1970-01-01T00:00:00.001Z",
    }
)


def inbound_disconnect(reason: str, queued: bool, answered: bool) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "eventType": "DISCONNECTED",
        "contactId": "22222222-2222-2222-2222-222222222222",
        "channel": "VOICE",
        "instanceArn": INSTANCE,
        "initiationMethod": "INBOUND",
        "initiationTimestamp": "2021-08-04T17:17:53.000Z",
        "connectedToSystemTimestamp": "2021-08-04T17:17:55.000Z",
        "disconnectTimestamp": "2021-08-04T17:20:37.000Z",
        "disconnectReason": reason,
    }
    if queued:
        detail["queueInfo"] = {
            "queueArn": QUEUE_ARN,
            "enqueueTimestamp": "2021-08-04T17:18:30.000Z",
        }
    if answered:
        detail["agentInfo"] = {
            "agentArn": AGENT_ARN,
            "connectedToAgentTimestamp": "2021-08-04T17:19:09.000Z",
        }
    return envelope(detail)


# A contact record, with the fields of the admin guide's contact record data model.
CTR: dict[str, Any] = {
    "AWSAccountId": "123456789012",
    "AWSContactTraceRecordFormatVersion": "2017-03-10",
    "Agent": {
        "ARN": AGENT_ARN,
        "Username": "jdoe",
        "ConnectedToAgentTimestamp": "2021-08-04T17:29:09Z",
        "AfterContactWorkStartTimestamp": "2021-08-04T17:40:00Z",
        "AfterContactWorkEndTimestamp": "2021-08-04T17:42:00Z",
    },
    "Channel": "VOICE",
    "ContactId": "11111111-1111-1111-1111-111111111111",
    "CustomerEndpoint": {"Address": "+14155550100", "Type": "TELEPHONE_NUMBER"},
    "DisconnectReason": "CUSTOMER_DISCONNECT",
    "InitiationMethod": "INBOUND",
    "InitiationTimestamp": "2021-08-04T17:17:53Z",
    "ConnectedToSystemTimestamp": "2021-08-04T17:17:55Z",
    "DisconnectTimestamp": "2021-08-04T17:40:00Z",
    "LastUpdateTimestamp": "2021-08-04T17:43:00Z",
    "Queue": {
        "ARN": QUEUE_ARN,
        "Name": "BasicQueue",
        "EnqueueTimestamp": "2021-08-04T17:29:04Z",
        "DequeueTimestamp": "2021-08-04T17:29:09Z",
        "Duration": 5,
    },
}


def test_the_documented_answer_sample_maps_with_either_key_casing() -> None:
    lower = map_connect(CONNECTED_TO_AGENT, RECEIVED, OPTIONS).events
    pascal = map_connect(CONNECTED_PASCAL, RECEIVED, OPTIONS).events
    for events in (lower, pascal):
        event = events[-1]
        assert event.type is EventType.ANSWERED
        assert event.time == datetime(2021, 8, 4, 17, 29, 9, tzinfo=UTC)
        assert event.agent == "12345678-1234-1234-1234-123456789012"
        assert event.queue == "12345678-1234-1234-1234-123456789012"
    assert lower[-1].id == "connect:11111111-1111-1111-1111-111111111111:answered"


def test_queue_and_agent_names_come_from_settings() -> None:
    options = SourceSettings(
        amazon_connect_queue_names={"12345678-1234-1234-1234-123456789012": "Support"},
        amazon_connect_agent_names={"12345678-1234-1234-1234-123456789012": "jdoe"},
    )
    event = map_connect(CONNECTED_TO_AGENT, RECEIVED, options).events[-1]
    assert (event.queue, event.agent) == ("Support", "jdoe")


def test_outbound_contacts_and_unused_event_types_are_ignored() -> None:
    assert map_connect(DISCONNECTED_OUTBOUND, RECEIVED, OPTIONS).ignored == 1
    assert map_connect(DATA_UPDATED, RECEIVED, OPTIONS).ignored == 1


@pytest.mark.parametrize(
    ("reason", "queued", "answered", "outcome", "stage"),
    [
        ("CUSTOMER_DISCONNECT", True, False, EventType.ABANDONED, "queue"),
        ("CONTACT_FLOW_DISCONNECT", True, False, EventType.TIMED_OUT, None),
        ("CUSTOMER_DISCONNECT", False, False, EventType.ABANDONED, "ivr"),
        ("CONTACT_FLOW_DISCONNECT", False, False, None, None),
        ("AGENT_DISCONNECT", True, True, None, None),
    ],
)
def test_disconnect_outcomes(
    reason: str, queued: bool, answered: bool, outcome: EventType | None, stage: str | None
) -> None:
    events = map_connect(inbound_disconnect(reason, queued, answered), RECEIVED, OPTIONS).events
    ended = [e.type for e in events].index(EventType.COMPLETED)
    rest = events[ended + 1 :]
    assert [e.type for e in rest] == ([outcome] if outcome else [])
    if outcome:
        assert rest[0].stage == stage


def test_a_contact_record_gives_every_fact_it_holds() -> None:
    events = map_connect(CTR, RECEIVED, OPTIONS).events
    assert [e.type for e in events] == [
        EventType.OFFERED,
        EventType.IVR,
        EventType.QUEUED,
        EventType.ANSWERED,
        EventType.COMPLETED,
    ]
    assert events[0].customer == "+14155550100"
    assert events[0].channel is Channel.VOICE
    assert events[2].queue == "BasicQueue"
    assert events[3].agent == "jdoe"
    assert events[4].time == datetime(2021, 8, 4, 17, 42, tzinfo=UTC)  # after wrap-up


def test_ctr_and_contact_event_share_ids_so_a_fact_counts_once() -> None:
    from_ctr = {e.type: e.id for e in map_connect(CTR, RECEIVED, OPTIONS).events}
    from_event = {e.type: e.id for e in map_connect(CONNECTED_TO_AGENT, RECEIVED, OPTIONS).events}
    assert from_event == {k: v for k, v in from_ctr.items() if k in from_event}
    assert set(from_event) == {EventType.OFFERED, EventType.QUEUED, EventType.ANSWERED}


def test_repeated_ctrs_in_one_delivery_keep_the_latest_update() -> None:
    older = copy.deepcopy(CTR)
    older["LastUpdateTimestamp"] = "2021-08-04T17:41:00Z"
    older["Agent"]["AfterContactWorkEndTimestamp"] = "2021-08-04T17:41:00Z"
    events = map_connect([CTR, older, CTR], RECEIVED, OPTIONS).events
    completions = [e for e in events if e.type is EventType.COMPLETED]
    assert [e.time.minute for e in completions] == [42]


def test_firehose_delivery_of_records() -> None:
    data = base64.b64encode(json.dumps(CTR).encode()).decode()
    delivery = {
        "requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f",
        "timestamp": 1578090901599,
        "records": [{"data": data}],
    }
    assert is_firehose(delivery)
    assert len(map_connect(delivery, RECEIVED, OPTIONS).events) == 5


def test_tasks_are_ignored_unless_mapped_to_a_channel() -> None:
    task = copy.deepcopy(CONNECTED_TO_AGENT)
    task["detail"]["channel"] = "TASK"
    assert map_connect(task, RECEIVED, OPTIONS).ignored == 1
    options = SourceSettings(amazon_connect_channels={"TASK": Channel.EMAIL})
    assert map_connect(task, RECEIVED, options).events[0].channel is Channel.EMAIL


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (
            {"detail-type": "x", "detail": {"channel": "VOICE", "contactId": "c"}},
            "detail.eventType",
        ),
        (
            {"detail-type": "x", "detail": {"eventType": "QUEUED", "channel": "VOICE"}},
            "detail.ContactId",
        ),
        ({**CTR, "InitiationTimestamp": None}, "record.InitiationTimestamp"),
        ({"requestId": "r", "records": [{"data": "!!"}]}, "records.0.data"),
        ([], "body"),
        ("text", "body"),
    ],
)
def test_malformed_payloads_name_the_field(payload: Any, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        map_connect(payload, RECEIVED, OPTIONS)
    assert caught.value.field == field
