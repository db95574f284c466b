"""Chatwoot webhooks (conversation_created, message_created, conversation_status_changed) -> events.

A conversation is offered when created; it waits in the queue while `open` and in the bot (our IVR
stage `bot`) while `pending`; the first public reply of a human agent is the answer; resolving it
completes it, and a conversation resolved without any agent reply is an abandon (the aggregator
ignores that report once an agent replied). Conversation ids are global in a Chatwoot
installation, so `chatwoot:<id>` is the contact; ids add the status and its time, or the message id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.contract import Channel, ContactEvent, EventType
from services.sources import SourceSettings

from ..signatures import Verdict, check_chatwoot
from .base import (
    JsonObject,
    Mapped,
    PayloadError,
    as_object,
    dig,
    ignored,
    make_event,
    obj,
    optional_time,
    require,
    safe_name,
    text,
)
from .vendor import Delivery, Route, Vendor, decode_json

CHANNELS = {
    "channel::webwidget": Channel.CHAT,
    "channel::api": Channel.CHAT,
    "channel::email": Channel.EMAIL,
    "channel::sms": Channel.SMS,
    "channel::twiliosms": Channel.SMS,
}
OUTGOING = ("outgoing", 1, "1")
BOT_STAGE = "bot"
STATUS_EVENTS = ("conversation_status_changed", "conversation_resolved", "conversation_opened")


def map_chatwoot(payload: Any, received_at: datetime, options: SourceSettings) -> Mapped:
    body = as_object(payload, "body")
    kind = require(body, "event")
    if kind == "conversation_created":
        return _created(_Conversation(body, options, received_at))
    if kind in STATUS_EVENTS:
        return _status_changed(_Conversation(body, options, received_at))
    if kind == "message_created":
        return _message(body, options)
    return ignored()


class _Conversation:
    def __init__(self, data: JsonObject, options: SourceSettings, received_at: datetime) -> None:
        self.id = require(data, "id")
        self.status = (text(data, "status") or "open").lower()
        self.fields = _fields(data, options)
        self.fields["customer"] = _customer(data)
        self.created = optional_time(data.get("created_at"), "created_at")
        self.changed = (
            optional_time(data.get("updated_at"), "updated_at")
            or optional_time(data.get("timestamp"), "timestamp")
            or received_at
        )

    def event(self, kind: EventType, when: datetime, tag: str, **extra: Any) -> ContactEvent:
        event_id = f"chatwoot:{self.id}:{tag}:{kind.value.split('.')[-1]}"
        return make_event(kind, event_id, when, **self.fields, **extra)


def _fields(conversation: JsonObject, options: SourceSettings) -> dict[str, Any]:
    conv_id = require(conversation, "id")
    inbox = text(conversation, "inbox_id")
    queue = options.chatwoot_inbox_names.get(inbox, f"inbox-{inbox}") if inbox else None
    return {
        "contact": f"chatwoot:{conv_id}",
        "channel": _channel(text(conversation, "channel")),
        "queue": safe_name(queue),
    }


def _channel(name: str | None) -> Channel:
    key = (name or "").lower()
    if key in CHANNELS:
        return CHANNELS[key]
    return Channel.SOCIAL if key.startswith("channel::") else Channel.CHAT


def _customer(conversation: JsonObject) -> str | None:
    sender = dig(conversation, "meta.sender")
    if not isinstance(sender, dict):
        return None
    return text(sender, "email") or text(sender, "phone_number") or text(sender, "identifier")


def _created(c: _Conversation) -> Mapped:
    when = c.created or c.changed
    events = [c.event(EventType.OFFERED, when, "created")]
    if c.status == "pending":
        events.append(c.event(EventType.IVR, when, "created", stage=BOT_STAGE))
    else:
        events.append(c.event(EventType.QUEUED, when, "created"))
    return Mapped(events)


def _status_changed(c: _Conversation) -> Mapped:
    tag = f"{c.status}:{int(c.changed.timestamp())}"
    if c.status == "open":  # handed over from the bot, or reopened: waiting for an agent
        return Mapped([c.event(EventType.QUEUED, c.changed, tag)])
    if c.status == "resolved":
        return Mapped(
            [
                c.event(EventType.COMPLETED, c.changed, tag),
                c.event(EventType.RESOLVED, c.changed, tag),
                c.event(EventType.ABANDONED, c.changed, tag),
            ]
        )
    return ignored()  # pending / snoozed


def _message(body: JsonObject, options: SourceSettings) -> Mapped:
    """Only a human agent's public reply answers the conversation."""
    sender = obj(body.get("sender"))
    human = str(sender.get("type", "")).lower() == "user"
    outgoing = body.get("message_type") in OUTGOING
    if not (outgoing and human) or body.get("private") is True:
        return ignored()
    conversation = as_object(body.get("conversation"), "conversation")
    message_id = require(body, "id")
    when = optional_time(body.get("created_at"), "created_at")
    if when is None:
        raise PayloadError("created_at", "is missing")
    fields = _fields(conversation, options)
    agent = safe_name(sender.get("name")) or safe_name(sender.get("id"))
    event_id = f"chatwoot:message:{message_id}:answered"
    answer = make_event(EventType.ANSWERED, event_id, when, agent=agent, **fields)
    return Mapped([*_arrival(conversation, fields), answer])


def _arrival(conversation: JsonObject, fields: dict[str, Any]) -> list[ContactEvent]:
    """The reply restates the conversation's offer from its `created_at`, so a reply whose
    `conversation_created` never came still counts with its wait (the earliest offer is kept)."""
    created = optional_time(conversation.get("created_at"), "conversation.created_at")
    if created is None:
        return []
    event_id = f"{fields['contact']}:reply-restated:offered"
    return [make_event(EventType.OFFERED, event_id, created, **fields)]


def verify(secret: str, delivery: Delivery) -> Verdict:
    h, window = delivery.headers, delivery.options.replay_window_seconds
    stamp, signature = h.get("x-chatwoot-timestamp"), h.get("x-chatwoot-signature")
    return check_chatwoot(secret, stamp, signature, delivery.body, delivery.now, window)


def _map(
    payload: Any, received_at: datetime, options: SourceSettings, _: Mapping[str, str] | None
) -> Mapped:
    return map_chatwoot(payload, received_at, options)


VENDOR = Vendor(
    source="chatwoot",
    path="/webhooks/chatwoot",
    routes=(Route("POST", "chatwoot", "Chatwoot webhooks"),),
    secret="chatwoot_secret",
    signature_header="X-Chatwoot-Signature",
    verify=verify,
    decode=decode_json,
    map=_map,
)
