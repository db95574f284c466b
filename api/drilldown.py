"""The contacts behind a live figure: which rows of the `contacts` table a figure counts.

A figure counts a contact in the minute of one of its times (docs/metrics.md), so the contacts
behind it over a window are the rows whose that time lies in the window, with the figure's
condition on the outcome. Each predicate here restates one figure's definition over the row's
columns (docs/contacts.md); tests/e2e/test_drilldown.py checks every count against the figure.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, or_, select

from services import intervals

Figure = Literal[
    "offered",
    "queued",
    "answered",
    "abandoned",
    "abandoned_queue",
    "abandoned_ivr",
    "timed_out",
    "handled",
    "resolved",
]
FIGURES: tuple[str, ...] = Figure.__args__  # type: ignore[attr-defined]
Sort = Literal["time", "wait"]
MAX_LIMIT = 500

_t = intervals.contacts


def time_column(figure: str) -> Any:
    """The time that places a contact in the figure's minute."""
    return {
        "offered": _t.c.offered_ms,
        "queued": _t.c.queued_ms,
        "answered": _t.c.answered_ms,
        "abandoned": _t.c.abandoned_ms,
        "abandoned_queue": _t.c.abandoned_ms,
        "abandoned_ivr": _t.c.abandoned_ms,
        "timed_out": _t.c.timed_out_ms,
        "handled": _t.c.completed_ms,
        "resolved": _t.c.resolved_ms,
    }[figure]


def condition(figure: str) -> ColumnElement[bool] | None:
    """What beyond the time the figure asks of a contact (None: the time alone)."""
    in_queue = and_(_t.c.queued_ms.is_not(None), _t.c.queued_ms <= _t.c.abandoned_ms)
    return {
        "abandoned": _t.c.outcome == "abandoned",
        "abandoned_queue": and_(_t.c.outcome == "abandoned", in_queue),
        "abandoned_ivr": and_(_t.c.outcome == "abandoned", ~in_queue),
        "timed_out": _t.c.outcome == "timed_out",
        "handled": _t.c.handle_ms.is_not(None),
    }.get(figure)


@dataclass(frozen=True)
class DrillQuery:
    figure: str
    start_ms: int
    end_ms: int
    channel: str | None = None
    queue: str | None = None
    stage: str | None = None  # abandoned figures: only this stage (abandoned_by_stage)


def where(q: DrillQuery) -> list[ColumnElement[bool]]:
    """Every condition of the figure, window and filters: a contact with no channel counts
    nowhere, as the counters do."""
    at = time_column(q.figure)
    out: list[ColumnElement[bool]] = [_t.c.channel != "", at >= q.start_ms, at < q.end_ms]
    extra = condition(q.figure)
    if extra is not None:
        out.append(extra)
    if q.channel is not None:
        out.append(_t.c.channel == q.channel)
    if q.queue is not None:
        out.append(_t.c.queue == q.queue)
    if q.stage is not None:
        out.append(_t.c.abandon_stage == q.stage)
    return out


def page(q: DrillQuery, sort: str, after: tuple[int, str] | None, limit: int) -> Select[Any]:
    """One page, newest (or longest wait) first, then by contact: keyset pagination, so a page
    stays right while rows are added (no offset that shifts)."""
    key = time_column(q.figure) if sort == "time" else _t.c.wait_ms
    conditions = where(q)
    if sort == "wait":
        conditions.append(_t.c.wait_ms.is_not(None))
    if after is not None:
        value, contact = after
        conditions.append(or_(key < value, and_(key == value, _t.c.contact > contact)))
    return select(_t).where(*conditions).order_by(key.desc(), _t.c.contact).limit(limit)


def encode_cursor(value: int, contact: str) -> str:
    raw = json.dumps([value, contact], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The cursor a previous page gave; ValueError when it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, contact = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValueError("not a cursor this endpoint gave") from exc
    if not isinstance(value, int) or not isinstance(contact, str):
        raise ValueError("not a cursor this endpoint gave")
    return value, contact


def contact_item(row: Any, figure: str, sort: str) -> dict[str, Any]:
    """One contact as the list shows it: its timeline in order, waits in seconds."""
    m = row._mapping
    timeline = sorted(
        (
            (m[f"{name}_ms"], name)
            for name in (
                "offered",
                "queued",
                "answered",
                "abandoned",
                "timed_out",
                "completed",
                "resolved",
            )
            if m[f"{name}_ms"] is not None
        ),
    )
    return {
        "contact": m["contact"],
        "channel": m["channel"],
        "queue": m["queue"] or None,
        "agent": m["agent"] or None,
        "customer": m["customer"] or None,
        "outcome": m["outcome"],
        "at_ms": m[time_column(figure).name],
        "wait_seconds": None if m["wait_ms"] is None else m["wait_ms"] / 1000,
        "handle_seconds": None if m["handle_ms"] is None else m["handle_ms"] / 1000,
        "abandon_stage": m["abandon_stage"],
        "timeline": [
            {"event": name, "at_ms": at, **({"agent": m["agent"]} if name == "answered" else {})}
            for at, name in timeline
        ],
    }


def next_cursor(rows: Sequence[Any], figure: str, sort: str, limit: int) -> str | None:
    if len(rows) < limit:
        return None
    last = rows[-1]._mapping
    value = last[time_column(figure).name] if sort == "time" else last["wait_ms"]
    return encode_cursor(int(value), str(last["contact"]))
