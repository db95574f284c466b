"""The one contact-event contract every adapter maps onto and every consumer reads.

A flat JSON object: vendors differ, the aggregator sees only this. `id` makes delivery idempotent
(a repeated id is the same event), `time` is when it happened, never when it arrived.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)


class EventType(StrEnum):
    OFFERED = "contact.offered"
    IVR = "contact.ivr"
    QUEUED = "contact.queued"
    ANSWERED = "contact.answered"
    ABANDONED = "contact.abandoned"
    TIMED_OUT = "contact.timed_out"
    COMPLETED = "contact.completed"
    RESOLVED = "contact.resolved"
    ESCALATED = "contact.escalated"
    TRANSFERRED = "contact.transferred"
    AGENT_STATE = "agent.state"
    SURVEY = "survey.response"


class Channel(StrEnum):
    VOICE = "voice"
    CHAT = "chat"
    EMAIL = "email"
    SMS = "sms"
    SOCIAL = "social"


# The lengths the ingest keeps to when it replaces personal data by (longer) keyed hashes.
NAME_MAX, IDENT_MAX, TEXT_MAX = 128, 256, 1024
# Names become parts of Redis keys and Prometheus labels: no separators, no control characters.
Name = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=NAME_MAX, strip_whitespace=True, pattern=r"^[^|\x00-\x1f]+$"
    ),
]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=IDENT_MAX)]
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX)]


class ContactEvent(BaseModel):
    """One thing that happened to a contact or an agent."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    id: Ident
    type: EventType
    time: AwareDatetime
    contact: Ident | None = Field(
        default=None,
        description="Contact id; one that is or holds a phone number or an e-mail address is "
        "replaced by a keyed hash at ingest (it keys Kafka and Redis).",
    )
    channel: Channel | None = None
    queue: Name | None = None
    agent: Name | None = None
    customer: Ident | None = Field(
        default=None,
        description="Phone, e-mail or platform id; replaced by a keyed hash at ingest.",
    )
    stage: Name | None = Field(default=None, description="IVR or wait stage, e.g. welcome, menu.")
    issue: Name | None = None
    first_contact: bool | None = None
    reason: Text | None = Field(
        default=None, description="Free text; numbers and addresses in it are hashed at ingest."
    )
    state: Name | None = Field(default=None, description="Agent state, on agent.state.")
    csat: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    attributes: dict[Name, Text] = Field(
        default_factory=dict,
        max_length=64,
        description="Personal fields (customer_name, email, phone, ...) are hashed whole at "
        "ingest, numbers and addresses inside any other value where they are.",
    )

    @model_validator(mode="after")
    def _required_by_type(self) -> ContactEvent:
        missing = _missing_fields(self)
        if missing:
            raise ValueError(f"{missing} is required for {self.type.value}")
        return self

    @property
    def is_contact_event(self) -> bool:
        return self.type in CONTACT_TYPES

    def partition_key(self) -> bytes:
        """Contact events keep one contact on one partition; agent events one agent."""
        key = self.contact if self.contact is not None else (self.agent or self.id)
        return key.encode()

    def to_wire(self) -> bytes:
        """`model_dump_json(exclude_none=True).encode()`: the same bytes, without the round trip
        through str (the serializer writes bytes)."""
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)

    def replaced(self, changes: dict[str, Any]) -> ContactEvent:
        """`model_copy(update=changes)`, the same object without its generic steps (and, like
        it, without validation): the ingest replaces personal values in every event it takes."""
        copied = object.__new__(ContactEvent)  # what `cls.__new__` is, without the lookup
        values = self.__dict__.copy()
        values.update(changes)
        fields_set = set(self.__pydantic_fields_set__)
        fields_set.update(changes)
        _set(copied, "__dict__", values)
        _set(copied, "__pydantic_extra__", None)  # extra="forbid": never any
        _set(copied, "__pydantic_fields_set__", fields_set)
        _set(copied, "__pydantic_private__", None)  # no private attributes
        return copied


_set = object.__setattr__  # a frozen model refuses its own __setattr__

# Contact events (and surveys) name a contact; a set, as the enum's `.value` is a slow property.
CONTACT_TYPES = frozenset(
    {t for t in EventType if t.value.startswith("contact.")} | {EventType.SURVEY}
)


def _missing_fields(event: ContactEvent | WireEvent) -> str | None:
    kind = event.type
    if event.contact is None and kind in CONTACT_TYPES:  # most have one: no enum hash then
        return "contact"
    if kind is _OFFERED:
        return "channel" if event.channel is None else None
    if kind is _AGENT_STATE:
        return "agent" if event.agent is None else "state" if event.state is None else None
    if kind is _SURVEY and event.csat is None and event.nps is None:
        return "csat"
    return None


# Module globals: `EventType.OFFERED` looks the member up on the enum class each time (about
# 60 ns; this runs for every event the aggregator decodes).
_OFFERED, _AGENT_STATE, _SURVEY = EventType.OFFERED, EventType.AGENT_STATE, EventType.SURVEY


EVENTS_ADAPTER: TypeAdapter[list[ContactEvent]] = TypeAdapter(list[ContactEvent])


class FieldError(BaseModel):
    """One refusal, naming the event's index in the batch, the field and the reason."""

    index: int
    field: str
    message: str


def describe_errors(exc: ValidationError, index: int = 0) -> list[FieldError]:
    """Turn pydantic's error list into `index / field / message` rows a client can act on."""
    rows = []
    for err in exc.errors(include_url=False):
        loc = [str(part) for part in err["loc"]]
        field = ".".join(loc) or _field_from_message(str(err["msg"]))
        rows.append(FieldError(index=index, field=field, message=str(err["msg"])))
    return rows


def _field_from_message(message: str) -> str:
    """Model-level checks name their field first (`contact is required ...`)."""
    head = message.removeprefix("Value error, ").split(" ", 1)[0]
    return head if head in ContactEvent.model_fields else "event"


def parse_event(raw: Any, index: int = 0) -> tuple[ContactEvent | None, list[FieldError]]:
    """Validate one decoded JSON value; never raises on bad input."""
    if not isinstance(raw, dict):
        return None, [FieldError(index=index, field="event", message="must be a JSON object")]
    try:
        return ContactEvent.model_validate(raw), []
    except ValidationError as exc:
        return None, describe_errors(exc, index)


def parse_valid(raw: list[Any]) -> list[ContactEvent] | None:
    """Every event of a batch in one pydantic-core call, or None when any has a problem (then
    `parse_event` per event names each problem by index)."""
    try:
        return EVENTS_ADAPTER.validate_python(raw)
    except ValidationError:
        return None


# `Name` without its whitespace stripping: a name with a space (or any character Python or
# pydantic's Rust side calls whitespace) at either end, a `|` or a control character goes to
# `ContactEvent`, which strips or refuses it. Checked whole (`fullmatch`): `$` would let a
# final newline through.
_NAME_PATTERN = re.compile(r"[^|\x00-\x1f\s](?:[^|\x00-\x1f]*[^|\x00-\x1f\s])?")
_FastName = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
_FastIdent = Annotated[str, msgspec.Meta(min_length=1, max_length=IDENT_MAX)]
_FastText = Annotated[str, msgspec.Meta(max_length=TEXT_MAX)]


class WireEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """`ContactEvent` as the aggregator reads it off the topic, decoded by msgspec (about a
    third of pydantic's time, measured in docs/capacity.md). Strict: with its names checked
    (`_names_ok`, or a batch `_plain` vouches for), it accepts a subset of what `ContactEvent`
    accepts, with equal values (tests/unit/services/test_wire_event.py); `decode_fast` sends
    the rest to `ContactEvent` for its verdict. Out of the cyclic collector's sight
    (`gc=False`): it holds text, numbers and a dict of text, never itself, and a poll holds
    thousands while the collector runs."""

    id: _FastIdent
    type: EventType
    time: Annotated[datetime, msgspec.Meta(tz=True)]
    contact: _FastIdent | None = None
    channel: Channel | None = None
    queue: _FastName | None = None
    agent: _FastName | None = None
    customer: _FastIdent | None = None
    stage: _FastName | None = None
    issue: _FastName | None = None
    first_contact: bool | None = None
    reason: _FastText | None = None
    state: _FastName | None = None
    csat: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    nps: Annotated[int, msgspec.Meta(ge=0, le=10)] | None = None
    attributes: Annotated[dict[_FastName, _FastText], msgspec.Meta(max_length=64)] = {}


Event = ContactEvent | WireEvent  # what the aggregator folds: equal fields, either decoder
_WIRE_DECODER = msgspec.json.Decoder(WireEvent)
# msgspec rounds a time's digits past the microsecond where pydantic truncates them: such a
# record (or one with that pattern anywhere) takes pydantic's path, and so does one escaping a
# printable ASCII character (`\u0037` is a 7 the pattern cannot see; ingest never writes one).
_SUB_MICROSECOND = re.compile(rb"\.[0-9]{7}|\\u00[23]")  # the definition; `_clean` decides it
# Its two halves apart: a pattern that starts with a literal is searched for that byte first
# (the alternation tried the pattern at every position: 0.8 us a record against 0.1), and the
# escape half needs a backslash, which a record ingest writes never holds.
_SEVEN_DIGITS = re.compile(rb"\.[0-9]{7}")
_ESCAPED_PRINTABLE = re.compile(rb"\\u00[23]")


def _clean(data: bytes) -> bool:
    """No match of `_SUB_MICROSECOND` in these bytes."""
    return _SEVEN_DIGITS.search(data) is None and (
        b"\\" not in data or _ESCAPED_PRINTABLE.search(data) is None
    )


def _plain(data: bytes) -> bool:
    """Whether every name in these records passes `_names_ok`, from a few scans of the bytes
    (about 0.05 us a record against 0.8 for the pattern on each name): all ASCII with no `|`
    and no escape (so no control character or other whitespace), and no string that starts or
    ends with a space (`" ` / ` "`, never between tokens in the compact JSON ingest writes).
    False says only that the names must be checked one by one."""
    return (
        data.isascii()
        and b"|" not in data
        and b"\\" not in data
        and (b" " not in data or (b'" ' not in data and b' "' not in data))
    )


def _names_ok(event: WireEvent) -> bool:
    """Every name of the event (queue, agent, stage, issue, state, attribute keys) is one
    `ContactEvent` keeps as it is."""
    match = _NAME_PATTERN.fullmatch
    for value in (event.queue, event.agent, event.stage, event.issue, event.state):
        if value is not None and match(value) is None:
            return False
    return all(match(key) is not None for key in event.attributes)


def decode_fast(value: bytes) -> Event:
    """`decode_wire`, through msgspec when the record is in the strict form ingest writes
    (every record it produces): the same event values, or the same ValueError."""
    if _clean(value):
        event = _strict(value, _plain(value))
        if event is not None:
            return event
    return decode_wire(value)


def decode_batch(values: Sequence[bytes]) -> tuple[list[Event], dict[int, ValueError]]:
    """`decode_fast` over a poll: the events in order, and each refused value's index with its
    ValueError. The scans run once over the joined batch rather than once per value: a newline
    is neither a space, a quote nor part of a sub-microsecond match, so the batch matches only
    where a value does (and a batch that is not `_plain` has each event's names checked)."""
    joined = b"\n".join(values)
    clean = _clean(joined)
    plain = _plain(joined)
    events: list[Event] = []
    refused: dict[int, ValueError] = {}
    for index, value in enumerate(values):
        event = _strict(value, plain) if clean else None
        if event is not None:
            events.append(event)
            continue
        try:  # pydantic decides: a record msgspec refused, or one of a batch that is not clean
            events.append(decode_wire(value) if clean else decode_fast(value))
        except ValueError as exc:
            refused[index] = exc
    return events, refused


def _strict(value: bytes, plain: bool) -> WireEvent | None:
    """The event when msgspec takes it whole (`WireEvent`), its names pass (`plain`: known to)
    and the contract's per-type checks pass, else None (pydantic decides). The caller has ruled
    out sub-microsecond times."""
    try:
        event = _WIRE_DECODER.decode(value)
    except msgspec.MsgspecError:
        return None
    if not plain and not _names_ok(event):
        return None
    return event if _missing_fields(event) is None else None


def decode_wire(value: bytes) -> ContactEvent:
    """Decode an event from Kafka; raises ValueError with the reason on anything unusable."""
    try:
        return ContactEvent.model_validate_json(value)
    except ValidationError as exc:
        first = describe_errors(exc)[0]
        raise ValueError(f"{first.field}: {first.message}") from exc


def json_schema() -> dict[str, Any]:
    schema = ContactEvent.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ccpulse contact event"
    return schema


def dumps_schema() -> str:
    return json.dumps(json_schema(), indent=2)
