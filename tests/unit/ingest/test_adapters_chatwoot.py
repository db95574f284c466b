"""Chatwoot: the webhook-events documentation's payload samples."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.adapters.base import PayloadError
from ingest.adapters.chatwoot import map_chatwoot
from services.contract import Channel, EventType
from services.sources import SourceSettings

RECEIVED = datetime(2021, 7, 23, 19, 0, tzinfo=UTC)
OPTIONS = SourceSettings()

# The documented conversation object (as in conversation_status_changed), trimmed of nothing we use.
CONVERSATION: dict[str, Any] = {
    "additional_attributes": {
        "browser": {"device_name": "Unknown", "browser_name": "Chrome", "platform_name": "macOS"},
        "referer": "http://localhost:3000/widget_tests",
        "initiated_at": {"timestamp": "Fri Jul 23 2021 23:32:48 GMT+0530 (India Standard Time)"},
    },
    "can_reply": True,
    "channel": "Channel::WebWidget",
    "id": 10,
    "inbox_id": 1,
    "contact_inbox": {
        "id": 12,
        "contact_id": 12,
        "inbox_id": 1,
        "source_id": "405f1d30-1af3-4fa0-8ffd-11ea3f86101e",
        "created_at": "2021-07-23T18:01:48.739Z",
        "updated_at": "2021-07-23T18:02:59.053Z",
        "hmac_verified": False,
    },
    "meta": {
        "sender": {
            "email": "jane@acme.inc",
            "id": 12,
            "name": "jane",
            "phone_number": None,
            "type": "contact",
        },
        "assignee": {"id": 1, "name": "John", "type": "user", "availability_status": "online"},
    },
    "status": "open",
    "unread_count": 0,
    "agent_last_seen_at": 1627063451,
    "contact_last_seen_at": 0,
    "timestamp": 1627063369,
    "event": "conversation_status_changed",
}

# The documented message_created sample (an incoming message from the widget).
MESSAGE_CREATED: dict[str, Any] = {
    "id": 118,
    "content": "hi",
    "created_at": "2021-07-23T18:02:48.000Z",
    "message_type": "incoming",
    "content_type": "text",
    "private": False,
    "content_attributes": {},
    "source_id": None,
    "sender": {"id": 14, "name": "little-haze-776", "avatar": "", "type": "contact"},
    "inbox": {"id": 1, "name": "Acme Support"},
    "conversation": {k: v for k, v in CONVERSATION.items() if k != "event"},
    "account": {"id": 1, "name": "Acme Inc"},
    "event": "message_created",
}


def agent_reply() -> dict[str, Any]:
    reply = copy.deepcopy(MESSAGE_CREATED)
    reply.update(id=119, message_type="outgoing", created_at="2021-07-23T18:03:30.000Z")
    reply["sender"] = {"id": 1, "name": "John", "email": "john@acme.inc", "type": "user"}
    return reply


def test_created_open_conversation_is_offered_and_queued() -> None:
    created = {**CONVERSATION, "event": "conversation_created", "created_at": 1627063308}
    events = map_chatwoot(created, RECEIVED, OPTIONS).events
    assert [e.type for e in events] == [EventType.OFFERED, EventType.QUEUED]
    assert events[0].contact == "chatwoot:10"
    assert events[0].channel is Channel.CHAT
    assert events[0].queue == "inbox-1"
    assert events[0].customer == "jane@acme.inc"
    assert events[0].time == datetime.fromtimestamp(1627063308, UTC)


def test_created_pending_conversation_waits_in_the_bot() -> None:
    created = {**CONVERSATION, "event": "conversation_created", "status": "pending"}
    events = map_chatwoot(created, RECEIVED, OPTIONS).events
    assert [(e.type, e.stage) for e in events][1] == (EventType.IVR, "bot")


def test_the_first_agent_reply_answers() -> None:
    (event,) = map_chatwoot(agent_reply(), RECEIVED, OPTIONS).events
    assert (event.type, event.agent, event.contact) == (EventType.ANSWERED, "John", "chatwoot:10")
    assert event.time == datetime(2021, 7, 23, 18, 3, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "change",
    [
        {},  # the documented incoming message
        {"message_type": "outgoing", "private": True, "sender": {"type": "user", "name": "John"}},
        {"message_type": "outgoing", "sender": {"type": "agent_bot", "name": "Bot"}},
        {"message_type": "activity"},
    ],
)
def test_messages_that_are_not_an_agent_public_reply_are_ignored(change: dict[str, Any]) -> None:
    mapped = map_chatwoot({**MESSAGE_CREATED, **change}, RECEIVED, OPTIONS)
    assert (mapped.events, mapped.ignored) == ([], 1)


def test_resolution_completes_and_reports_a_possible_abandon() -> None:
    resolved = {**CONVERSATION, "status": "resolved", "timestamp": 1627063520}
    events = map_chatwoot(resolved, RECEIVED, OPTIONS).events
    assert [e.type for e in events] == [
        EventType.COMPLETED,
        EventType.RESOLVED,
        EventType.ABANDONED,
    ]
    assert {e.time for e in events} == {datetime.fromtimestamp(1627063520, UTC)}


def test_status_open_is_a_queue_entry_and_the_ids_survive_a_retry() -> None:
    first = map_chatwoot(CONVERSATION, RECEIVED, OPTIONS).events
    again = map_chatwoot(copy.deepcopy(CONVERSATION), RECEIVED, OPTIONS).events
    assert [e.type for e in first] == [EventType.QUEUED]
    assert first == again


def test_inbox_names_and_channels() -> None:
    options = SourceSettings(chatwoot_inbox_names={"1": "Acme Support"})
    email = {**CONVERSATION, "event": "conversation_created", "channel": "Channel::Email"}
    events = map_chatwoot(email, RECEIVED, options).events
    assert (events[0].queue, events[0].channel) == ("Acme Support", Channel.EMAIL)
    social = {**email, "channel": "Channel::FacebookPage"}
    assert map_chatwoot(social, RECEIVED, options).events[0].channel is Channel.SOCIAL


def test_unused_events_are_ignored_and_malformed_ones_named() -> None:
    assert map_chatwoot({"event": "webwidget_triggered", "id": 12}, RECEIVED, OPTIONS).ignored == 1
    with pytest.raises(PayloadError) as caught:
        map_chatwoot({"id": 1}, RECEIVED, OPTIONS)
    assert caught.value.field == "event"
    reply = agent_reply()
    del reply["conversation"]
    with pytest.raises(PayloadError) as caught:
        map_chatwoot(reply, RECEIVED, OPTIONS)
    assert caught.value.field == "conversation"
