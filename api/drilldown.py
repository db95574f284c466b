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

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select

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
    "sl_missed",
    "fcr_measured_resolved",
    "fcr_repeated",
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
        "sl_missed": func.coalesce(_t.c.answered_ms, _t.c.abandoned_ms),
        "fcr_measured_resolved": _t.c.resolved_ms,
        "fcr_repeated": _t.c.resolved_ms,
    }[figure]


@dataclass(frozen=True)
class SlRule:
    """The service-level definition in force (settings): thresholds by channel and queue."""

    channel_s: dict[str, int]
    queue_s: dict[str, int]
    default_s: int = 20
    variant: str = "abandons_missed"
    exclude_short: bool = True
    short_s: int = 5
    fcr_window_ms: int = 7 * 86_400_000  # measured FCR's repeat window


def threshold_ms(rule: SlRule, per_queue: bool) -> ColumnElement[Any]:
    """Each row's threshold, as the figure's scope has it (`Settings.sl_threshold_for`): a
    queue's figures use its own, else its channel's; a channel's figures its channel's."""
    queues = sorted(rule.queue_s.items()) if per_queue else []
    by_queue = [(_t.c.queue == q, s * 1000) for q, s in queues]
    by_channel = [(_t.c.channel == c, s * 1000) for c, s in sorted(rule.channel_s.items())]
    whens = by_queue + by_channel
    return case(*whens, else_=rule.default_s * 1000) if whens else literal(rule.default_s * 1000)


def condition(
    figure: str, rule: SlRule | None = None, per_queue: bool = False
) -> ColumnElement[bool] | None:
    """What beyond the time the figure asks of a contact (None: the time alone)."""
    in_queue = and_(_t.c.queued_ms.is_not(None), _t.c.queued_ms <= _t.c.abandoned_ms)
    if figure == "sl_missed":
        return sl_missed(rule or SlRule({}, {}), in_queue, per_queue)
    if figure == "fcr_measured_resolved":
        return fcr_eligible()
    if figure == "fcr_repeated":
        return and_(fcr_eligible(), repeated(rule.fcr_window_ms if rule else 7 * 86_400_000))
    return {
        "abandoned": _t.c.outcome == "abandoned",
        "abandoned_queue": and_(_t.c.outcome == "abandoned", in_queue),
        "abandoned_ivr": and_(_t.c.outcome == "abandoned", ~in_queue),
        "timed_out": _t.c.outcome == "timed_out",
        "handled": _t.c.handle_ms.is_not(None),
    }.get(figure)


def fcr_eligible() -> ColumnElement[bool]:
    """Measured FCR's resolved contacts: customer and issue type known (docs/metrics.md)."""
    return and_(_t.c.customer != "", _t.c.issue.is_not(None))


def repeated(window_ms: int) -> ColumnElement[bool]:
    """Another contact of the same customer about the same issue (with a channel) was offered
    after the resolution, within the FCR window: the resolution was not first-contact."""
    other = _t.alias("other")
    return (
        select(other.c.contact)
        .where(
            other.c.customer == _t.c.customer,
            other.c.issue == _t.c.issue,
            other.c.contact != _t.c.contact,
            other.c.channel != "",
            other.c.offered_ms > _t.c.resolved_ms,
            other.c.offered_ms <= _t.c.resolved_ms + window_ms,
        )
        .exists()
    )


def sl_missed(rule: SlRule, in_queue: ColumnElement[bool], per_queue: bool) -> ColumnElement[bool]:
    """The service level's denominator less those met (docs/metrics.md#waits-and-service-level):
    answers with a known wait over the threshold, and, unless abandons are ignored, queue
    abandons (less short ones when excluded; within the threshold count as met in the
    `abandons_met_within` variant)."""
    limit = threshold_ms(rule, per_queue)
    late = and_(_t.c.outcome == "answered", _t.c.wait_ms.is_not(None), _t.c.wait_ms > limit)
    if rule.variant == "abandons_ignored":
        return late
    abandon = and_(_t.c.outcome == "abandoned", in_queue)
    if rule.variant == "abandons_met_within":
        abandon = and_(abandon, _t.c.wait_ms > limit)
    elif rule.exclude_short:
        abandon = and_(abandon, _t.c.wait_ms > rule.short_s * 1000)
    return or_(late, abandon)


@dataclass(frozen=True)
class DrillQuery:
    figure: str
    start_ms: int
    end_ms: int
    channel: str | None = None
    queue: str | None = None
    stage: str | None = None  # abandoned figures: only this stage (abandoned_by_stage)
    sl: SlRule | None = None


def where(q: DrillQuery) -> list[ColumnElement[bool]]:
    """Every condition of the figure, window and filters: a contact with no channel counts
    nowhere, as the counters do."""
    at = time_column(q.figure)
    out: list[ColumnElement[bool]] = [_t.c.channel != "", at >= q.start_ms, at < q.end_ms]
    extra = condition(q.figure, q.sl, per_queue=q.queue is not None)
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
    at = time_column(q.figure)
    key = at if sort == "time" else _t.c.wait_ms
    conditions = where(q)
    if sort == "wait":
        conditions.append(_t.c.wait_ms.is_not(None))
    if after is not None:
        value, contact = after
        conditions.append(or_(key < value, and_(key == value, _t.c.contact > contact)))
    return (
        select(_t, at.label("at_ms"))
        .where(*conditions)
        .order_by(key.desc(), _t.c.contact)
        .limit(limit)
    )


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


def contact_item(row: Any) -> dict[str, Any]:
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
    stages = json.loads(m["stages"]) if m["stages"] else {}
    entries = [
        *((at, 0, name, {}) for at, name in timeline),
        *((at, 1, "stage", {"stage": stage}) for stage, at in stages.items()),
    ]
    return {
        "contact": m["contact"],
        "channel": m["channel"],
        "queue": m["queue"] or None,
        "agent": m["agent"] or None,
        "customer": m["customer"] or None,
        "outcome": m["outcome"],
        "at_ms": m["at_ms"],
        "wait_seconds": None if m["wait_ms"] is None else m["wait_ms"] / 1000,
        "handle_seconds": None if m["handle_ms"] is None else m["handle_ms"] / 1000,
        "abandon_stage": m["abandon_stage"],
        "csat": m["csat"],
        "nps": m["nps"],
        "timeline": [
            {
                "event": name,
                "at_ms": at,
                **extra,
                **({"agent": m["agent"] or None} if name == "answered" else {}),
            }
            for at, _, name, extra in sorted(entries, key=lambda e: (e[0], e[1]))
        ],
    }


def next_cursor(rows: Sequence[Any], figure: str, sort: str, limit: int) -> str | None:
    if len(rows) < limit:
        return None
    last = rows[-1]._mapping
    value = last["at_ms"] if sort == "time" else last["wait_ms"]
    return encode_cursor(int(value), str(last["contact"]))
