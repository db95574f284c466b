"""Monotonic totals of the contact counts (offered, answered, abandoned) per channel and queue.

The day's counters go down when a late event corrects a contact (an answer wins over an abandon
already counted) and restart at midnight, which `rate()` reads as resets. The totals instead
count each contact's change as it is applied: an increase adds to `name`, a decrease adds to
`name` + CORRECTED, and neither ever goes down, so `increase(total) - increase(corrected)` is the
net change over any window (docs/metrics.md, "Counters for rate()").
"""

from __future__ import annotations

from collections.abc import Mapping

from services import kpis as k

from .contributions import is_abandoned, scopes_of
from .facts import ContactFacts

COUNTS = (k.OFFERED, k.ANSWERED, k.ABANDONED)
CORRECTED = "_corrected"  # suffix of the counter of decreases
Steps = dict[tuple[str, str], int]  # (scope, counter name) -> count, always > 0


def counts(f: ContactFacts | None) -> dict[tuple[str, str], int]:
    """(scope, name) -> 1 for one contact, as contributions counts it: offered once its offer
    is known, answered (timed or not) once answered, abandoned per `is_abandoned`."""
    return _cells(_counted(f))


Counted = tuple[tuple[str, ...], tuple[str, ...]]  # the scopes and names `counts` crosses


def _counted(f: ContactFacts | None) -> Counted:
    """What `counts` crosses: two tuples compare cheaper than its dicts."""
    scopes = scopes_of(f) if f is not None else ()
    if f is None or not scopes:
        return (), ()
    offered = f.offered_ms is not None
    if f.answered_ms is not None:
        return scopes, _ANSWERED[offered]
    if is_abandoned(f):
        return scopes, _ABANDONED[offered]
    return scopes, _OFFERED[offered]


def _cells(counted: Counted) -> dict[tuple[str, str], int]:
    scopes, names = counted
    return {(scope, name): 1 for scope in scopes for name in names}


# Names counted, by whether the offer is known.
_OFFERED = {True: (k.OFFERED,), False: ()}
_ANSWERED = {True: (k.OFFERED, k.ANSWERED), False: (k.ANSWERED,)}
_ABANDONED = {True: (k.OFFERED, k.ABANDONED), False: (k.ABANDONED,)}


def add_steps(into: Steps, old: ContactFacts | None, new: ContactFacts) -> None:
    """Add one contact's change (old sheet to new) to `into`: +n under the name, -n under the
    name with CORRECTED (a contact that moved queue is a decrease in one, an increase in the
    other)."""
    was, now = _counted(old), _counted(new)
    if was == now:  # most events change no count (queued, completed, a duplicate...)
        return
    if not was[0]:  # a new contact (or one without a channel until now): +1 for each cell
        scopes, names = now
        for scope in scopes:
            for name in names:
                cell = (scope, name)
                into[cell] = into.get(cell, 0) + 1
        return
    before, after = _cells(was), _cells(now)
    for cell in before.keys() | after.keys():
        change = after.get(cell, 0) - before.get(cell, 0)
        if change:
            scope, name = cell
            target = (scope, name) if change > 0 else (scope, name + CORRECTED)
            into[target] = into.get(target, 0) + abs(change)


def net(totals: Mapping[str, int], name: str) -> int:
    """The net count of one scope's totals: increases less corrections."""
    return totals.get(name, 0) - totals.get(name + CORRECTED, 0)
