"""Time in state of hundreds of agents per document, without walking every agent's whole log
each time: only the last change's interval grows with the clock.

`kpis.time_in_state` sums each change's overlap with the window, in order; every change but
the last ends at the next one, so their overlaps do not depend on the window's end (the changes
given all come before it). Those partial sums are kept per (changes, start) and the last
change's overlap added after them: the same additions in the same order, so the same floats.
"""

from __future__ import annotations

from collections.abc import Sequence

from services import kpis

MAX_KEPT = 20_000  # (agent log, window start) pairs kept: a few windows of thousands of agents

Closed = tuple[dict[str, float], kpis.StateChange | None]  # sums of all but the last, the last
_kept: dict[tuple[tuple[kpis.StateChange, ...], int], Closed] = {}


def time_in_state(
    changes: Sequence[kpis.StateChange], start_ms: int, end_ms: int
) -> dict[str, float]:
    """`kpis.time_in_state(changes, start_ms, end_ms)`, for changes all before `end_ms`."""
    if any(at >= end_ms for at, _, _ in changes):
        return kpis.time_in_state(changes, start_ms, end_ms)
    key = (tuple(changes), start_ms)
    closed = _kept.get(key)
    if closed is None:
        if len(_kept) >= MAX_KEPT:
            _kept.clear()
        closed = _kept[key] = _closed(changes, start_ms)
    sums, last = closed
    out = dict(sums)
    if last is not None:
        overlap = end_ms - max(last[0], start_ms)
        if overlap > 0:
            out[last[2]] = out.get(last[2], 0.0) + overlap / 1000
    return out


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
