"""Twilio TaskRouter event callbacks (a Workspace's EventCallbackUrl) -> contract events.

TaskRouter is where a Twilio contact center queues and assigns work, so it reports queue entry,
the agent's answer (a reservation accepted), the caller leaving the queue (task canceled) and agent
activity. Every task event restates the task's offer and queue entry from its `TaskAge` (or
`TaskDateCreated`) and queue fields, so an answer whose `task.created` was lost counts whole. A
voice task carries its call's sid in its attributes (`call_sid`), so its events land on
the same contact as the call's status callbacks. Ids name the fact (task + event + queue or
reservation), which a retried callback repeats exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from services import agentstates
from services.contract import Channel, ContactEvent, EventType
from services.sources import SourceSettings

from .. import jsonsafe
from . import twilio
from .base import (
    Mapped,
    PayloadError,
    form_of,
    ignored,
    make_event,
    optional_time,
    parse_time,
    require,
    safe_name,
    text,
)
from .vendor import Route, Vendor

CHANNELS = {c.value: c for c in Channel} | {"default": Channel.CHAT, "video": Channel.CHAT}
TIMEOUT_WORDS = ("ttl", "timeout", "timed out", "expired")

TASK_EVENTS: dict[str, tuple[EventType, ...]] = {
    "task.created": (EventType.OFFERED,),
    "task-queue.entered": (EventType.QUEUED,),
    "reservation.accepted": (EventType.ANSWERED,),
    "task.completed": (EventType.COMPLETED,),
    "task.transfer-initiated": (EventType.TRANSFERRED,),
    "workflow.timeout": (EventType.TIMED_OUT,),
}


def map_taskrouter(
    params: Mapping[str, str], received_at: datetime, options: SourceSettings | None = None
) -> Mapped:
    kind = require(params, "EventType")
    when = _event_time(params, received_at)
    if kind == "worker.activity.update":
        names = (options or SourceSettings()).agent_states.get("twilio")
        return Mapped([_agent_state(params, when, names)])
    if kind == "task.canceled":
        task = _Task(params)
        arrival = task.arrival(params, kind, when, set())
        return Mapped([*arrival, _canceled(task, params, when)])
    types = TASK_EVENTS.get(kind)
    if types is None:
        return ignored()
    task = _Task(params)
    own = [task.event(t, kind, when) for t in types]
    return Mapped([*task.arrival(params, kind, when, set(types)), *own])


def _event_time(params: Mapping[str, str], received_at: datetime) -> datetime:
    for key in ("TimestampMs", "Timestamp"):
        value = text(params, key)
        if value is not None:
            return parse_time(value, key)
    return received_at


class _Task:
    """One task's identity and the fields every one of its events carries."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.sid = require(params, "TaskSid")
        attrs = _attributes(params)
        call_sid = attrs.get("call_sid")
        self.contact = f"twilio:{call_sid or self.sid}"
        self.channel = _channel(params, call_sid)
        self.queue = safe_name(text(params, "TaskQueueName"))
        self.queue_sid = text(params, "TaskQueueSid") or "-"
        self.reservation = text(params, "ReservationSid") or "-"
        self.agent = safe_name(text(params, "WorkerName"))
        self.customer = attrs.get("from") if isinstance(attrs.get("from"), str) else None

    def event(
        self, kind: EventType, vendor_kind: str, when: datetime, **extra: Any
    ) -> ContactEvent:
        fields = {
            "contact": self.contact,
            "channel": self.channel,
            "queue": self.queue,
            "customer": self.customer,
        }
        if kind is EventType.ANSWERED:
            fields["agent"] = self.agent
        return make_event(kind, self._id(vendor_kind), when, **fields, **extra)

    def arrival(
        self, params: Mapping[str, str], vendor_kind: str, when: datetime, own: set[EventType]
    ) -> list[ContactEvent]:
        """The offer and queue entry this event restates, so an answer, cancel or completion
        whose `task.created` was lost still counts whole: created at `TaskDateCreated`, else the
        event time minus `TaskAge` (seconds); in the queue at `TaskQueueEnteredDate`, else since
        creation, when the event names a queue. Own ids: the earliest time of a fact is kept."""
        created = _created(params, when)
        if created is None:
            return []
        out = []
        if EventType.OFFERED not in own:
            out.append(self.restated(EventType.OFFERED, vendor_kind, created))
        if self.queue_sid != "-" and EventType.QUEUED not in own:
            entered = optional_time(text(params, "TaskQueueEnteredDate"), "TaskQueueEnteredDate")
            out.append(self.restated(EventType.QUEUED, vendor_kind, entered or created))
        return out

    def restated(self, kind: EventType, vendor_kind: str, when: datetime) -> ContactEvent:
        fields = {"contact": self.contact, "channel": self.channel, "queue": self.queue}
        event_id = f"{self._id(vendor_kind)}:{kind.value.split('.')[-1]}"
        return make_event(kind, event_id, when, **fields)

    def _id(self, vendor_kind: str) -> str:
        """Queue entries repeat per queue and answers per reservation; the rest once per task."""
        if vendor_kind == "task-queue.entered":
            return f"twilio-tr:{self.sid}:{vendor_kind}:{self.queue_sid}"
        if vendor_kind.startswith("reservation."):
            return f"twilio-tr:{self.reservation}:{vendor_kind}"
        return f"twilio-tr:{self.sid}:{vendor_kind}"


def _created(params: Mapping[str, str], when: datetime) -> datetime | None:
    stamp = optional_time(text(params, "TaskDateCreated"), "TaskDateCreated")
    if stamp is not None:
        return stamp
    age = text(params, "TaskAge")
    if age is None:
        return None
    if not age.isdigit():
        raise PayloadError("TaskAge", f"must be whole seconds, not {age[:20]!r}")
    return when - timedelta(seconds=int(age))


def _attributes(params: Mapping[str, str]) -> dict[str, Any]:
    raw = text(params, "TaskAttributes")
    if raw is None:
        return {}
    try:
        value = jsonsafe.loads(raw)
    except jsonsafe.JsonRefused as exc:
        raise PayloadError("TaskAttributes", exc.message) from exc
    if not isinstance(value, dict):
        raise PayloadError("TaskAttributes", "must be a JSON object")
    return value


def _channel(params: Mapping[str, str], call_sid: Any) -> Channel | None:
    name = (text(params, "TaskChannelUniqueName") or "").lower()
    if name in CHANNELS:
        return CHANNELS[name]
    return Channel.VOICE if call_sid else None


def _canceled(task: _Task, params: Mapping[str, str], when: datetime) -> ContactEvent:
    """A task canceled for its TTL or a workflow timeout timed out; otherwise the caller left."""
    reason = text(params, "TaskCanceledReason") or text(params, "Reason") or ""
    if any(word in reason.lower() for word in TIMEOUT_WORDS):
        return task.event(EventType.TIMED_OUT, "task.canceled", when)
    return task.event(EventType.ABANDONED, "task.canceled", when, stage="queue")


def _agent_state(
    params: Mapping[str, str], when: datetime, names: Mapping[str, str] | None
) -> ContactEvent:
    """Twilio's activity name, normalised (`Available` -> available, `Break` -> not_ready with
    the reason `Break`; docs/adapters.md#agent-states)."""
    worker = safe_name(text(params, "WorkerName")) or safe_name(require(params, "WorkerSid"))
    state, reason = agentstates.normalise(require(params, "WorkerActivityName"), "twilio", names)
    sid = text(params, "WorkerSid") or worker
    stamp = text(params, "TimestampMs") or text(params, "Timestamp") or when.isoformat()
    return make_event(
        EventType.AGENT_STATE,
        f"twilio-tr:{sid}:activity:{stamp}",
        when,
        agent=worker,
        state=state,
        reason=reason,
    )


def _map(
    payload: Any, received_at: datetime, options: SourceSettings, _: Mapping[str, str] | None
) -> Mapped:
    return map_taskrouter(form_of(payload), received_at, options)


VENDOR = Vendor(
    source="twilio.taskrouter",
    path="/webhooks/twilio/taskrouter",
    routes=(Route("POST", "twilio_taskrouter", "Twilio TaskRouter event callbacks"),),
    secret=twilio.SECRET,
    signature_header=twilio.SIGNATURE_HEADER,
    verify=twilio.verify,
    decode=twilio.decode,
    map=_map,
)
