"""Keep a raw vendor payload without personal data, for `ccpulse replay`: the written lists.

The raw topic exists so a replay can re-map after a fix; it must never hold a phone number, an
e-mail address, a customer's name, where they are, or what they wrote. So, by the lists below:
message bodies (`BODY_FIELDS`) and locations (`LOCATION_FIELDS`) are dropped; names
(`NAME_FIELDS`, and `name` inside a person object) are hashed whole; every other text has the
numbers and addresses inside it hashed where they are (the scanner of `services.privacy`). Agent
and queue names survive, so a replay still maps them. The hash is the one the ingest gives the
mapped fields, so a replayed event pseudonymises to the same value.
"""

from __future__ import annotations

import json
from typing import Any

from services.privacy import field_key, looks_personal, pseudonymise, scrub_text

from .. import jsonsafe

# What a customer or agent wrote: never kept (Chatwoot `content`, Zendesk comment bodies,
# Twilio SMS `Body`, e-mail text).
BODY_FIELDS = frozenset(
    [
        "body",
        "content",
        "text",
        "message",
        "htmlbody",
        "plainbody",
        "description",
        "snippet",
        "transcript",
    ]
)
# Where a caller is (Twilio's geo lookups of both numbers); the country is kept.
LOCATION_FIELDS = frozenset(
    [
        "fromcity",
        "fromstate",
        "fromzip",
        "tocity",
        "tostate",
        "tozip",
        "callercity",
        "callerstate",
        "callerzip",
        "calledcity",
        "calledstate",
        "calledzip",
        "city",
        "zip",
        "zipcode",
        "postcode",
        "postalcode",
        "street",
        "latitude",
        "longitude",
    ]
)
# Hashed whole wherever they are: a name is personal whatever it looks like.
NAME_FIELDS = frozenset(
    [
        "callername",
        "customername",
        "requestername",
        "contactname",
        "fromname",
        "toname",
        "firstname",
        "lastname",
        "fullname",
    ]
)
PERSON_KEYS = frozenset({"contact", "requester", "customer", "customerendpoint", "sendercontact"})
PERSON_FIELDS = frozenset({"name", "address", "identifier", "email", "phonenumber"})


def redact(value: Any, key: bytes) -> Any:
    """A copy of a decoded JSON or form payload with personal values dropped or hashed."""
    return _walk(value, key, name_key="", in_person=False)


def _walk(value: Any, key: bytes, name_key: str, in_person: bool) -> Any:
    if isinstance(value, dict):
        person = in_person or _is_person(name_key, value)
        return {
            k: _walk(v, key, field_key(str(k)), person)
            for k, v in value.items()
            if not _dropped(field_key(str(k)), v)
        }
    if isinstance(value, list):
        return [_walk(v, key, name_key, in_person) for v in value]
    if not isinstance(value, str) or not value.strip() or _technical(name_key, value):
        return value
    if name_key in NAME_FIELDS or (in_person and name_key in PERSON_FIELDS):
        return pseudonymise(value, key)
    if value[:1] in "{[":
        return _walk_embedded(value, key, name_key, in_person)
    return pseudonymise(value, key) if looks_personal(value) else scrub_text(value, key)


def _dropped(name_key: str, value: Any) -> bool:
    """Bodies and locations go, unless they are containers (walked: they may hold ids)."""
    listed = name_key in BODY_FIELDS or name_key in LOCATION_FIELDS
    return listed and not isinstance(value, dict | list)


def _walk_embedded(value: str, key: bytes, name_key: str, in_person: bool) -> str:
    """JSON inside a string (Twilio's TaskAttributes, a form field): redact it too."""
    try:
        inner = jsonsafe.loads(value)  # bounded depth: _walk recurses
    except jsonsafe.JsonRefused:
        return scrub_text(value, key)
    if not isinstance(inner, dict | list):
        return scrub_text(value, key)
    redacted = _walk(inner, key, name_key, in_person)
    if redacted == inner:
        return value
    return json.dumps(redacted, separators=(",", ":"), ensure_ascii=False)


def _is_person(name_key: str, value: dict[str, Any]) -> bool:
    """A customer object: by its key, Chatwoot's `type: contact`, Zendesk's non-staff author."""
    kind = str(value.get("type", "")).lower()
    customer = value.get("is_staff") is False or str(value.get("role", "")).lower() == "end-user"
    return name_key in PERSON_KEYS or kind == "contact" or customer


TECHNICAL_SUFFIXES = ("timestamp", "timestampms", "time", "at", "id", "sid", "ms", "duration")


def _technical(name_key: str, value: str) -> bool:
    """Epoch times and numeric ids are long digit strings too; their keys say what they are."""
    return name_key.endswith(TECHNICAL_SUFFIXES) and value.replace(".", "").isdigit()


def redact_line(line: str, key: bytes) -> str:
    """A queue_log line field by field (caller ids sit in ENTERQUEUE's data fields)."""
    fields = line.split("|")
    head, data = fields[:5], fields[5:]
    return "|".join(head + [_redact_field(f, key) for f in data])


def _redact_field(value: str, key: bytes) -> str:
    return pseudonymise(value, key) if looks_personal(value) else scrub_text(value, key)
