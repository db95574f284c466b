"""Vendors' documented payloads in partial sequences (answer only, disconnect only, out of order,
repeated) through the adapter and the engine: the figures a person reading the payloads counts.

Each case states the expected figures by hand, and the oracle (tests/oracle.py) recounts the
same mapped events independently.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.adapters.amazon_connect import map_connect
from ingest.adapters.chatwoot import map_chatwoot
from ingest.adapters.twilio_taskrouter import map_taskrouter
from ingest.adapters.zendesk import map_zendesk
from services import kpis
from services.contract import ContactEvent
from services.settings import DEFAULT_SL_THRESHOLDS_SECONDS
from services.sources import SourceSettings
from tests import oracle
from tests.unit.aggregator.test_engine_recount import MemoryState
from tests.unit.ingest import test_adapters_amazon_connect as ac
from tests.unit.ingest import test_adapters_chatwoot as cw
from tests.unit.ingest import test_adapters_twilio as tw
from tests.unit.ingest import test_adapters_zendesk as zd

FIELDS = (
    "offered",
    "queued",
    "answered",
    "abandoned",
    "abandoned_queue",
    "abandoned_ivr",
    "timed_out",
    "handled",
    "asa_seconds",
    "aht_seconds",
)


def count(events: list[ContactEvent], now: datetime, channel: str = "voice") -> dict[str, Any]:
    """Apply one event per batch, then read the channel over the whole day."""
    state = MemoryState(now=now.timestamp(), lateness_s=10 * 365 * 86400)
    wire = [e.model_dump(mode="json", exclude_none=True) for e in events]
    for event in wire:
        state.apply([event])
    day = int(now.timestamp()) // 86400 * 86400
    got = state.figures(f"ch|{channel}", day - 86400, day + 86400, channel)
    threshold = {channel: DEFAULT_SL_THRESHOLDS_SECONDS[channel]}
    want = oracle.recount(wire, day - 86400, day + 86400, threshold)["channels"]
    if want:
        for name in FIELDS:
            assert got[name] == want[channel][name], name
    return {name: got[name] for name in FIELDS}


def zero(**figures: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(FIELDS, 0)
    base.update(asa_seconds=None, aht_seconds=None)
    return {**base, **figures}


# --- Amazon Connect (the admin guide's samples) ---

CONNECT_NOW = datetime(2021, 8, 4, 18, 0, tzinfo=UTC)
OPTIONS = SourceSettings()


def connect(*payloads: dict[str, Any]) -> list[ContactEvent]:
    return [e for p in payloads for e in map_connect(p, CONNECT_NOW, OPTIONS).events]


def test_connect_answer_only_restates_offer_and_queue() -> None:
    """The documented CONNECTED_TO_AGENT sample alone: initiated 17:17:53, queued 17:29:04,
    connected 17:29:09 -> one offered, queued and answered call, answered after 5 s."""
    got = count(connect(ac.CONNECTED_TO_AGENT), CONNECT_NOW)
    assert got == zero(offered=1, queued=1, answered=1, asa_seconds=5.0)


def test_connect_answer_with_no_timestamps_counts_answered_without_asa() -> None:
    bare = copy.deepcopy(ac.CONNECTED_TO_AGENT)
    del bare["detail"]["initiationTimestamp"], bare["detail"]["queueInfo"]
    got = count(connect(bare), CONNECT_NOW)
    assert got == zero(answered=1)  # no wait known: answered, no ASA or service level


def test_connect_disconnect_only_with_no_evidence_just_ends() -> None:
    """No queueInfo, agentInfo or reason: offered (it is inbound with an initiation time), no
    abandon."""
    bare = ac.inbound_disconnect("", queued=False, answered=False)
    del bare["detail"]["disconnectReason"]
    assert count(connect(bare), CONNECT_NOW) == zero(offered=1)


def test_connect_disconnect_only_customer_hung_up_in_ivr() -> None:
    payload = ac.inbound_disconnect("CUSTOMER_DISCONNECT", queued=False, answered=False)
    assert count(connect(payload), CONNECT_NOW) == zero(offered=1, abandoned=1, abandoned_ivr=1)


def test_connect_disconnect_only_without_initiation_time_counts_no_abandon() -> None:
    payload = ac.inbound_disconnect("CUSTOMER_DISCONNECT", queued=False, answered=False)
    del payload["detail"]["initiationTimestamp"]
    assert count(connect(payload), CONNECT_NOW) == zero()


def test_connect_disconnect_only_from_the_queue() -> None:
    payload = ac.inbound_disconnect("CUSTOMER_DISCONNECT", queued=True, answered=False)
    got = count(connect(payload), CONNECT_NOW)
    assert got == zero(offered=1, queued=1, abandoned=1, abandoned_queue=1)


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 1, 0, 2)])
def test_connect_out_of_order_and_repeated(order: tuple[int, ...]) -> None:
    """Answered after 39 s in the queue (17:18:30 -> 17:19:09), ended 17:20:37: handled 88 s."""
    answered = ac.inbound_disconnect("AGENT_DISCONNECT", queued=True, answered=True)
    answered["detail"]["eventType"] = "CONNECTED_TO_AGENT"
    del answered["detail"]["disconnectTimestamp"], answered["detail"]["disconnectReason"]
    initiated = copy.deepcopy(answered)
    initiated["detail"] = {
        k: v for k, v in answered["detail"].items() if k not in ("queueInfo", "agentInfo")
    }
    initiated["detail"]["eventType"] = "INITIATED"
    ended = ac.inbound_disconnect("AGENT_DISCONNECT", queued=True, answered=True)
    payloads = [initiated, answered, ended]
    got = count(connect(*(payloads[i] for i in order)), CONNECT_NOW)
    assert got == zero(
        offered=1, queued=1, answered=1, handled=1, asa_seconds=39.0, aht_seconds=88.0
    )


# --- Twilio TaskRouter (the event reference's parameters) ---

TR_NOW = datetime(2010, 8, 16, 4, 0, tzinfo=UTC)
ACCEPTED = {
    **tw.TASKROUTER,
    "EventType": "reservation.accepted",
    "ReservationSid": "WR1",
    "WorkerName": "alice",
    "TaskAssignmentStatus": "assigned",
}


def taskrouter(*params: dict[str, str]) -> list[ContactEvent]:
    return [e for p in params for e in map_taskrouter(p, TR_NOW).events]


def test_taskrouter_answer_only_restates_offer_from_task_age() -> None:
    """Accepted at 03:45:01 with TaskAge 31: created (and queued) 31 s earlier."""
    got = count(taskrouter(ACCEPTED), TR_NOW)
    assert got == zero(offered=1, queued=1, answered=1, asa_seconds=31.0)


def test_taskrouter_answer_uses_the_queue_entry_date_when_given() -> None:
    entered = {**ACCEPTED, "TaskQueueEnteredDate": "2010-08-16T03:44:50Z"}
    got = count(taskrouter(entered), TR_NOW)
    assert got == zero(offered=1, queued=1, answered=1, asa_seconds=11.0)


def test_taskrouter_answer_then_its_late_task_created_keeps_the_earliest_offer() -> None:
    created = {
        **tw.TASKROUTER,
        "EventType": "task.created",
        "TaskAge": "0",
        "Timestamp": "1281930260",
        "TimestampMs": "1281930260000",
    }
    completed = {
        **tw.TASKROUTER,
        "EventType": "task.completed",
        "TaskAge": "131",
        "Timestamp": "1281930401",
        "TimestampMs": "1281930401000",
    }
    events = taskrouter(ACCEPTED, completed, ACCEPTED, created)
    got = count(events, TR_NOW)
    # created 03:44:20, answered 03:45:01 (41 s), completed 03:46:41 (100 s)
    assert got == zero(
        offered=1, queued=1, answered=1, handled=1, asa_seconds=41.0, aht_seconds=100.0
    )


def test_taskrouter_cancel_only_is_a_queue_abandon_of_an_offered_task() -> None:
    canceled = {**tw.TASKROUTER, "EventType": "task.canceled"}
    got = count(taskrouter(canceled), TR_NOW)
    assert got == zero(offered=1, queued=1, abandoned=1, abandoned_queue=1)


# --- Zendesk (the shared ticket event schema) ---

ZD_NOW = datetime(2024, 4, 17, 19, 0, tzinfo=UTC)
STAFF = {"id": "235323", "is_staff": True, "name": "Agent Smith"}
STAFF_REPLY = {"comment": {"id": "1", "is_public": True, "author": STAFF}}


def zendesk(*bodies: dict[str, Any]) -> list[ContactEvent]:
    return [e for b in bodies for e in map_zendesk(b, ZD_NOW, SourceSettings()).events]


def test_zendesk_reply_only_restates_the_ticket_arrival() -> None:
    """Created 17:18:10 (detail.created_at), first public staff reply 17:30:00: 710 s."""
    reply = zd.event("comment_added", "01HNCOMMENT", "2024-04-17T17:30:00Z", STAFF_REPLY)
    got = count(zendesk(reply), ZD_NOW, "email")
    assert got == zero(offered=1, queued=1, answered=1, asa_seconds=710.0)


def test_zendesk_out_of_order_and_repeated_ticket_events() -> None:
    reply = zd.event("comment_added", "01HNCOMMENT", "2024-04-17T17:30:00Z", STAFF_REPLY)
    solved = zd.event(
        "status_changed",
        "01HNSOLVED",
        "2024-04-17T18:00:00Z",
        {"current": "SOLVED", "previous": "OPEN"},
    )
    events = zendesk(solved, reply, zd.TICKET_CREATED, reply, solved)
    got = count(events, ZD_NOW, "email")
    assert got == zero(
        offered=1, queued=1, answered=1, handled=1, asa_seconds=710.0, aht_seconds=1800.0
    )


# --- Chatwoot (the documented webhook samples) ---

CW_NOW = datetime(2021, 7, 23, 19, 0, tzinfo=UTC)


def test_chatwoot_reply_only_restates_the_offer_from_the_conversation() -> None:
    """Captured message_created payloads carry the conversation's `created_at` (epoch):
    created 18:01:48, first agent reply 18:03:30 -> answered after 102 s."""
    reply = cw.agent_reply()
    reply["conversation"]["created_at"] = 1627063308
    events = map_chatwoot(reply, CW_NOW, SourceSettings()).events
    assert count(events, CW_NOW, "chat") == zero(offered=1, answered=1, asa_seconds=102.0)
    bare = cw.agent_reply()  # the documented sample has no created_at: answered, no wait
    events = map_chatwoot(bare, CW_NOW, SourceSettings()).events
    assert count(events, CW_NOW, "chat") == zero(answered=1)


def test_kpis_answered_includes_answers_without_a_wait() -> None:
    assert kpis.answered({kpis.ANSWERED: 2, kpis.ANSWERED_UNTIMED: 1}) == 3
