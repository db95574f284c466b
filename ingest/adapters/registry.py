"""The vendors (one record each), and the raw record kept on `ccpulse.raw` for a replay.

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

from . import (
    amazon_connect,
    asterisk,
    chatwoot,
    cloudevents,
    twilio_taskrouter,
    twilio_voice,
    zendesk,
)
from .base import Mapped, PayloadError, as_object, parse_time
from .redact import redact
from .vendor import Vendor

RAW_VERSION = 1

# One row per vendor: its routes, verification, decoding, mapping and secret are in its record.
VENDORS: tuple[Vendor, ...] = (
    twilio_voice.VENDOR,
    twilio_taskrouter.VENDOR,
    amazon_connect.VENDOR,
    chatwoot.VENDOR,
    zendesk.VENDOR,
    cloudevents.VENDOR,
    asterisk.VENDOR,
)
BY_SOURCE = {vendor.source: vendor for vendor in VENDORS}
SOURCES = tuple(BY_SOURCE)

# The sources' names, for callers that name one vendor (tests, replay tooling).
TWILIO_VOICE = twilio_voice.VENDOR.source
TWILIO_TASKROUTER = twilio_taskrouter.VENDOR.source
AMAZON_CONNECT = amazon_connect.VENDOR.source
CHATWOOT = chatwoot.VENDOR.source
ZENDESK = zendesk.VENDOR.source
CLOUDEVENTS = cloudevents.VENDOR.source
ASTERISK = asterisk.VENDOR.source


def vendor_of(source: str) -> Vendor:
    vendor = BY_SOURCE.get(source)
    if vendor is None:
        raise PayloadError("source", f"unknown source {source!r}")
    return vendor


def dispatch(
    source: str,
    payload: Any,
    received_at: datetime,
    options: SourceSettings,
    query: Mapping[str, str] | None = None,
) -> Mapped:
    """Map one decoded payload of `source`; raises PayloadError naming what is malformed."""
    return vendor_of(source).map(payload, received_at, options, query)


def raw_record(
    source: str,
    payload: Any,
    received_at: datetime,
    key: bytes,
    query: Mapping[str, str] | None = None,
) -> bytes:
    """The payload as it came, with personal values replaced by the keyed hash."""
    vendor = BY_SOURCE.get(source)
    kept = vendor.keep(payload, key) if vendor is not None else redact(payload, key)
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
