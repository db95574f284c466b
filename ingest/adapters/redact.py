"""Replace personal fields of a raw vendor payload by the contract's keyed hash before it is kept.

The raw topic exists so `ccpulse replay` can re-map after a fix; it must never hold a phone number,
an e-mail address or a customer's name. Phone numbers and e-mail addresses are found by their look
wherever they are; names by their key (a customer-name key, or `name` inside a person object), so
agent and queue names survive and a replay still maps them. The hash is the one `customer` gets, so
a replayed event pseudonymises to the same value.
"""

from __future__ import annotations

import json
from typing import Any

from services.privacy import looks_personal, pseudonymise

from .. import jsonsafe

NAME_KEYS = frozenset(
    {"callername", "caller_name", "customer_name", "requester_name", "contact_name", "from_name"}
)
PERSON_KEYS = frozenset({"contact", "requester", "customer", "customerendpoint", "sender_contact"})


def redact(value: Any, key: bytes) -> Any:
    """A copy of a decoded JSON or form payload with personal values hashed."""
    return _walk(value, key, name_key="", in_person=False)


def _walk(value: Any, key: bytes, name_key: str, in_person: bool) -> Any:
    if isinstance(value, dict):
        person = in_person or _is_person(name_key, value)
        return {k: _walk(v, key, str(k).lower(), person) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, key, name_key, in_person) for v in value]
    if isinstance(value, str) and _personal(name_key, value, in_person):
        return pseudonymise(value, key)
    if isinstance(value, str) and value[:1] in "{[":
        return _walk_embedded(value, key, name_key, in_person)
    return value


def _walk_embedded(value: str, key: bytes, name_key: str, in_person: bool) -> str:
    """JSON inside a string (Twilio's TaskAttributes, a form field): redact it too."""
    try:
        inner = jsonsafe.loads(value)  # bounded depth: _walk recurses
    except jsonsafe.JsonRefused:
        return value
    if not isinstance(inner, dict | list):
        return value
    return json.dumps(_walk(inner, key, name_key, in_person), separators=(",", ":"))


def _is_person(name_key: str, value: dict[str, Any]) -> bool:
    kind = str(value.get("type", "")).lower()
    return name_key in PERSON_KEYS or kind == "contact"


TECHNICAL_SUFFIXES = ("timestamp", "timestampms", "time", "_at", "id", "sid", "ms", "duration")


def _personal(name_key: str, value: str, in_person: bool) -> bool:
    if not value.strip() or _technical(name_key, value):
        return False
    if looks_personal(value) or name_key in NAME_KEYS:
        return True
    return in_person and name_key in {"name", "address", "identifier"}


def _technical(name_key: str, value: str) -> bool:
    """Epoch times and numeric ids are long digit strings too; their keys say what they are."""
    return name_key.endswith(TECHNICAL_SUFFIXES) and value.replace(".", "").isdigit()


def redact_line(line: str, key: bytes) -> str:
    """A queue_log line field by field (caller ids sit in ENTERQUEUE's data fields)."""
    fields = line.split("|")
    head, data = fields[:5], fields[5:]
    return "|".join(head + [pseudonymise(f, key) if looks_personal(f) else f for f in data])
