"""Twilio Voice status callbacks and `<Enqueue>` action results -> contract events.

A phone number's status callback tells when a call ended and how long it lasted (so when it
started); the agent leg of a `<Dial>` (it has a ParentCallSid) tells when an agent answered; an
`<Enqueue action>` result tells how a queued call left the queue. Every fact is emitted with the
vendor's time and an id made of the CallSid and the status, which a retried callback repeats
exactly; the aggregator folds the facts in any order (first times are minima, an answer outranks an
abandon report, a timeout is its own outcome).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from services.contract import Channel, ContactEvent, EventType
from services.privacy import looks_personal
from services.sources import SourceSettings

from . import twilio
from .base import (
    Mapped,
    PayloadError,
    form_of,
    ignored,
    make_event,
    parse_time,
    require,
    safe_name,
    text,
)
from .vendor import Route, Vendor

STATUSES = frozenset(
    {
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    }
)
OFFERING = frozenset({"queued", "initiated", "ringing"})
UNANSWERED = frozenset({"no-answer", "canceled"})  # the caller hung up before the IVR picked up


def map_voice(
    params: Mapping[str, str], received_at: datetime, query: Mapping[str, str] | None = None
) -> Mapped:
    """One form-encoded callback; `query` holds the callback URL's own `queue` / `stage`."""
    options = query or {}
    call_sid = require(params, "CallSid")
    if text(params, "QueueResult") is not None:
        return _enqueue_result(params, call_sid, received_at, options)
    status = require(params, "CallStatus").lower()
    if status not in STATUSES:
        raise PayloadError("CallStatus", f"unknown call status {status!r}")
    when = _callback_time(params, received_at)
    parent = text(params, "ParentCallSid")
    if parent is not None:
        return _agent_leg(parent, call_sid, status, when, params)
    if not (text(params, "Direction") or "inbound").lower().startswith("inbound"):
        return ignored()  # outbound calls are not demand on the contact center
    return _caller_leg(call_sid, status, when, params, options)


def _callback_time(params: Mapping[str, str], received_at: datetime) -> datetime:
    stamp = text(params, "Timestamp")
    return parse_time(stamp, "Timestamp") if stamp is not None else received_at


class _Call:
    """The shared fields of one call's events, and its id scheme."""

    def __init__(self, call_sid: str, status: str, params: Mapping[str, str], queue: str | None):
        self.sid = call_sid
        self.status = status
        self.fields = {
            "contact": f"twilio:{call_sid}",
            "channel": Channel.VOICE,
            "customer": text(params, "From") or text(params, "Caller"),
            "queue": safe_name(queue),
        }

    def event(self, kind: EventType, when: datetime, **extra: str | None) -> ContactEvent:
        suffix = kind.value.split(".")[-1]
        event_id = f"twilio:{self.sid}:{self.status}:{suffix}"
        return make_event(kind, event_id, when, **self.fields, **extra)


def _caller_leg(
    call_sid: str,
    status: str,
    when: datetime,
    params: Mapping[str, str],
    options: Mapping[str, str],
) -> Mapped:
    call = _Call(call_sid, status, params, options.get("queue"))
    stage = safe_name(options.get("stage")) or "ivr"
    if status in OFFERING:
        return Mapped([call.event(EventType.OFFERED, when)])
    if status == "in-progress":
        return Mapped(
            [call.event(EventType.OFFERED, when), call.event(EventType.IVR, when, stage=stage)]
        )
    if status in UNANSWERED:
        return Mapped(
            [
                call.event(EventType.OFFERED, when),
                call.event(EventType.ABANDONED, when, stage="ring"),
            ]
        )
    if status == "completed":
        return Mapped(_completed(call, when, _duration(params), stage))
    return ignored()  # busy / failed: the call never reached us


def _completed(call: _Call, end: datetime, duration_s: int, stage: str) -> list[ContactEvent]:
    """The call ran `duration_s` from when the IVR answered; ended unanswered = an abandon report.

    The abandon names no stage: the aggregator takes the last stage the call entered (the queue if
    TaskRouter queued it), and ignores the report when an agent answered or the queue timed out.
    """
    start = end - timedelta(seconds=duration_s)
    return [
        call.event(EventType.OFFERED, start),
        call.event(EventType.IVR, start, stage=stage),
        call.event(EventType.COMPLETED, end),
        call.event(EventType.ABANDONED, end),
    ]


def _duration(params: Mapping[str, str]) -> int:
    raw = text(params, "CallDuration") or "0"
    if not raw.isdigit():
        raise PayloadError("CallDuration", "must be whole seconds")
    return int(raw)


def _agent_leg(
    parent: str, call_sid: str, status: str, when: datetime, params: Mapping[str, str]
) -> Mapped:
    """The `<Dial>` leg to an agent: its answer is the caller's answer, its end the handling end."""
    fields = {"contact": f"twilio:{parent}", "channel": Channel.VOICE}
    if status == "in-progress":
        agent = _agent_name(text(params, "To"))
        event_id = f"twilio:{call_sid}:in-progress:answered"
        return Mapped([make_event(EventType.ANSWERED, event_id, when, agent=agent, **fields)])
    if status == "completed":
        event_id = f"twilio:{call_sid}:completed:completed"
        return Mapped([make_event(EventType.COMPLETED, event_id, when, **fields)])
    return ignored()


def _agent_name(to: str | None) -> str | None:
    """`client:alice` / `sip:alice@pbx` name an agent; a phone number is personal, not a name."""
    if to is None or looks_personal(to):
        return None
    bare = to.split(":", 1)[-1].split("@", 1)[0]
    return safe_name(bare)


def _enqueue_result(
    params: Mapping[str, str], call_sid: str, received_at: datetime, options: Mapping[str, str]
) -> Mapped:
    """`hangup`: abandoned in the queue; `leave`: taken out by the app (`<Leave>`), a timeout.

    The result carries no time of its own: it is sent when the call leaves the queue, so the
    arrival time is that moment and QueueTime (seconds) dates the queue entry. A `bridged` result
    comes only after the conversation ended, so the answer is taken from the agent leg instead.
    """
    result = require(params, "QueueResult").lower()
    outcome = {"hangup": EventType.ABANDONED, "leave": EventType.TIMED_OUT}.get(result)
    if outcome is None:
        return ignored()
    waited = text(params, "QueueTime") or "0"
    if not waited.isdigit():
        raise PayloadError("QueueTime", "must be whole seconds")
    queue = options.get("queue") or text(params, "QueueSid")
    call = _Call(call_sid, f"enqueue-{result}", params, queue)
    stage = "queue" if outcome is EventType.ABANDONED else None
    return Mapped(
        [
            call.event(EventType.QUEUED, received_at - timedelta(seconds=int(waited))),
            call.event(outcome, received_at, stage=stage),
        ]
    )


def _map(
    payload: Any, received_at: datetime, _: SourceSettings, query: Mapping[str, str] | None
) -> Mapped:
    return map_voice(form_of(payload), received_at, query)


VENDOR = Vendor(
    source="twilio.voice",
    path="/webhooks/twilio/voice",
    routes=(
        Route("POST", "twilio_voice", "Twilio Voice status callbacks and <Enqueue> results"),
        Route("GET", "twilio_voice_get", "Twilio Voice status callbacks sent with GET"),
    ),
    secret=twilio.SECRET,
    signature_header=twilio.SIGNATURE_HEADER,
    verify=twilio.verify,
    decode=twilio.decode,
    map=_map,
)
