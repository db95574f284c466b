"""Amazon Connect contact events (EventBridge) and contact records (CTRs) -> contract events.

Keys are compared without regard to case (AWS's own samples write `contactId` and `ContactId`).
Both inputs describe the same contact, so both produce the same ids, `connect:<ContactId>:<fact>`,
and a repeated event, a re-sent CTR or a CTR that repeats what an event said counts once. CTRs come
at least once and may be updated: within one delivery only the latest LastUpdateTimestamp of a
ContactId is used; across deliveries the ids make repeats harmless, first-time facts keep their
earliest time and the completion its latest (docs/adapters.md).

Every event restates the earlier facts its timestamps carry (offer, IVR, queue entry, answer),
as a contact record does, so an answer or a disconnect whose earlier events were filtered or lost
still counts whole. An unanswered disconnect of a queued inbound contact is an abandon from the
queue, unless the flow itself ended it (CONTACT_FLOW_DISCONNECT / EXPIRED while queued: a queue
time limit), which is a timeout; one that never queued abandons in the IVR only when the customer
hung up (CUSTOMER_DISCONNECT); with no such evidence the contact just ends.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from services.contract import ContactEvent, EventType
from services.sources import SourceSettings

from .. import jsonsafe
from ..signatures import Verdict, check_token
from .base import (
    JsonObject,
    Mapped,
    PayloadError,
    dig,
    ignored,
    lower_keys,
    make_event,
    parse_time,
    safe_name,
)
from .vendor import Delivery, Route, Vendor, decode_json

NOT_DEMAND = frozenset(
    {"OUTBOUND", "EXTERNAL_OUTBOUND", "MONITOR", "AGENT_REPLY", "FLOW", "DISCONNECT"}
)
TRANSFER_METHODS = frozenset({"TRANSFER", "QUEUE_TRANSFER"})
SYSTEM_ENDS = frozenset({"CONTACT_FLOW_DISCONNECT", "EXPIRED"})
PLACEHOLDER_BEFORE = datetime(
    2000, 1, 1, tzinfo=UTC
)  # AWS writes 1970-01-01T00:00:00.001Z for "none"


def map_connect(payload: Any, received_at: datetime, options: SourceSettings) -> Mapped:
    """One EventBridge event, one CTR, a list of either, or a Firehose HTTP delivery."""
    items = list(_items(lower_keys(payload)))
    if not items:
        raise PayloadError("body", "holds no Amazon Connect event or contact record")
    result = Mapped()
    events = [i for i in items if "detail" in i or "detail-type" in i]
    records = _latest_records([i for i in items if "detail" not in i and "detail-type" not in i])
    for item in events:
        result.add(_from_event(item, received_at, options))
    for record in records:
        result.add(_from_record(record, options))
    return result


def is_firehose(payload: Any) -> bool:
    return isinstance(payload, dict) and "records" in payload and "requestId" in payload


def _items(value: Any) -> Iterator[JsonObject]:
    if isinstance(value, list):
        for item in value:
            yield from _items(item)
    elif isinstance(value, dict) and isinstance(value.get("records"), list):
        for index, record in enumerate(value["records"]):
            yield from _items(_firehose_data(record, index))
    elif isinstance(value, dict):
        yield value
    else:
        raise PayloadError("body", "must be a JSON object or an array of objects")


def _firehose_data(record: Any, index: int) -> Any:
    where = f"records.{index}.data"
    try:
        raw = base64.b64decode(str(dig(record, "data")), validate=True).decode("utf-8")
        return lower_keys(json_values(raw))
    except (binascii.Error, UnicodeDecodeError, jsonsafe.JsonRefused) as exc:
        raise PayloadError(where, "is not base64-encoded JSON") from exc


_DECODER = json.JSONDecoder()


def json_values(text: str) -> list[Any]:
    """Every JSON value in `text`, split on value boundaries, not lines: a record may hold one
    indented (multi-line) document, or several documents with or without newlines between."""
    values: list[Any] = []
    at = _skip_space(text, 0)
    while at < len(text):
        try:
            value, at = _DECODER.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise jsonsafe.NotJson(exc) from exc
        except RecursionError as exc:
            raise jsonsafe.JsonRefused("body", "is nested too deeply") from exc
        jsonsafe.check(value)
        values.append(value)
        at = _skip_space(text, at)
    return values


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _latest_records(records: list[JsonObject]) -> list[JsonObject]:
    """At-least-once CTRs: per ContactId keep the one with the latest LastUpdateTimestamp."""
    latest: dict[str, tuple[datetime, JsonObject]] = {}
    for index, record in enumerate(records):
        contact_id = _required(record, "contactid", f"records.{index}.ContactId")
        stamp = _time(record.get("lastupdatetimestamp")) or PLACEHOLDER_BEFORE
        if contact_id not in latest or stamp >= latest[contact_id][0]:
            latest[contact_id] = (stamp, record)
    return [record for _, record in latest.values()]


class _Contact:
    """One Connect contact: its ids and the fields every event about it carries."""

    def __init__(self, data: JsonObject, options: SourceSettings, where: str) -> None:
        self.id = _required(data, "contactid", f"{where}.ContactId")
        self.key = f"connect:{data.get('initialcontactid') or self.id}"
        self.method = str(data.get("initiationmethod") or "INBOUND").upper()
        channel = str(_required(data, "channel", f"{where}.Channel")).upper()
        self.channel = options.amazon_connect_channels.get(channel)
        self.queue: str | None = None
        self.agent: str | None = None
        self.customer: str | None = None

    @property
    def counted(self) -> bool:
        return self.channel is not None and self.method not in NOT_DEMAND

    def event(self, kind: EventType, when: datetime, **extra: Any) -> ContactEvent:
        fields = {"contact": self.key, "channel": self.channel, "queue": self.queue}
        if kind is EventType.OFFERED:
            fields["customer"] = self.customer
        if kind is EventType.ANSWERED:
            fields["agent"] = self.agent
        event_id = f"connect:{self.id}:{kind.value.split('.')[-1]}"
        return make_event(kind, event_id, when, **fields, **extra)

    def start(self, when: datetime) -> ContactEvent:
        """A transferred leg is the same customer contact moving on, not a new offer."""
        if self.method in TRANSFER_METHODS:
            return self.event(EventType.TRANSFERRED, when)
        return self.event(EventType.OFFERED, when)

    def end(
        self,
        when: datetime,
        queued: bool,
        answered: bool,
        reason: str,
        done: datetime | None = None,
    ) -> list[ContactEvent]:
        """Disconnected: completed (after wrap-up when known), plus the outcome if unanswered."""
        events = [self.event(EventType.COMPLETED, max(done or when, when))]
        if answered:
            return events
        if queued:
            kind = EventType.TIMED_OUT if reason in SYSTEM_ENDS else EventType.ABANDONED
            stage = "queue" if kind is EventType.ABANDONED else None
            return [*events, self.event(kind, when, stage=stage)]
        if reason == "CUSTOMER_DISCONNECT":  # the caller hung up before reaching a queue
            return [*events, self.event(EventType.ABANDONED, when, stage="ivr")]
        return events  # no evidence of an abandon: the contact just ends


def _from_event(item: JsonObject, received_at: datetime, options: SourceSettings) -> Mapped:
    detail = item.get("detail")
    if not isinstance(detail, dict):
        raise PayloadError("detail", "must be a JSON object")
    kind = str(detail.get("eventtype") or "").upper()
    if not kind:
        raise PayloadError("detail.eventType", "is missing")
    contact = _Contact(detail, options, "detail")
    if not contact.counted:
        return ignored()
    contact.queue = _queue_name(dig(detail, "queueinfo.queuearn"), options)
    contact.agent = _agent_name(dig(detail, "agentinfo.agentarn"), options)
    fallback = _time(item.get("time")) or received_at
    events = _event_facts(kind, detail, contact, fallback)
    return Mapped(events) if events is not None else ignored()


def _event_facts(
    kind: str, d: JsonObject, c: _Contact, fallback: datetime
) -> list[ContactEvent] | None:
    """The event's own fact, plus every earlier fact it restates from its timestamps."""

    def at(path: str) -> datetime:
        return _time(dig(d, path)) or fallback

    own: list[ContactEvent]
    if kind == "INITIATED":
        own = [c.start(at("initiationtimestamp"))]
    elif kind == "CONNECTED_TO_SYSTEM":
        own = [c.event(EventType.IVR, at("connectedtosystemtimestamp"), stage="ivr")]
    elif kind == "QUEUED":
        own = [c.event(EventType.QUEUED, at("queueinfo.enqueuetimestamp"))]
    elif kind == "CONNECTED_TO_AGENT":
        own = [c.event(EventType.ANSWERED, at("agentinfo.connectedtoagenttimestamp"))]
    elif kind == "DISCONNECTED":
        queued = _time(dig(d, "queueinfo.enqueuetimestamp")) is not None or "queueinfo" in d
        answered = _time(dig(d, "agentinfo.connectedtoagenttimestamp")) is not None
        own = c.end(at("disconnecttimestamp"), queued, answered, _reason(d))
    elif kind == "COMPLETED":
        end = _time(dig(d, "agentinfo.aftercontactworkendtimestamp")) or at("disconnecttimestamp")
        own = [c.event(EventType.COMPLETED, end)]
    else:
        return None
    return _merge(_carried(d, c, "queueinfo", "agentinfo"), own)


def _merge(carried: list[ContactEvent], own: list[ContactEvent]) -> list[ContactEvent]:
    """The event's own facts win over a restated fact with the same id."""
    ids = {e.id for e in own}
    return [*(e for e in carried if e.id not in ids), *own]


def _carried(d: JsonObject, c: _Contact, queue: str, agent: str) -> list[ContactEvent]:
    """Offer, IVR entry, queue entry and answer, each only when its timestamp is present: an
    answer or a disconnect whose earlier events were filtered or lost still counts whole."""
    events: list[ContactEvent] = []
    start = _time(d.get("initiationtimestamp"))
    system = _time(d.get("connectedtosystemtimestamp"))
    queued = _time(dig(d, f"{queue}.enqueuetimestamp"))
    answered = _time(dig(d, f"{agent}.connectedtoagenttimestamp"))
    if start is not None:
        events.append(c.start(start))
    if system is not None:
        events.append(c.event(EventType.IVR, system, stage="ivr"))
    if queued is not None:
        events.append(c.event(EventType.QUEUED, queued))
    if answered is not None:
        events.append(c.event(EventType.ANSWERED, answered))
    return events


def _from_record(record: JsonObject, options: SourceSettings) -> Mapped:
    """A contact record holds the whole contact: one fact per timestamp it has."""
    contact = _Contact(record, options, "record")
    if not contact.counted:
        return ignored()
    contact.queue = _queue_name(dig(record, "queue.arn"), options, dig(record, "queue.name"))
    contact.agent = safe_name(dig(record, "agent.username")) or _agent_name(
        dig(record, "agent.arn"), options
    )
    contact.customer = _customer(record)
    if _time(record.get("initiationtimestamp")) is None:
        raise PayloadError("record.InitiationTimestamp", "is missing")
    return Mapped(_record_facts(record, contact))


def _record_facts(r: JsonObject, c: _Contact) -> list[ContactEvent]:
    events = _carried(r, c, "queue", "agent")
    queued = _time(dig(r, "queue.enqueuetimestamp"))
    answered = _time(dig(r, "agent.connectedtoagenttimestamp"))
    ended = _time(r.get("disconnecttimestamp"))
    if ended is not None:
        wrap_end = _time(dig(r, "agent.aftercontactworkendtimestamp"))
        events.extend(c.end(ended, queued is not None, answered is not None, _reason(r), wrap_end))
    return events


def _customer(record: JsonObject) -> str | None:
    address = dig(record, "customerendpoint.address")
    return str(address) if isinstance(address, str) and address else None


def _reason(data: JsonObject) -> str:
    return str(data.get("disconnectreason") or "").upper()


def _queue_name(arn: Any, options: SourceSettings, name: Any = None) -> str | None:
    queue_id = _last_segment(arn)
    if queue_id is not None and queue_id in options.amazon_connect_queue_names:
        return safe_name(options.amazon_connect_queue_names[queue_id])
    return safe_name(name) or safe_name(queue_id)


def _agent_name(arn: Any, options: SourceSettings) -> str | None:
    agent_id = _last_segment(arn)
    if agent_id is None:
        return None
    return safe_name(options.amazon_connect_agent_names.get(agent_id, agent_id))


def _last_segment(arn: Any) -> str | None:
    if not isinstance(arn, str) or not arn.strip():
        return None
    return arn.rstrip("/").rsplit("/", 1)[-1]


def _time(value: Any) -> datetime | None:
    """A timestamp, or None when absent or AWS's 1970 placeholder."""
    if value in (None, ""):
        return None
    when = parse_time(value, "timestamp")
    return when if when >= PLACEHOLDER_BEFORE else None


def _required(data: JsonObject, key: str, where: str) -> str:
    value = data.get(key)
    if value in (None, ""):
        raise PayloadError(where, "is missing")
    return str(value)


TOKEN_HEADERS = ("x-amz-firehose-access-key", "x-api-key", "authorization")


def verify(token: str, delivery: Delivery) -> Verdict:
    """Firehose sends its access key; an API destination may use either of the others."""
    headers = delivery.headers
    presented = next((headers[h] for h in TOKEN_HEADERS if h in headers), None)
    return check_token(token, presented)


def firehose_answer(
    payload: Any, status: int, body: bytes, now: datetime
) -> tuple[int, JsonObject] | None:
    """Firehose HTTP endpoints must echo the requestId, with an errorMessage when refused."""
    if not is_firehose(payload):
        return None
    answer: JsonObject = {
        "requestId": payload.get("requestId"),
        "timestamp": int(now.timestamp() * 1000),
    }
    if status >= 300:
        answer["errorMessage"] = body.decode(errors="replace")[:500]
    return (200 if status < 300 else status), answer


def _map(
    payload: Any, received_at: datetime, options: SourceSettings, _: Mapping[str, str] | None
) -> Mapped:
    return map_connect(payload, received_at, options)


VENDOR = Vendor(
    source="amazon_connect",
    path="/webhooks/amazon-connect",
    routes=(Route("POST", "amazon_connect", "Amazon Connect contact events and contact records"),),
    secret="amazon_connect_token",
    signature_header="X-Amz-Firehose-Access-Key",
    verify=verify,
    decode=decode_json,
    map=_map,
    answer=firehose_answer,
)
