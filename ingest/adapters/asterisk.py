"""Asterisk `queue_log` lines (`epoch|callid|queue|agent|EVENT|data1|data2|...`) -> contract events.

Every outcome line also re-states when the call was offered and queued (its time minus the wait it
reports), so a follower that starts in the middle of a call, or a backfill of one rotated file,
still counts the call whole; the aggregator keeps the earliest of those times. Units follow the
`ast_queue_log` format strings: waits, hold and talk times in seconds, RINGNOANSWER's ring time in
milliseconds. EXITWITHTIMEOUT and EXITEMPTY are timeouts, their own outcome, never abandons.
Ids are made of the line's call id, event and time, so re-reading a line repeats its ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services import agentstates
from services.contract import Channel, ContactEvent, EventType
from services.sources import SourceSettings

from .base import Mapped, PayloadError, ignored, make_event, parse_time, safe_name
from .redact import redact_line
from .vendor import Decoded, Delivery, Route, Vendor, verify_bearer

AGENT_STATES = {
    "ADDMEMBER": "available",
    "AGENTLOGIN": "available",
    "AGENTCALLBACKLOGIN": "available",
    "UNPAUSE": "available",
    "UNPAUSEALL": "available",
    "PAUSE": "paused",
    "PAUSEALL": "paused",
    "REMOVEMEMBER": "logged_out",
    "AGENTLOGOFF": "logged_out",
    "AGENTCALLBACKLOGOFF": "logged_out",
}
NONE = "NONE"


@dataclass(frozen=True)
class Line:
    """One parsed queue_log line; `data` are the fields after the event name."""

    number: int
    time: datetime
    epoch: str
    call: str
    queue: str | None
    agent: str | None
    event: str
    data: Sequence[str]

    def where(self, field: str = "") -> str:
        return f"line {self.number}{'.' + field if field else ''}"

    def seconds(self, index: int, name: str, scale: float = 1.0) -> float:
        """A numeric data field (`scale` 0.001 for milliseconds); empty counts as zero."""
        raw = self.data[index].strip() if index < len(self.data) else ""
        if not raw:
            return 0.0
        try:
            value = float(raw)
        except ValueError as exc:
            raise PayloadError(self.where(name), f"must be a number, not {raw[:20]!r}") from exc
        if value < 0:
            raise PayloadError(self.where(name), "must not be negative")
        return value * scale

    def field(self, index: int) -> str | None:
        value = self.data[index].strip() if index < len(self.data) else ""
        return value or None


def parse_line(text: str, number: int = 1) -> Line:
    fields = text.rstrip("\r\n").split("|")
    if len(fields) < 5 or not fields[4].strip():
        raise PayloadError(f"line {number}", "needs epoch|callid|queue|agent|event")
    epoch = fields[0].strip()
    return Line(
        number=number,
        time=parse_time(epoch, f"line {number}.time"),
        epoch=epoch,
        call=fields[1].strip(),
        queue=_named(fields[2]),
        agent=_named(fields[3]),
        event=fields[4].strip().upper(),
        data=fields[5:],
    )


def _named(value: str) -> str | None:
    text = value.strip()
    return None if text in ("", NONE) else safe_name(text)


def map_lines(lines: Iterable[str], options: SourceSettings | None = None) -> Mapped:
    """Blank lines are skipped; a line that is not queue_log format names its number."""
    names = (options or SourceSettings()).agent_states.get("asterisk")
    result = Mapped()
    for number, text in enumerate(lines, start=1):
        if text.strip():
            result.add(map_line(parse_line(text, number), names))
    return result


def map_line(line: Line, names: Mapping[str, str] | None = None) -> Mapped:
    if line.event in AGENT_STATES:
        return _agent_state(line, names)
    handler = HANDLERS.get(line.event)
    if handler is None:
        return ignored()
    if line.call in ("", NONE):
        raise PayloadError(line.where("callid"), f"{line.event} needs the caller's unique id")
    events = handler(_Call(line))
    return Mapped(events) if events else ignored()


class _Call:
    def __init__(self, line: Line) -> None:
        self.line = line

    def event(self, kind: EventType, at: datetime | None = None, **extra: Any) -> ContactEvent:
        line = self.line
        suffix = kind.value.split(".")[-1]
        event_id = f"asterisk:{line.call}:{line.event}:{line.epoch}:{suffix}"
        fields = {"contact": f"asterisk:{line.call}", "channel": Channel.VOICE, "queue": line.queue}
        return make_event(kind, event_id, at or line.time, **fields, **extra)

    def arrival(self, waited_s: float, customer: str | None = None) -> list[ContactEvent]:
        """Offered and queued `waited_s` before this line."""
        entered = self.line.time - timedelta(seconds=waited_s)
        return [
            self.event(EventType.OFFERED, entered, customer=customer),
            self.event(EventType.QUEUED, entered),
        ]

    def answer(self, at: datetime | None = None) -> ContactEvent:
        return self.event(EventType.ANSWERED, at, agent=self.line.agent)


def _enterqueue(c: _Call) -> list[ContactEvent]:  # ENTERQUEUE(url|callerid|position)
    caller = c.line.field(1)
    return c.arrival(0, caller if caller and caller.lower() != "unknown" else None)


def _connect(c: _Call) -> list[ContactEvent]:  # CONNECT(holdtime|bridgeduniqueid|ringtime)
    return [*c.arrival(c.line.seconds(0, "holdtime")), c.answer()]


def _abandon(c: _Call) -> list[ContactEvent]:  # ABANDON(position|origposition|waittime)
    waited = c.line.seconds(2, "waittime")
    return [*c.arrival(waited), c.event(EventType.ABANDONED, stage="queue")]


def _exit_key(c: _Call) -> list[ContactEvent]:  # EXITWITHKEY(key|position|origposition|waittime)
    waited = c.line.seconds(3, "waittime")
    return [*c.arrival(waited), c.event(EventType.ABANDONED, stage="exitkey")]


def _timeout(c: _Call) -> list[ContactEvent]:  # EXITWITHTIMEOUT / EXITEMPTY(pos|origpos|waittime)
    waited = c.line.seconds(2, "waittime")
    return [*c.arrival(waited), c.event(EventType.TIMED_OUT)]


def _complete(c: _Call) -> list[ContactEvent]:  # COMPLETE*(holdtime|calltime|origposition)
    talked = c.line.seconds(1, "calltime")
    answered = c.line.time - timedelta(seconds=talked)
    held = c.line.seconds(0, "holdtime")
    entered = answered - timedelta(seconds=held)
    return [
        c.event(EventType.OFFERED, entered),
        c.event(EventType.QUEUED, entered),
        c.answer(answered),
        c.event(EventType.COMPLETED),
    ]


def _transfer(c: _Call) -> list[ContactEvent]:  # TRANSFER(ext|context|holdtime|calltime)
    return [c.event(EventType.TRANSFERRED, agent=c.line.agent), c.event(EventType.COMPLETED)]


def _ring_no_answer(c: _Call) -> list[ContactEvent]:  # RINGNOANSWER(ringtime in ms)
    """The member rang out: no contract fact, but the field is checked (milliseconds)."""
    c.line.seconds(0, "ringtime", scale=0.001)
    return []


def _ivr(c: _Call) -> list[ContactEvent]:  # dialplan QueueLog(NONE,${UNIQUEID},NONE,IVR,stage)
    stage = safe_name(c.line.field(0)) or "ivr"
    return [c.event(EventType.OFFERED), c.event(EventType.IVR, stage=stage)]


def _ivr_abandon(
    c: _Call,
) -> list[ContactEvent]:  # QueueLog(NONE,${UNIQUEID},NONE,IVRABANDON,stage)
    stage = safe_name(c.line.field(0)) or "ivr"
    return [c.event(EventType.OFFERED), c.event(EventType.ABANDONED, stage=stage)]


HANDLERS: dict[str, Callable[[_Call], list[ContactEvent]]] = {
    "ENTERQUEUE": _enterqueue,
    "CONNECT": _connect,
    "ABANDON": _abandon,
    "EXITWITHKEY": _exit_key,
    "EXITWITHTIMEOUT": _timeout,
    "EXITEMPTY": _timeout,
    "COMPLETEAGENT": _complete,
    "COMPLETECALLER": _complete,
    "TRANSFER": _transfer,
    "BLINDTRANSFER": _transfer,
    "ATTENDEDTRANSFER": _transfer,
    "RINGNOANSWER": _ring_no_answer,
    "IVR": _ivr,
    "IVRABANDON": _ivr_abandon,
}


def _agent_state(line: Line, names: Mapping[str, str] | None) -> Mapped:
    """A pause keeps its reason (PAUSE's first data field) as the not-ready reason."""
    if line.agent is None:
        raise PayloadError(line.where("agent"), f"{line.event} needs the member's name")
    event_id = f"asterisk:{line.agent}:{line.event}:{line.queue or NONE}:{line.epoch}"
    state, reason = agentstates.normalise(AGENT_STATES[line.event], "asterisk", names)
    if state == agentstates.NOT_READY and line.event.startswith("PAUSE"):
        reason = safe_name(line.field(0)) or reason
    fields = {"agent": line.agent, "state": state, "reason": reason}
    return Mapped([make_event(EventType.AGENT_STATE, event_id, line.time, **fields)])


def decode(delivery: Delivery) -> Decoded:
    """The follower posts the lines it read, as they are in the file."""
    try:
        lines = [line for line in delivery.body.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise PayloadError("body", f"is not UTF-8 (byte {exc.start})") from exc
    if not lines:
        raise PayloadError("body", "holds no queue_log line")
    return Decoded(lines)


def _lines(payload: Any) -> list[str]:
    if not isinstance(payload, list) or not all(isinstance(line, str) for line in payload):
        raise PayloadError("body", "must be queue_log lines")
    return payload


def _map(
    payload: Any, _: datetime, options: SourceSettings, __: Mapping[str, str] | None
) -> Mapped:
    return map_lines(_lines(payload), options)


def _keep(payload: Any, key: bytes) -> list[str]:
    return [redact_line(line, key) for line in payload]


VENDOR = Vendor(
    source="asterisk",
    path="/webhooks/asterisk/queue-log",
    routes=(Route("POST", "asterisk_queue_log", "Asterisk queue_log lines (from the follower)"),),
    secret="asterisk_token",
    signature_header="Authorization",
    verify=verify_bearer,
    decode=decode,
    map=_map,
    keep=_keep,
)
