"""Personal data (phone numbers, e-mail addresses, names) is replaced by a keyed hash at ingest.

The hash is stable for one key, so "the same customer called again" still works for FCR, but the
value cannot be reversed or guessed from a phone-number list without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re

HASH_PREFIX = "h:"
_PHONE_JUNK = re.compile(r"[\s().\-]")


def normalise_identity(value: str) -> str:
    """One customer, one hash: e-mails case-folded, phone numbers without punctuation."""
    text = value.strip()
    if "@" in text:
        return text.lower()
    compact = _PHONE_JUNK.sub("", text)
    return compact if compact.lstrip("+").isdigit() else text


def pseudonymise(value: str, key: bytes) -> str:
    if value.startswith(HASH_PREFIX):
        return value
    digest = hmac.new(key, normalise_identity(value).encode(), hashlib.sha256).hexdigest()
    return HASH_PREFIX + digest[:32]


_DOMAIN = re.compile(r"[^@\s]+\.[^@\s]+")  # after the "@" of an e-mail address
_PHONE = re.compile(r"^\+?[\d\s().\-]{7,20}$")


def looks_personal(value: str) -> bool:
    """E-mail addresses and phone numbers, wherever a platform puts them."""
    text = value.strip()
    return _has_email(text) or (bool(_PHONE.match(text)) and sum(ch.isdigit() for ch in text) >= 7)


def _has_email(text: str) -> bool:
    """Some "@" with a non-space before it and `name.domain` after it, the domain's first 255
    characters looked at. One regex search over the whole string backtracked quadratically (a
    200 kB value held the ingest for minutes; found by fuzzing); this is linear."""
    at = text.find("@")
    while at != -1:
        before = text[at - 1] if at > 0 else "@"
        if before != "@" and not before.isspace() and _DOMAIN.match(text, at + 1, at + 256):
            return True
        at = text.find("@", at + 1)
    return False


def scrub(values: dict[str, str], key: bytes) -> dict[str, str]:
    """Free-form attributes: hash any value that looks like a phone number or e-mail address."""
    return {name: pseudonymise(v, key) if looks_personal(v) else v for name, v in values.items()}
