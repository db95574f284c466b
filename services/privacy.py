"""Personal data (phone numbers, e-mail addresses, names) is replaced by a keyed hash at ingest.

The hash is stable for one key, so "the same customer called again" still works for FCR, but the
value cannot be reversed or guessed from a phone-number list without the key. Numbers and
addresses are found inside any text (`call me on +44 20 7946 0000 ext. 12`, `tel:+44…`,
`mailto:…`) by a scanner that reads each character a bounded number of times: no regex
backtracking, so a hostile 1 MB value costs linear time.
"""

from __future__ import annotations

import hashlib
import json
import re

HASH_PREFIX = "h:"
HASH_LENGTH = len(HASH_PREFIX) + 32
_PHONE_JUNK = re.compile(r"[\s().\-]")
SCHEMES = ("tel:", "mailto:", "sms:", "sip:", "sips:", "callto:", "whatsapp:")

# Attribute (and raw payload) keys whose value is a person's name or address, whatever it looks
# like; compared lower-cased without `_`, `-`, `.` or spaces (`customerName` = `customer_name`).
PERSONAL_FIELDS = frozenset(
    [
        "customername",
        "callername",
        "requestername",
        "contactname",
        "fromname",
        "toname",
        "sendername",
        "username",
        "firstname",
        "lastname",
        "fullname",
        "givenname",
        "familyname",
        "surname",
        "displayname",
        "nickname",
        "name",
        "email",
        "emailaddress",
        "mail",
        "phone",
        "phonenumber",
        "mobile",
        "mobilenumber",
        "telephone",
        "tel",
        "msisdn",
        "fax",
        "address",
        "homeaddress",
        "streetaddress",
        "street",
        "postcode",
        "postalcode",
        "zip",
        "zipcode",
        "city",
        "dateofbirth",
        "dob",
        "birthdate",
        "ssn",
        "nationalid",
        "passport",
        "iban",
        "cardnumber",
        "ip",
        "ipaddress",
    ]
)


def field_key(name: str) -> str:
    """A key as the personal-field lists spell it."""
    return "".join(ch for ch in name.lower() if ch not in "_-. ")


def is_personal_field(name: str) -> bool:
    return field_key(name) in PERSONAL_FIELDS


def _strip_scheme(text: str) -> str:
    if ":" not in text[:10]:  # every scheme ends in `:` within its first 9 characters
        return text
    lowered = text[:10].lower()
    for scheme in SCHEMES:
        if lowered.startswith(scheme):
            return text[len(scheme) :].strip()
    return text


def normalise_identity(value: str) -> str:
    """One customer, one hash: e-mails case-folded, phone numbers without punctuation or the
    `(0)` trunk prefix, URI schemes (`tel:`, `mailto:`) dropped."""
    text = _strip_scheme(value.strip())
    if "@" in text:
        return text.lower()
    if text.startswith("+"):
        text = text.replace("(0)", "")
    compact = _PHONE_JUNK.sub("", text)
    return compact if compact.lstrip("+").isdigit() else text


def pseudonymise(value: str, key: bytes) -> str:
    bare = _strip_scheme(value.strip())
    if bare.startswith(HASH_PREFIX):
        return bare
    return HASH_PREFIX + keyed_sha256(key, normalise_identity(value).encode())[:32]


_BLOCK = 64  # SHA-256's block size, in bytes
_PREPARED: dict[bytes, tuple[hashlib._Hash, hashlib._Hash]] = {}


def keyed_sha256(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 of `message` in hex, as `hmac.new(key, message, sha256).hexdigest()`.

    The keyed inner and outer states (RFC 2104) are computed once per key and copied per call:
    `hmac.new` derives them again every time, which cost more than the hashing of a short value.
    """
    prepared = _PREPARED.get(key)
    if prepared is None:
        prepared = _PREPARED[key] = _prepare(key)
    inner, outer = prepared[0].copy(), prepared[1].copy()
    inner.update(message)
    outer.update(inner.digest())
    return outer.hexdigest()


def _prepare(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    if len(_PREPARED) >= 16:  # a process holds one key, tests a few: never grows without bound
        _PREPARED.clear()
    block = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    return inner, outer


# --- the scanner: spans of e-mail addresses and phone numbers inside any text ---

_LOCAL_EXTRA = frozenset("._%+-'")
_PHONE_SEPARATORS = frozenset(" ().-/\u00a0\t")
_EXTENSIONS = ("extension", "ext.", "ext", "x", "#")
# Where a number may start (the rule of `_phone_start`, so the regex skips the rest at C speed):
# `+` after no letter or digit; a digit or `(` after none of those nor `-_./\+`.
_CANDIDATE = re.compile(r"(?<![^\W_])\+(?=[0-9])|(?<![\w\-./\\+])[(0-9]")
# An `@` followed by a first domain label, a dot and a letter.
_AT_DOTTED = re.compile(r"@(?=[^\W_][\w-]{0,62}\.[^\W\d_])")
MAX_LOCAL = 64
MAX_DOMAIN = 255


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def _email_spans(text: str) -> list[tuple[int, int]]:
    """Around each `@` followed by a dotted label: a local part of at most 64 characters, a
    domain of at most 255. The bounded regex only picks the candidates (C speed)."""
    spans: list[tuple[int, int]] = []
    for candidate in _AT_DOTTED.finditer(text):
        at = candidate.start()
        end = at + 1
        while end < len(text) and end - at <= MAX_DOMAIN and _domain_char(text[end]):
            end += 1
        while end > at + 1 and text[end - 1] in ".-":
            end -= 1
        start = at
        while start > 0 and at - start < MAX_LOCAL and _local_char(text[start - 1]):
            start -= 1
        while start < at and text[start] == ".":
            start += 1
        if start < at and _dotted_domain(text[at + 1 : end]):
            spans.append((start, end))
    return spans


def _local_char(ch: str) -> bool:
    return ch.isalnum() or ch in _LOCAL_EXTRA


def _domain_char(ch: str) -> bool:
    return ch.isalnum() or ch in ".-"


def _dotted_domain(domain: str) -> bool:
    head, dot, tld = domain.rpartition(".")
    return bool(head) and bool(dot) and len(tld) >= 2 and tld.isalpha()


def _phone_spans(text: str) -> list[tuple[int, int]]:
    """Runs of digits and phone punctuation, each character read once or twice."""
    spans: list[tuple[int, int]] = []
    i = 0
    while (candidate := _CANDIDATE.search(text, i)) is not None:
        i = candidate.start()  # the regex only skips text without digits, at C speed
        if not _phone_start(text, i):
            i += 1
            continue
        end, digits, formatted, stop = _phone_run(text, i)
        end = _extension(text, end)
        if _is_phone(text, i, end, digits, formatted):
            spans.append((i, end))
        i = max(stop, i + 1)
    return spans


def _phone_start(text: str, i: int) -> bool:
    ch = text[i]
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if not (_is_digit(ch) or (ch in "+(" and _is_digit(nxt))):
        return False
    before = text[i - 1] if i > 0 else " "
    return not before.isalnum() and (ch == "+" or before not in "-_./\\+")


def _phone_run(text: str, start: int) -> tuple[int, int, bool, int]:
    """(end of the last digit, digits, has formatting, where scanning stopped)."""
    j, digits, seps, end = start, 0, 0, start
    formatted = text[start] in "+("
    while j < len(text):
        ch = text[j]
        if _is_digit(ch):
            formatted = formatted or (seps > 0 and digits > 0)  # punctuation between digits
            digits, seps, end = digits + 1, 0, j + 1
        elif ch in _PHONE_SEPARATORS and seps < 3:
            seps += 1
        elif not (ch == "+" and j == start):
            break
        j += 1
    if end < len(text) and text[end] == ")":
        end += 1
    return end, digits, formatted, j


def _extension(text: str, end: int) -> int:
    """`ext. 12`, `x12`, `#12` right after a number belong to it."""
    j = end
    while j < len(text) and j - end < 2 and text[j] in " ,":
        j += 1
    lowered = text[j : j + 10].lower()
    for word in _EXTENSIONS:
        if lowered.startswith(word):
            k = j + len(word)
            while k < len(text) and text[k] in " .:":
                k += 1
            first = k
            while k < len(text) and k - first < 6 and _is_digit(text[k]):
                k += 1
            return k if k > first else end
    return end


_DATE_SHAPES = ((4, 2, 2), (2, 2, 4), (4, 1, 1), (1, 1, 4), (2, 2, 2), (4, 2), (4, 1, 2))
_UUID_SHAPE = (8, 4, 4, 4, 12)  # Connect's ContactId and most vendors' ids


def _is_phone(text: str, start: int, end: int, digits: int, formatted: bool) -> bool:
    after = text[end] if end < len(text) else " "
    if after.isalnum() or after == "@":
        return False
    if after == ":" and end + 1 < len(text) and _is_digit(text[end + 1]):
        return False  # a time of day (`2026-12-03 06:07`)
    if _looks_like_date(text[start:end]):
        return False
    # E.164 has at most 15 digits; 19 leaves room for a trunk prefix and an extension. Longer
    # runs are identifiers (a UUID whose groups happen to be all digits), not numbers.
    return 7 <= digits <= 19 if formatted else 9 <= digits <= 19


def _looks_like_date(value: str) -> bool:
    """Dates (`2010-04-01`) and decimals (`1366720340.303267`, Asterisk's unique ids)."""
    if value.startswith("+") or any(ch in value for ch in " ()"):
        return False
    groups = tuple(len(g) for g in re.split(r"[-/.]", value) if g)
    return (
        groups in _DATE_SHAPES
        or groups == _UUID_SHAPE
        or (len(groups) == 2 and value.count(".") == 1)
    )


MIN_PHONE_DIGITS = 7  # the fewest digits `_is_phone` takes (a formatted number)
_SEVEN_DIGITS = re.compile(r"(?:[^0-9]*[0-9]){7}")  # anchored by `match`: linear, no retries


def may_hold_personal(text: str) -> bool:
    """False when `text` can hold neither an address (no `@`) nor a number (fewer than 7 ASCII
    digits): most names and ids, decided without scanning them."""
    if "@" in text:
        return True
    if text.isascii():  # deleting bytes is the cheapest way to count them
        raw = text.encode()
        return len(raw) - len(raw.translate(None, b"0123456789")) >= MIN_PHONE_DIGITS
    return _SEVEN_DIGITS.match(text) is not None


def personal_spans(text: str) -> list[tuple[int, int]]:
    """Where phone numbers and e-mail addresses sit in `text`, sorted, overlaps merged."""
    if not may_hold_personal(text):
        return []
    return scanned_spans(text)


def scanned_spans(text: str) -> list[tuple[int, int]]:
    """`personal_spans` without the shortcut: every character scanned."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(_email_spans(text) + _phone_spans(text)):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def looks_personal(value: str) -> bool:
    """The whole value (an optional `tel:`/`mailto:` scheme aside) is a number or an address."""
    text = _strip_scheme(value.strip())
    return bool(text) and personal_spans(text) == [(0, len(text))]


def holds_personal(value: str) -> bool:
    """A phone number or an e-mail address somewhere in the value."""
    return bool(personal_spans(value))


def scrub_text(value: str, key: bytes, limit: int | None = None) -> str:
    """Free text with each number and address inside it replaced by its keyed hash."""
    spans = personal_spans(value)
    if not spans:
        return value
    parts: list[str] = []
    last = 0
    for start, end in spans:
        parts.extend((value[last:start], pseudonymise(value[start:end], key)))
        last = end
    parts.append(value[last:])
    text = "".join(parts)
    return text[:limit] if limit is not None else text


_HASH_TOKEN = re.compile(r"h:[0-9a-f]{32}")


def pseudonymise_id(value: str, key: bytes) -> str:
    """An identifier (contact, agent) that is or holds personal data becomes one keyed hash.

    Hashed over its scrubbed form, so an id whose number the raw topic already hashed (a
    replay) gets the same hash as the original did.
    """
    if HASH_PREFIX not in value and not may_hold_personal(value):
        return value  # what the steps below decide for it, without them
    bare = _strip_scheme(value.strip())
    if bare.startswith(HASH_PREFIX):
        return bare
    if looks_personal(value):
        return pseudonymise(value, key)
    scrubbed = scrub_text(value, key)
    if scrubbed != value or _HASH_TOKEN.search(value):
        return pseudonymise(scrubbed, key)
    return value


def scrub(values: dict[str, str], key: bytes, limit: int | None = None) -> dict[str, str]:
    """Free-form attributes: a personal field's value is hashed whole, numbers and addresses
    inside any other value (JSON inside a value too) are hashed where they are."""
    kept: dict[str, str] = {}
    for name, value in values.items():
        clean_name = scrub_text(name, key)
        if is_personal_field(name) and value.strip():
            kept[clean_name] = pseudonymise(value, key)
        else:
            kept[clean_name] = _scrub_value(value, key, limit)
    return kept


def _scrub_value(value: str, key: bytes, limit: int | None) -> str:
    embedded = _embedded_json(value)
    if embedded is not None:
        redacted = _scrub_json(embedded, key)
        if redacted != embedded:
            return json.dumps(redacted, separators=(",", ":"), ensure_ascii=False)[:limit]
        return value
    return scrub_text(value, key, limit)


def _embedded_json(value: str) -> object | None:
    if value[:1] not in "{[":
        return None
    try:
        parsed: object = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict | list) else None


def _scrub_json(value: object, key: bytes, depth: int = 0) -> object:
    """Attribute values holding JSON: the same rules, key by key (depth bounded)."""
    if depth > 32:
        return value
    if isinstance(value, dict):
        return {
            scrub_text(str(k), key): (
                pseudonymise(v, key)
                if isinstance(v, str) and v.strip() and is_personal_field(str(k))
                else _scrub_json(v, key, depth + 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub_json(v, key, depth + 1) for v in value]
    if isinstance(value, str):
        return scrub_text(value, key)
    return value
