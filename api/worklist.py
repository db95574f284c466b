"""The abandoned-contacts worklist as a pure function of contact rows: who hung up, and whether
the same customer was reached again (docs/metrics.md, "Abandoned-contacts worklist").

Pure (no I/O) so it is tested with tables; the rows come from the SQL `contacts` table, itself
a function of the fact sheets, so the answer cannot depend on event order or duplicates.
"""

from __future__ import annotations

import statistics
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

ABANDON_OUTCOMES = ("abandoned", "timed_out")


@dataclass(frozen=True, slots=True)
class Abandon:
    """One abandoned or timed-out contact; `at_ms` is its abandon (or timeout) time."""

    contact: str
    channel: str
    queue: str
    customer: str  # keyed hash, "" when unknown
    at_ms: int
    wait_ms: int | None
    stage: str | None
    outcome: str


@dataclass(frozen=True, slots=True)
class Later:
    """A contact of a customer that may reach them again after an abandon."""

    contact: str
    channel: str
    customer: str
    start_ms: int


@dataclass(frozen=True, slots=True)
class Reach:
    contact: str
    channel: str
    at_ms: int
    delay_ms: int


@dataclass(frozen=True, slots=True)
class Item:
    abandon: Abandon
    reached: Reach | None


def first_reach(
    abandon: Abandon, contacts: Sequence[Later], starts: Sequence[int], window_ms: int
) -> Reach | None:
    """The first contact (by start, then id) starting strictly after the abandon, at most
    `window_ms` later. `contacts` is the customer's, sorted by (start_ms, contact); `starts`
    their start times."""
    if not abandon.customer:
        return None
    i = bisect_right(starts, abandon.at_ms)
    if i == len(contacts) or starts[i] - abandon.at_ms > window_ms:
        return None
    hit = contacts[i]
    return Reach(hit.contact, hit.channel, hit.start_ms, hit.start_ms - abandon.at_ms)


def match(abandons: Iterable[Abandon], later: Iterable[Later], window_ms: int) -> list[Item]:
    """Each abandon with its first later contact; ordered by abandon time, then contact id.

    Duplicated rows (same contact id) count once, so the result is the same set however the
    rows were gathered."""
    by_customer: dict[str, dict[str, Later]] = defaultdict(dict)
    for row in later:
        by_customer[row.customer][row.contact] = row
    contacts = {
        c: sorted(rows.values(), key=lambda r: (r.start_ms, r.contact))
        for c, rows in by_customer.items()
    }
    starts = {c: [r.start_ms for r in rows] for c, rows in contacts.items()}
    unique = {a.contact: a for a in abandons}
    ordered = sorted(unique.values(), key=lambda a: (a.at_ms, a.contact))
    return [
        Item(a, first_reach(a, contacts.get(a.customer, []), starts.get(a.customer, []), window_ms))
        for a in ordered
    ]


def figures(items: Sequence[Item]) -> dict[str, Any]:
    """abandoned, reached, not_reached (customer known, not reached), median seconds to reach."""
    delays = [i.reached.delay_ms / 1000 for i in items if i.reached is not None]
    known = sum(1 for i in items if i.abandon.customer)
    return {
        "abandoned": len(items),
        "reached": len(delays),
        "not_reached": known - len(delays),
        "median_seconds_to_reach": statistics.median(delays) if delays else None,
    }


def by_queue(items: Sequence[Item]) -> list[dict[str, Any]]:
    """The figures per (channel, queue), in name order."""
    groups: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for item in items:
        groups[(item.abandon.channel, item.abandon.queue)].append(item)
    return [
        {"channel": ch, "queue": q, **figures(group)} for (ch, q), group in sorted(groups.items())
    ]


def item_document(item: Item) -> dict[str, Any]:
    a, r = item.abandon, item.reached
    return {
        "contact": a.contact,
        "channel": a.channel,
        "queue": a.queue,
        "customer": a.customer or None,
        "customer_known": bool(a.customer),
        "outcome": a.outcome,
        "abandoned_ms": a.at_ms,
        "wait_ms": a.wait_ms,
        "abandon_stage": a.stage,
        "reached": None
        if r is None
        else {
            "contact": r.contact,
            "channel": r.channel,
            "at_ms": r.at_ms,
            "delay_seconds": r.delay_ms / 1000,
        },
    }
