"""Zendesk webhooks -> contract events: ticket event subscriptions, and trigger bodies.

Ticket event subscriptions (`zen:event-type:ticket.*`) have a fixed schema and an event id that a
retry repeats. Trigger and automation bodies are written by the Zendesk admin, so where each value
sits is configurable (`SourceSettings.zendesk_fields`, default in docs/adapters.md); their id is
made of the ticket, the event and its time, which a retry repeats too. A ticket is offered and
queued (in its group) when created, answered by the first public comment of staff, resolved when
solved, completed when solved or closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.contract import Channel, ContactEvent, EventType
from services.sources import SourceSettings, ZendeskFields

from ..signatures import Verdict, check_zendesk
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
    parse_time,
    require,
    safe_name,
    text,
)
from .vendor import Delivery, Route, Vendor, decode_json

EVENT_PREFIX = "zen:event-type:ticket."
CHANNELS = {
    "email": Channel.EMAIL,
    "web": Channel.EMAIL,
    "api": Channel.EMAIL,
    "mobile": Channel.EMAIL,
    "web_form": Channel.EMAIL,
    "chat": Channel.CHAT,
    "native_messaging": Channel.CHAT,
    "messaging": Channel.CHAT,
    "voice": Channel.VOICE,
    "sms": Channel.SMS,
}
SOCIAL = ("twitter", "facebook", "whatsapp", "instagram", "line", "wechat", "telegram")
KINDS: dict[str, tuple[EventType, ...]] = {
    "created": (EventType.OFFERED, EventType.QUEUED),
    "agent_replied": (EventType.ANSWERED,),
    "solved": (EventType.RESOLVED, EventType.COMPLETED),
    "closed": (EventType.COMPLETED,),
}
STATUS_KINDS = {"new": "created", "solved": "solved", "closed": "closed"}


def map_zendesk(payload: Any, received_at: datetime, options: SourceSettings) -> Mapped:
    body = as_object(payload, "body")
    kind = text(body, "type") or ""
    if kind.startswith("zen:event-type:"):
        return _subscription(body, kind, options) if kind.startswith(EVENT_PREFIX) else ignored()
    return _trigger(body, received_at, options)


def _channel(value: Any) -> Channel:
    name = str(value or "email").lower()
    if name in CHANNELS:
        return CHANNELS[name]
    return Channel.SOCIAL if name.startswith(SOCIAL) else Channel.EMAIL


def _queue(group: Any, options: SourceSettings) -> str | None:
    if group in (None, "", 0, "0"):
        return None
    key = str(group)
    return safe_name(
        options.zendesk_group_names.get(key, key if not key.isdigit() else f"group-{key}")
    )


def _events(kinds: tuple[EventType, ...], prefix: str, when: datetime, **fields: Any) -> Mapped:
    out: list[ContactEvent] = []
    for kind in kinds:
        extra = dict(fields)
        if kind is not EventType.ANSWERED:
            extra.pop("agent", None)
        if kind is not EventType.OFFERED:
            extra.pop("customer", None)
        out.append(make_event(kind, f"{prefix}:{kind.value.split('.')[-1]}", when, **extra))
    return Mapped(out)


def _subscription(body: JsonObject, kind: str, options: SourceSettings) -> Mapped:
    detail = as_object(body.get("detail"), "detail")
    event = obj(body.get("event"))
    ticket = require(detail, "id", "detail.id")
    fields = {
        "contact": f"zendesk:{ticket}",
        "channel": _channel(dig(detail, "via.channel")),
        "queue": _queue(detail.get("group_id"), options),
    }
    prefix = f"zendesk:{require(body, 'id')}"
    when = parse_time(body.get("time"), "time")
    name = kind.removeprefix(EVENT_PREFIX)
    created = optional_time(detail.get("created_at"), "detail.created_at")
    if name == "created":
        return _events(KINDS["created"], prefix, created or when, **fields)
    if name == "status_changed":
        chosen = STATUS_KINDS.get(str(event.get("current") or "").lower())
        if chosen is None or chosen == "created":
            return ignored()
        return _arrival(_events(KINDS[chosen], prefix, when, **fields), ticket, created, fields)
    if name == "comment_added":
        return _arrival(_comment(event, prefix, when, fields), ticket, created, fields)
    return ignored()


def _arrival(
    mapped: Mapped, ticket: str, created: datetime | None, fields: dict[str, Any]
) -> Mapped:
    """A ticket event restates the ticket's arrival from its `created_at`, so a reply or a
    solve whose `ticket.created` never came (sent before the webhook existed) counts whole."""
    if not mapped.events or created is None:
        return mapped
    kinds = KINDS["created"]
    restated = _events(kinds, f"zendesk:{ticket}:created_at", created, **fields)
    return Mapped([*restated.events, *mapped.events], mapped.ignored)


def _comment(event: JsonObject, prefix: str, when: datetime, fields: dict[str, Any]) -> Mapped:
    comment = obj(event.get("comment"))
    author = obj(comment.get("author"))
    if comment.get("is_public") is not True or author.get("is_staff") is not True:
        return ignored()
    agent = safe_name(author.get("name")) or safe_name(author.get("id"))
    return _events(KINDS["agent_replied"], prefix, when, agent=agent, **fields)


def _trigger(body: JsonObject, received_at: datetime, options: SourceSettings) -> Mapped:
    paths = options.zendesk_fields
    ticket = _field(body, paths, "ticket_id")
    if ticket is None:
        raise PayloadError(paths.ticket_id, "is missing (the ticket id; see docs/adapters.md)")
    kind = _trigger_kind(body, paths)
    if kind is None:
        return ignored()
    when = optional_time(_field(body, paths, "time"), paths.time) or received_at
    if kind == "created":
        when = optional_time(_field(body, paths, "created_at"), paths.created_at) or when
    fields = {
        "contact": f"zendesk:{ticket}",
        "channel": _channel(_field(body, paths, "channel")),
        "queue": _queue(_field(body, paths, "queue"), options),
        "agent": safe_name(_field(body, paths, "agent")),
        "customer": _field(body, paths, "customer"),
    }
    prefix = f"zendesk:{ticket}:{kind}:{int(when.timestamp())}"
    mapped = _events(KINDS[kind], prefix, when, **fields)
    if kind == "created":
        return mapped
    created = optional_time(_field(body, paths, "created_at"), paths.created_at)
    return _arrival(mapped, ticket, created, {k: v for k, v in fields.items() if k != "agent"})


def _trigger_kind(body: JsonObject, paths: ZendeskFields) -> str | None:
    named = (_field(body, paths, "event") or "").lower()
    if named:
        if named not in KINDS:
            return None
        return named
    return STATUS_KINDS.get((_field(body, paths, "status") or "").lower())


def _field(body: JsonObject, paths: ZendeskFields, name: str) -> str | None:
    value = dig(body, getattr(paths, name))
    if value is None or isinstance(value, dict | list):
        return None
    result = str(value).strip()
    return result or None


def verify(secret: str, delivery: Delivery) -> Verdict:
    h, window = delivery.headers, delivery.options.replay_window_seconds
    stamp = h.get("x-zendesk-webhook-signature-timestamp")
    signature = h.get("x-zendesk-webhook-signature")
    return check_zendesk(secret, stamp, signature, delivery.body, delivery.now, window)


def _map(
    payload: Any, received_at: datetime, options: SourceSettings, _: Mapping[str, str] | None
) -> Mapped:
    return map_zendesk(payload, received_at, options)


VENDOR = Vendor(
    source="zendesk",
    path="/webhooks/zendesk",
    routes=(Route("POST", "zendesk", "Zendesk webhooks (ticket events and triggers)"),),
    secret="zendesk_secret",
    signature_header="X-Zendesk-Webhook-Signature",
    verify=verify,
    decode=decode_json,
    map=_map,
)
