"""Zendesk: ticket event subscriptions (documented schema) and admin-written trigger bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.adapters.base import PayloadError
from ingest.adapters.zendesk import map_zendesk
from services.contract import Channel, EventType
from services.sources import SourceSettings, ZendeskFields

RECEIVED = datetime(2024, 4, 17, 18, 0, tzinfo=UTC)
OPTIONS = SourceSettings()

# A ticket.created event as Zendesk documents the shared event schema.
TICKET_CREATED: dict[str, Any] = {
    "type": "zen:event-type:ticket.created",
    "account_id": 88888888,
    "id": "01HNXXXX-CTEXAMPLE",
    "time": "2024-04-17T17:18:10Z",
    "zendesk_event_version": "2022-11-06",
    "subject": "zen:ticket:35436",
    "detail": {
        "id": "35436",
        "status": "Open",
        "via": {"channel": "web"},
        "group_id": "98738",
        "created_at": "2024-04-17T17:18:10Z",
        "updated_at": "2024-04-17T17:18:10Z",
    },
    "event": {"current": {"status": "Open"}},
}


def event(kind: str, event_id: str, time: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        **TICKET_CREATED,
        "type": f"zen:event-type:ticket.{kind}",
        "id": event_id,
        "time": time,
        "event": body,
    }


def test_ticket_created_is_offered_and_queued_in_its_group() -> None:
    events = map_zendesk(TICKET_CREATED, RECEIVED, OPTIONS).events
    assert [e.type for e in events] == [EventType.OFFERED, EventType.QUEUED]
    assert (events[0].contact, events[0].channel, events[0].queue) == (
        "zendesk:35436",
        Channel.EMAIL,
        "group-98738",
    )
    assert events[0].id == "zendesk:01HNXXXX-CTEXAMPLE:offered"


def test_first_public_staff_comment_answers() -> None:
    comment = {
        "comment": {
            "id": "1",
            "is_public": True,
            "author": {"id": "235323", "is_staff": True, "name": "Agent Smith"},
        }
    }
    added = event("comment_added", "01HNCOMMENT", "2024-04-17T17:30:00Z", comment)
    *arrival, answer = map_zendesk(added, RECEIVED, OPTIONS).events
    assert (answer.type, answer.agent) == (EventType.ANSWERED, "Agent Smith")
    # the ticket's created_at restates its arrival: a reply alone still has its wait
    assert [(e.type, e.id) for e in arrival] == [
        (EventType.OFFERED, "zendesk:35436:created_at:offered"),
        (EventType.QUEUED, "zendesk:35436:created_at:queued"),
    ]
    assert answer.time == datetime(2024, 4, 17, 17, 30, tzinfo=UTC)
    private = {"comment": {**comment["comment"], "is_public": False}}
    assert map_zendesk(
        event("comment_added", "x", "2024-04-17T17:31:00Z", private), RECEIVED, OPTIONS
    ).ignored
    customer = {"comment": {**comment["comment"], "author": {"id": "1", "is_staff": False}}}
    assert map_zendesk(
        event("comment_added", "y", "2024-04-17T17:31:00Z", customer), RECEIVED, OPTIONS
    ).ignored


@pytest.mark.parametrize(
    ("current", "types"),
    [
        ("SOLVED", [EventType.RESOLVED, EventType.COMPLETED]),
        ("closed", [EventType.COMPLETED]),
        ("PENDING", []),
    ],
)
def test_status_changes(current: str, types: list[EventType]) -> None:
    changed = event(
        "status_changed",
        "01HNSTATUS",
        "2024-04-17T18:00:00Z",
        {"current": current, "previous": "OPEN"},
    )
    mapped = map_zendesk(changed, RECEIVED, OPTIONS).events
    arrival = [EventType.OFFERED, EventType.QUEUED] if types else []
    assert [e.type for e in mapped] == arrival + types


def test_other_zendesk_events_are_ignored() -> None:
    other = {**TICKET_CREATED, "type": "zen:event-type:user.active_changed"}
    assert map_zendesk(other, RECEIVED, OPTIONS).ignored == 1
    assert (
        map_zendesk(
            event("priority_changed", "p", "2024-04-17T18:00:00Z", {}), RECEIVED, OPTIONS
        ).ignored
        == 1
    )


# The documented default trigger body (docs/adapters.md) after Zendesk filled its placeholders.
TRIGGER = {
    "ticket_id": "35437",
    "event": "created",
    "status": "new",
    "created_at": "2024-04-17T17:18:10Z",
    "updated_at": "2024-04-17T17:18:10Z",
    "via": "Mail",
    "group": "Billing",
    "assignee": "",
    "requester_email": "customer@example.com",
}


def test_default_trigger_body() -> None:
    events = map_zendesk(TRIGGER, RECEIVED, OPTIONS).events
    assert [e.type for e in events] == [EventType.OFFERED, EventType.QUEUED]
    assert (events[0].queue, events[0].customer, events[0].channel) == (
        "Billing",
        "customer@example.com",
        Channel.EMAIL,
    )
    replied = {
        **TRIGGER,
        "event": "agent_replied",
        "assignee": "Agent Smith",
        "updated_at": "2024-04-17T17:40:00Z",
    }
    *arrival, answer = map_zendesk(replied, RECEIVED, OPTIONS).events
    assert (answer.agent, answer.time.minute) == ("Agent Smith", 40)
    assert [e.type for e in arrival] == [EventType.OFFERED, EventType.QUEUED]


def test_trigger_without_an_event_name_uses_the_status() -> None:
    solved = {k: v for k, v in TRIGGER.items() if k != "event"} | {"status": "solved"}
    assert [e.type for e in map_zendesk(solved, RECEIVED, OPTIONS).events] == [
        EventType.OFFERED,
        EventType.QUEUED,
        EventType.RESOLVED,
        EventType.COMPLETED,
    ]
    pending = {**solved, "status": "pending"}
    assert map_zendesk(pending, RECEIVED, OPTIONS).ignored == 1


def test_trigger_field_paths_are_configurable() -> None:
    options = SourceSettings(zendesk_fields=ZendeskFields(ticket_id="ticket.id", event="kind"))
    body = {"ticket": {"id": 7}, "kind": "created", "created_at": "2024-04-17T17:18:10Z"}
    assert map_zendesk(body, RECEIVED, options).events[0].contact == "zendesk:7"


def test_a_trigger_retry_repeats_its_ids_and_a_missing_ticket_is_named() -> None:
    assert (
        map_zendesk(TRIGGER, RECEIVED, OPTIONS).events
        == map_zendesk(dict(TRIGGER), RECEIVED, OPTIONS).events
    )
    with pytest.raises(PayloadError) as caught:
        map_zendesk({"event": "created"}, RECEIVED, OPTIONS)
    assert caught.value.field == "ticket_id"
    with pytest.raises(PayloadError) as caught:
        map_zendesk({**TICKET_CREATED, "detail": "nope"}, RECEIVED, OPTIONS)
    assert caught.value.field == "detail"
