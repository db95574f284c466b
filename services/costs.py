"""Cost per handled contact and contacts per logged-in hour (docs/metrics.md#cost).

An agent's logged-in time is shared among channels and queues by the agent's handle time on
each over the same local day (activity-based costing), priced at that queue's hourly cost;
time on a day without any handled contact stays unallocated (idle cost, counted in the
centre's total only). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

HOUR_MS = 3_600_000
UNALLOCATED = ("", "")  # (channel, queue) of logged-in time on days with nothing handled

Group = tuple[str, str]  # (channel, queue); queue "" when the contact had none
Entry = tuple[int, str, str, str]  # (interval start, agent, channel, queue)
Allocation = dict[Entry, float]  # -> logged-in ms


@dataclass(frozen=True)
class Rates:
    """Loaded hourly cost of an agent: the queue's if set, else the channel's, else default."""

    default: float | None = None
    channel: Mapping[str, float] = field(default_factory=dict)
    queue: Mapping[str, float] = field(default_factory=dict)

    def configured(self) -> bool:
        return self.default is not None or bool(self.channel) or bool(self.queue)

    def per_hour(self, channel: str, queue: str) -> float | None:
        if queue and queue in self.queue:
            return self.queue[queue]
        if channel in self.channel:
            return self.channel[channel]
        return self.default


def allocate(
    logged_in: Mapping[tuple[int, str], int],
    handle: Mapping[tuple[int, str], Mapping[Group, int]],
    day_of: Callable[[int], int],
) -> Allocation:
    """Each (interval, agent)'s logged-in ms shared by the agent's handle-time mix that day.

    `logged_in` and `handle` are keyed by (interval start, agent); `day_of` maps an interval
    start to its local day. Handle time of intervals outside `logged_in`'s days still counts in
    the mix of its day, so the caller reads whole days."""
    mix: dict[tuple[int, str], dict[Group, int]] = {}
    for (start, agent), groups in handle.items():
        day = mix.setdefault((day_of(start), agent), {})
        for group, ms in groups.items():
            if ms > 0:
                day[group] = day.get(group, 0) + ms
    out: Allocation = {}
    for (start, agent), ms in logged_in.items():
        if ms <= 0:
            continue
        shares = mix.get((day_of(start), agent))
        total = sum(shares.values()) if shares else 0
        if not shares or total <= 0:
            out[(start, agent, *UNALLOCATED)] = float(ms)
            continue
        for (channel, queue), part in sorted(shares.items()):
            out[(start, agent, channel, queue)] = ms * part / total
    return out


@dataclass
class Labour:
    """Logged-in ms and their cost over some intervals and groups. The cost is None when no
    hourly cost is set, or when some of the time has none (a partial sum would mislead)."""

    ms: float = 0.0
    cost: float | None = None
    unpriced: bool = False

    def add(self, ms: float, per_hour: float | None) -> None:
        self.ms += ms
        if per_hour is None:
            self.cost = None
            self.unpriced = True
        elif not self.unpriced:
            self.cost = (self.cost or 0.0) + ms / HOUR_MS * per_hour


def labour(allocation: Allocation, entries: Iterable[Entry], rates: Rates) -> Labour:
    """The labour of the given entries of an allocation (cost 0 with none, once priced)."""
    out = Labour(cost=0.0 if rates.configured() else None)
    for entry in entries:
        ms = allocation.get(entry)
        if ms:
            out.add(ms, rates.per_hour(entry[2], entry[3]))
    return out


def cost_figures(work: Labour, handled: int) -> dict[str, float | None]:
    """The row's cost columns: hours, cost, cost per handled, handled per logged-in hour."""
    hours = work.ms / HOUR_MS
    return {
        "logged_in_hours": round(hours, 6),
        "labour_cost": None if work.cost is None else round(work.cost, 6),
        "cost_per_handled": (
            None if work.cost is None or handled <= 0 else round(work.cost / handled, 6)
        ),
        "handled_per_logged_in_hour": None if hours <= 0 else round(handled / hours, 6),
    }
