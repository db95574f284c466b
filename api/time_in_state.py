"""Time in state of hundreds of agents per document, without walking every agent's whole log
each time: only the last change's interval grows with the clock.

`kpis.time_in_state` sums each change's overlap with the window, in order; every change but
the last ends at the next one, so their overlaps do not depend on the window's end (the changes
given all come before it). Those partial sums are kept per (log, start), the log named by its
agent, and the last change's overlap added after them: the same additions in the same order, so
the same floats. When the log read next starts with the one kept (in order, without repeats)
and only goes on after it, as a busy agent's log does push after push, the sums go on from the
kept ones (the same additions again) instead of walking the whole window's changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from services import kpis

MAX_KEPT = 20_000  # (agent log, window start) pairs kept: a few windows of thousands of agents

Closed = tuple[dict[str, float], kpis.StateChange | None]  # sums of all but the last, the last
Changes = tuple[kpis.StateChange, ...]
# (log name, start) -> (the changes as given, whether already in order without repeats, sums)
_named: dict[tuple[str, int], tuple[Changes, bool, Closed]] = {}


def time_in_state(
    changes: Sequence[kpis.StateChange], start_ms: int, end_ms: int, log: str | None = None
) -> dict[str, float]:
    """`kpis.time_in_state(changes, start_ms, end_ms)`, for changes all before `end_ms`;
    `log` names the log (its agent) so that the next read of it goes on from this one."""
    if any(at >= end_ms for at, _, _ in changes):
        return kpis.time_in_state(changes, start_ms, end_ms)
    sums, last = _closed_named(tuple(changes), start_ms, log) if log else _closed(changes, start_ms)
    out = dict(sums)
    if last is not None:
        overlap = end_ms - max(last[0], start_ms)
        if overlap > 0:
            out[last[2]] = out.get(last[2], 0.0) + overlap / 1000
    return out


def _closed_named(given: Changes, start_ms: int, log: str) -> Closed:
    key = (log, start_ms)
    held = _named.get(key)
    if held is not None:
        before, ordered, closed = held
        if given == before:
            return closed
        n = len(before)
        if ordered and 0 < n < len(given) and given[:n] == before and _increasing(given[n - 1 :]):
            closed = _go_on(closed, given[n:], start_ms)
            _named[key] = (given, True, closed)
            return closed
    if len(_named) >= MAX_KEPT:
        _named.clear()
    ordered_given = sorted(set(given))
    closed = _closed(ordered_given, start_ms)
    _named[key] = (given, tuple(ordered_given) == given, closed)
    return closed


def _increasing(changes: Changes) -> bool:
    return all(a < b for a, b in itertools.pairwise(changes))


def _go_on(closed: Closed, more: Changes, start_ms: int) -> Closed:
    """The sums of `_closed(kept + more)` from the kept log's: its last change now ends at the
    first of `more`, each of those at the next, in the order `_closed` adds them."""
    sums, last = closed
    sums = dict(sums)
    for change in more:
        if last is not None:
            overlap = change[0] - max(last[0], start_ms)
            if overlap > 0:
                sums[last[2]] = sums.get(last[2], 0.0) + overlap / 1000
        last = change
    return sums, last


def _closed(changes: Sequence[kpis.StateChange], start_ms: int) -> Closed:
    ordered = sorted(set(changes))
    if not ordered:
        return {}, None
    *before, last = ordered
    sums: dict[str, float] = {}
    for i, (at, _, state) in enumerate(before):
        overlap = ordered[i + 1][0] - max(at, start_ms)
        if overlap > 0:
            sums[state] = sums.get(state, 0.0) + overlap / 1000
    return sums, last
