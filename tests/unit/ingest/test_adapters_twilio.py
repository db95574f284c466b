"""Twilio Voice status callbacks, <Enqueue> results and TaskRouter events, from Twilio's docs."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.contributions import abandon_stage, is_abandoned
from aggregator.facts import ContactFacts, fold
from ingest.adapters.base import PayloadError
from ingest.adapters.twilio_taskrouter import map_taskrouter
from ingest.adapters.twilio_voice import map_voice
from services.contract import ContactEvent, EventType

RECEIVED = datetime(2010, 8, 16, 3, 50, tzinfo=UTC)

# The parameters Twilio documents for a call status callback (values from its examples).
STATUS_CALLBACK = {
    "AccountSid": "AC00000000000000000000000000000001",
    "ApiVersion": "2010-04-01",
    "CallSid": "CA1234567890ABCDE",
    "CallStatus": "completed",
    "Called": "+18005551212",
    "Caller": "+14158675309",
    "Direction": "inbound",
    "From": "+14158675309",
    "To": "+18005551212",
    "CallDuration": "42",
    "SipResponseCode": "200",
    "Timestamp": "Mon, 16 Aug 2010 03:45:01 +0000",
    "CallbackSource": "call-progress-events",
    "SequenceNumber": "3",
}
END = datetime(2010, 8, 16, 3, 45, 1, tzinfo=UTC)

# TaskRouter EventCallbackUrl parameters: the common ones, then the Task/Worker field data.
TASKROUTER = {
    "AccountSid": "AC00000000000000000000000000000001",
    "WorkspaceSid": "WS0000000000000000000000000000001",
    "WorkspaceName": "Flex Task Assignment",
    "EventDescription": "Task WT0000000000000000000000000000001 canceled",
    "ResourceType": "Task",
    "ResourceSid": "WT0000000000000000000000000000001",
    "Timestamp": "1281930301",
    "TimestampMs": "1281930301000",
    "TaskSid": "WT0000000000000000000000000000001",
    "TaskAttributes": json.dumps({"call_sid": "CA1234567890ABCDE", "from": "+14158675309"}),
    "TaskAge": "31",
    "TaskPriority": "1",
    "TaskAssignmentStatus": "canceled",
    "TaskQueueSid": "WQ0000000000000000000000000000001",
    "TaskQueueName": "Support",
    "TaskChannelUniqueName": "voice",
    "TaskCanceledReason": "hangup",
}
TR_TIME = datetime.fromtimestamp(1281930301, UTC)


def kinds(events: list[ContactEvent]) -> list[tuple[EventType, datetime]]:
    return [(e.type, e.time) for e in events]


def test_completed_inbound_call_dates_its_start_from_the_duration() -> None:
    mapped = map_voice(STATUS_CALLBACK, RECEIVED)
    start = END - timedelta(seconds=42)
    assert kinds(mapped.events) == [
        (EventType.OFFERED, start),
        (EventType.IVR, start),
        (EventType.COMPLETED, END),
        (EventType.ABANDONED, END),
    ]
    first = mapped.events[0]
    assert first.contact == "twilio:CA1234567890ABCDE"
    assert first.customer == "+14158675309"  # hashed later by IngestState.protect
    assert mapped.events[3].stage is None  # the aggregator picks the last stage entered


def test_a_retried_callback_repeats_its_ids() -> None:
    first = map_voice(STATUS_CALLBACK, RECEIVED).events
    again = map_voice(dict(STATUS_CALLBACK), RECEIVED + timedelta(seconds=30)).events
    assert [e.id for e in first] == [e.id for e in again]
    assert first == again  # vendor times, not arrival times


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("ringing", [EventType.OFFERED]),
        ("initiated", [EventType.OFFERED]),
        ("in-progress", [EventType.OFFERED, EventType.IVR]),
        ("canceled", [EventType.OFFERED, EventType.ABANDONED]),
        ("busy", []),
        ("failed", []),
    ],
)
def test_progress_statuses(status: str, expected: list[EventType]) -> None:
    mapped = map_voice({**STATUS_CALLBACK, "CallStatus": status}, RECEIVED)
    assert [e.type for e in mapped.events] == expected
    assert mapped.ignored == (0 if expected else 1)


def test_agent_leg_answer_lands_on_the_caller() -> None:
    leg = {
        **STATUS_CALLBACK,
        "CallSid": "CA0000000000000000000000000000AGENT",
        "ParentCallSid": "CA1234567890ABCDE",
        "Direction": "outbound-dial",
        "To": "client:alice",
        "CallStatus": "in-progress",
    }
    (event,) = map_voice(leg, RECEIVED).events
    assert (event.type, event.contact, event.agent) == (
        EventType.ANSWERED,
        "twilio:CA1234567890ABCDE",
        "alice",
    )


def test_agent_leg_to_a_phone_number_names_no_agent() -> None:
    leg = {**STATUS_CALLBACK, "ParentCallSid": "CAparent", "CallStatus": "in-progress"}
    (event,) = map_voice(leg, RECEIVED).events
    assert event.agent is None


def test_outbound_calls_are_not_demand() -> None:
    mapped = map_voice({**STATUS_CALLBACK, "Direction": "outbound-api"}, RECEIVED)
    assert (mapped.events, mapped.ignored) == ([], 1)


def test_enqueue_hangup_is_a_queue_abandon_dated_by_queue_time() -> None:
    action = {**STATUS_CALLBACK, "QueueResult": "hangup", "QueueSid": "QU123", "QueueTime": "30"}
    del action["Timestamp"]
    mapped = map_voice(action, RECEIVED, {"queue": "support"})
    assert kinds(mapped.events) == [
        (EventType.QUEUED, RECEIVED - timedelta(seconds=30)),
        (EventType.ABANDONED, RECEIVED),
    ]
    assert mapped.events[1].stage == "queue"
    assert mapped.events[0].queue == "support"


def test_enqueue_leave_is_a_timeout_and_bridged_is_ignored() -> None:
    leave = {**STATUS_CALLBACK, "QueueResult": "leave", "QueueSid": "QU123", "QueueTime": "300"}
    assert [e.type for e in map_voice(leave, RECEIVED).events] == [
        EventType.QUEUED,
        EventType.TIMED_OUT,
    ]
    bridged = {**leave, "QueueResult": "bridged"}
    assert map_voice(bridged, RECEIVED).ignored == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"CallSid": ""}, "CallSid"),
        ({"CallStatus": "exploded"}, "CallStatus"),
        ({"CallDuration": "4x"}, "CallDuration"),
        ({"Timestamp": "yesterday-ish"}, "Timestamp"),
    ],
)
def test_malformed_callbacks_name_the_field(change: dict[str, str], field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        map_voice({**STATUS_CALLBACK, **change}, RECEIVED)
    assert caught.value.field == field


def test_taskrouter_hangup_cancel_is_a_queue_abandon_on_the_call() -> None:
    event = map_taskrouter({**TASKROUTER, "EventType": "task.canceled"}, RECEIVED).events[-1]
    assert event.type is EventType.ABANDONED
    assert (event.contact, event.stage, event.queue) == (
        "twilio:CA1234567890ABCDE",
        "queue",
        "Support",
    )
    assert event.time == TR_TIME


@pytest.mark.parametrize("reason", ["Task TTL Exceeded", "Workflow Timeout"])
def test_taskrouter_cancel_for_ttl_is_a_timeout(reason: str) -> None:
    params = {**TASKROUTER, "EventType": "task.canceled", "TaskCanceledReason": reason}
    event = map_taskrouter(params, RECEIVED).events[-1]
    assert event.type is EventType.TIMED_OUT


@pytest.mark.parametrize(
    ("vendor", "kind"),
    [
        ("task.created", EventType.OFFERED),
        ("task-queue.entered", EventType.QUEUED),
        ("reservation.accepted", EventType.ANSWERED),
        ("task.completed", EventType.COMPLETED),
        ("workflow.timeout", EventType.TIMED_OUT),
    ],
)
def test_taskrouter_task_events(vendor: str, kind: EventType) -> None:
    params = {
        **TASKROUTER,
        "EventType": vendor,
        "ReservationSid": "WR1",
        "WorkerName": "alice",
    }
    event = map_taskrouter(params, RECEIVED).events[-1]
    assert event.type is kind
    assert event.channel is not None and event.channel.value == "voice"
    assert (event.agent == "alice") is (kind is EventType.ANSWERED)


def test_taskrouter_worker_activity_is_agent_state_and_other_events_are_ignored() -> None:
    activity = {
        **TASKROUTER,
        "EventType": "worker.activity.update",
        "WorkerSid": "WK1",
        "WorkerName": "alice",
        "WorkerActivityName": "Available",
    }
    (event,) = map_taskrouter(activity, RECEIVED).events
    assert (event.type, event.agent, event.state) == (EventType.AGENT_STATE, "alice", "available")
    assert map_taskrouter({**TASKROUTER, "EventType": "reservation.created"}, RECEIVED).ignored == 1


def test_taskrouter_bad_attributes_are_named() -> None:
    with pytest.raises(PayloadError) as caught:
        map_taskrouter({**TASKROUTER, "EventType": "task.created", "TaskAttributes": "{"}, RECEIVED)
    assert caught.value.field == "TaskAttributes"


def _fold(events: list[ContactEvent]) -> ContactFacts:
    facts = ContactFacts(contact=events[0].contact or "")
    for event in events:
        fold(facts, event)
    return facts


def test_voice_and_taskrouter_fold_to_one_outcome_in_any_order() -> None:
    """Queue abandon: TaskRouter names the stage; the status callback only reports the end."""
    events = [
        *map_taskrouter({**TASKROUTER, "EventType": "task.created"}, RECEIVED).events,
        *map_taskrouter({**TASKROUTER, "EventType": "task-queue.entered"}, RECEIVED).events,
        *map_taskrouter({**TASKROUTER, "EventType": "task.canceled"}, RECEIVED).events,
        *map_voice(STATUS_CALLBACK, RECEIVED).events,
    ]
    outcomes = set()
    for seed in range(20):
        shuffled = list(events)
        random.Random(seed).shuffle(shuffled)
        facts = _fold(shuffled)
        outcomes.add((is_abandoned(facts), abandon_stage(facts), facts.offered_ms))
    assert outcomes == {(True, "queue", int((END - timedelta(seconds=42)).timestamp() * 1000))}


def test_an_agent_answer_outranks_the_end_of_call_abandon_report() -> None:
    answer = {**TASKROUTER, "EventType": "reservation.accepted", "WorkerName": "alice"}
    facts = _fold(
        [*map_voice(STATUS_CALLBACK, RECEIVED).events, *map_taskrouter(answer, RECEIVED).events]
    )
    assert not is_abandoned(facts)
    assert facts.answered_agent is not None and facts.answered_agent.value == "alice"
