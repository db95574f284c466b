"""Which adapter maps which source, and the raw record kept on `ccpulse.raw` for a replay.

The webhook routes and `ccpulse replay` both go through `dispatch`, so a payload replayed from the
raw topic is mapped exactly as it was when it arrived (same arrival time, same query), with the
mapping of the day: that is what makes a replay fix a mapping bug.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.sources import SourceSettings

from .amazon_connect import map_connect
from .asterisk import map_lines
from .base import Mapped, PayloadError, as_object, parse_time
from .chatwoot import map_chatwoot
from .cloudevents import map_cloudevents
from .redact import redact, redact_line
from .twilio_taskrouter import map_taskrouter
from .twilio_voice import map_voice
from .zendesk import map_zendesk

RAW_VERSION = 1
TWILIO_VOICE = "twilio.voice"
TWILIO_TASKROUTER = "twilio.taskrouter"
AMAZON_CONNECT = "amazon_connect"
CHATWOOT = "chatwoot"
ZENDESK = "zendesk"
CLOUDEVENTS = "cloudevents"
ASTERISK = "asterisk"
SOURCES = (
    TWILIO_VOICE,
    TWILIO_TASKROUTER,
    AMAZON_CONNECT,
    CHATWOOT,
    ZENDESK,
    CLOUDEVENTS,
    ASTERISK,
)


def dispatch(
    source: str,
    payload: Any,
    received_at: datetime,
    options: SourceSettings,
    query: Mapping[str, str] | None = None,
) -> Mapped:
    """Map one decoded payload of `source`; raises PayloadError naming what is malformed."""
    if source == TWILIO_VOICE:
        return map_voice(_form(payload), received_at, query)
    if source == TWILIO_TASKROUTER:
        return map_taskrouter(_form(payload), received_at, options)
    if source == AMAZON_CONNECT:
        return map_connect(payload, received_at, options)
    if source == CHATWOOT:
        return map_chatwoot(payload, received_at, options)
    if source == ZENDESK:
        return map_zendesk(payload, received_at, options)
    if source == CLOUDEVENTS:
        return map_cloudevents(payload)
    if source == ASTERISK:
        return map_lines(_lines(payload), options)
    raise PayloadError("source", f"unknown source {source!r}")


def _form(payload: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_object(payload, "body").items()}


def _lines(payload: Any) -> list[str]:
    if not isinstance(payload, list) or not all(isinstance(line, str) for line in payload):
        raise PayloadError("body", "must be queue_log lines")
    return payload


def raw_record(
    source: str,
    payload: Any,
    received_at: datetime,
    key: bytes,
    query: Mapping[str, str] | None = None,
) -> bytes:
    """The payload as it came, with personal values replaced by the keyed hash."""
    kept = (
        [redact_line(line, key) for line in payload] if source == ASTERISK else redact(payload, key)
    )
    record = {
        "v": RAW_VERSION,
        "source": source,
        "received_at": received_at.isoformat(),
        "query": redact(dict(query or {}), key),
        "payload": kept,
    }
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def renormalise(value: bytes, options: SourceSettings) -> Mapped:
    """Map a `ccpulse.raw` record again (for `ccpulse replay` after a mapping fix)."""
    try:
        record = as_object(json.loads(value), "record")
    except json.JSONDecodeError as exc:
        raise PayloadError("record", f"is not JSON ({exc.msg})") from exc
    if record.get("v") != RAW_VERSION:
        raise PayloadError("record.v", f"unknown raw record version {record.get('v')!r}")
    received_at = parse_time(record.get("received_at"), "record.received_at")
    query = record.get("query") if isinstance(record.get("query"), dict) else {}
    return dispatch(str(record.get("source")), record.get("payload"), received_at, options, query)
