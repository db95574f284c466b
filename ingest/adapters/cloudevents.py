"""CloudEvents 1.0 (structured, batched and binary modes) whose `data` is the ccpulse contract.

The envelope fills what `data` leaves out: the CloudEvents `type` (`contact.offered`, or any name
ending in `.contact.offered`) gives the contract type, `subject` the contact, `time` the time, and
`source` + `id` the event id, since CloudEvents makes that pair unique per event: a producer that
re-sends an event repeats both, so it counts once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services import contract
from services.contract import ContactEvent, EventType
from services.sources import SourceSettings

from .. import jsonsafe
from .base import JsonObject, Mapped, PayloadError, ignored
from .vendor import (
    Decoded,
    Delivery,
    Route,
    UnsupportedMediaType,
    Vendor,
    json_of,
    verify_bearer,
)

CONTRACT_TYPES = {t.value: t for t in EventType}
REQUIRED = ("id", "source", "type")


def map_cloudevents(payload: Any) -> Mapped:
    """One structured event (a JSON object) or a batch (a JSON array of them)."""
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise PayloadError("body", "the batch is empty")
    result = Mapped()
    for index, item in enumerate(items):
        result.add(_one(item, index if isinstance(payload, list) else None))
    return result


def binary_event(headers: dict[str, str], body: bytes, content_type: str) -> JsonObject:
    """Binary mode: attributes in `ce-*` headers, the body is `data`."""
    envelope: JsonObject = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    envelope["datacontenttype"] = content_type
    try:
        envelope["data"] = jsonsafe.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, jsonsafe.JsonRefused) as exc:
        raise PayloadError("data", "is not JSON") from exc
    return envelope


def _one(item: Any, index: int | None) -> Mapped:
    where = "" if index is None else f"{index}."
    if not isinstance(item, dict):
        raise PayloadError(f"{where}event", "must be a JSON object")
    _check_envelope(item, where)
    data = _data(item, where)
    kind = _contract_type(item, data)
    if kind is None:
        return ignored()
    return Mapped([_event(item, data, kind, where, index or 0)])


def _check_envelope(item: JsonObject, where: str) -> None:
    if str(item.get("specversion", "")) != "1.0":
        raise PayloadError(f"{where}specversion", 'must be "1.0"')
    for name in REQUIRED:
        value = item.get(name)
        if not isinstance(value, str) or not value.strip():
            raise PayloadError(f"{where}{name}", "is required (a non-empty string)")


def _data(item: JsonObject, where: str) -> JsonObject:
    if "data_base64" in item:
        try:
            raw = base64.b64decode(str(item["data_base64"]), validate=True)
            item = {**item, "data": jsonsafe.loads(raw.decode("utf-8"))}
        except (binascii.Error, UnicodeDecodeError, jsonsafe.JsonRefused) as exc:
            raise PayloadError(f"{where}data_base64", "is not base64-encoded JSON") from exc
    media = str(item.get("datacontenttype") or "application/json").lower()
    if "json" not in media:
        raise PayloadError(f"{where}datacontenttype", "must be JSON (the ccpulse event contract)")
    data = item.get("data")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PayloadError(f"{where}data", "must be a JSON object (the ccpulse event contract)")
    return data


def _contract_type(item: JsonObject, data: JsonObject) -> EventType | None:
    named = data.get("type")
    if isinstance(named, str) and named in CONTRACT_TYPES:
        return CONTRACT_TYPES[named]
    ce_type = str(item["type"])
    for value, kind in CONTRACT_TYPES.items():
        if ce_type == value or ce_type.endswith("." + value):
            return kind
    return None


def _event(
    item: JsonObject, data: JsonObject, kind: EventType, where: str, index: int
) -> ContactEvent:
    merged = dict(data)
    merged["type"] = kind.value
    merged.setdefault("id", f"ce:{item['source']}:{item['id']}")
    if "time" in item:
        merged.setdefault("time", item["time"])
    if "subject" in item and kind is not EventType.AGENT_STATE:
        merged.setdefault("contact", item["subject"])
    event, errors = contract.parse_event(merged, index)
    if event is None:
        first = errors[0]
        raise PayloadError(f"{where}data.{first.field}", first.message)
    return event


def decode(delivery: Delivery) -> Decoded:
    """Binary mode (`ce-specversion` header), or structured / batched JSON."""
    content_type = delivery.headers.get("content-type", "").split(";")[0].strip().lower()
    payload: Any
    if "ce-specversion" in delivery.headers:
        headers = {k.lower(): v for k, v in delivery.headers.items()}
        payload = binary_event(headers, delivery.body, content_type or "application/json")
    elif "json" in content_type or not content_type:
        payload = json_of(delivery.body)
    else:
        message = f"{content_type!r} is not a CloudEvents JSON mode"
        raise UnsupportedMediaType("Content-Type", message)
    if content_type == "application/cloudevents-batch+json" and not isinstance(payload, list):
        raise PayloadError("body", "a batch must be a JSON array")
    return Decoded(payload)


def _map(payload: Any, _: datetime, __: SourceSettings, ___: Mapping[str, str] | None) -> Mapped:
    return map_cloudevents(payload)


VENDOR = Vendor(
    source="cloudevents",
    path="/v1/cloudevents",
    routes=(
        Route("POST", "cloudevents", "CloudEvents 1.0 whose data is the ccpulse event contract"),
    ),
    secret="cloudevents_token",
    signature_header="Authorization",
    verify=verify_bearer,
    decode=decode,
    map=_map,
)
