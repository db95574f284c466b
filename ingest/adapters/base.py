"""What every vendor adapter shares: the result type, the malformed-payload error, time parsing.

Adapters are pure (payload in, contract events out) so they can be tested on documented samples and
re-run by `ccpulse replay` on the raw topic; nothing here may import an I/O library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import ValidationError

from services.contract import ContactEvent, EventType

JsonObject = dict[str, Any]


class PayloadError(ValueError):
    """A malformed payload; `field` and the message name what is wrong (the route answers 400)."""

    status = 400
    reason = "malformed"  # the refusal's counter label

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class Mapped:
    """Contract events from one payload, and how many well-formed vendor events we do not use."""

    events: list[ContactEvent] = field(default_factory=list)
    ignored: int = 0

    def add(self, other: Mapped) -> None:
        self.events.extend(other.events)
        self.ignored += other.ignored


def ignored(count: int = 1) -> Mapped:
    return Mapped(ignored=count)


def make_event(kind: EventType, event_id: str, time: datetime, **fields: Any) -> ContactEvent:
    """Build one event, dropping empty values; a vendor value the contract refuses is a 400."""
    values = {k: v for k, v in fields.items() if v is not None and v != ""}
    try:
        return ContactEvent(id=event_id, type=kind, time=time, **values)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "event"
        raise PayloadError(where, f"{err['msg']} (mapping {kind.value})") from exc


_UNSAFE = re.compile(r"[|\x00-\x1f]")


def safe_name(value: Any) -> str | None:
    """Vendor names become contract `Name`s: no separators or control characters, 128 at most."""
    if value is None:
        return None
    text = _UNSAFE.sub("/", str(value)).strip()[:128].strip()
    return text or None


def parse_time(value: Any, where: str) -> datetime:
    """ISO 8601, RFC 2822 (Twilio), or epoch seconds / milliseconds; always timezone-aware."""
    if isinstance(value, bool) or value is None or value == "":
        raise PayloadError(where, "is missing")
    if isinstance(value, int | float) or _is_number(value):
        return _from_epoch(float(value), where)
    text = str(value).strip()
    parsed = _iso(text) or _rfc2822(text)
    if parsed is None:
        raise PayloadError(where, f"is not a time ({text[:40]!r})")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _is_number(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()) is not None


def _from_epoch(number: float, where: str) -> datetime:
    seconds = number / 1000 if number > 1e11 else number  # milliseconds after 5138 AD are unlikely
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError(where, "is out of range") from exc


def _iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace(" UTC", "+00:00"))
    except ValueError:
        return None


def _rfc2822(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def optional_time(value: Any, where: str) -> datetime | None:
    return None if value in (None, "") else parse_time(value, where)


def text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None or isinstance(value, dict | list):
        return None
    result = str(value).strip()
    return result or None


def require(payload: Mapping[str, Any], key: str, where: str | None = None) -> str:
    value = text(payload, key)
    if value is None:
        raise PayloadError(where or key, "is missing")
    return value


def form_of(payload: Any) -> dict[str, str]:
    """A form payload (decoded, or kept on the raw topic) as text keys and values."""
    return {str(k): str(v) for k, v in as_object(payload, "body").items()}


def as_object(value: Any, where: str) -> JsonObject:
    if not isinstance(value, dict):
        raise PayloadError(where, "must be a JSON object")
    return value


def obj(value: Any) -> JsonObject:
    """The value when it is a JSON object, else an empty one (for optional nested objects)."""
    return value if isinstance(value, dict) else {}


def dig(payload: Any, path: str) -> Any:
    """`a.b.c` into nested objects; None when any step is missing."""
    current = payload
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def lower_keys(value: Any) -> Any:
    """Keys compared without regard to case (AWS samples spell them both ways)."""
    if isinstance(value, dict):
        return {str(k).lower(): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value
