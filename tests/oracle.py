"""The reference recount: every metric computed from a plain list of events, by its definition.

Written from docs/metrics.md without the aggregator's code (no facts, no contributions, no kpis
formulas): the streaming figures must equal these for every scope and window.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

EDGES = (
    5,
    10,
    15,
    20,
    30,
    45,
    60,
    90,
    120,
    180,
    240,
    300,
    600,
    3600,
    7200,
    21600,
    43200,
    86400,
    172800,
)


def ms(event: dict[str, Any]) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp() * 1000)


def minute(t_ms: int) -> int:
    return (t_ms // 60000) * 60


@dataclass
class Contact:
    events: list[dict[str, Any]] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def first(self, kind: str) -> int | None:
        times = [ms(e) for e in self.of(kind)]
        return min(times) if times else None

    def last_value(self, name: str, kinds: tuple[str, ...] | None = None) -> Any:
        """The value of the latest event (by time, then id) that carries the field."""
        carrying = [
            e
            for e in self.events
            if e.get(name) is not None and (kinds is None or e["type"] in kinds)
        ]
        if not carrying:
            return None
        return max(carrying, key=lambda e: (ms(e), e["id"]))[name]


@dataclass
class Outcome:
    """One contact, resolved by the definitions."""

    channel: str | None
    queue: str | None
    agent: str | None
    offered: int | None
    queued: int | None
    answered: int | None
    wait_ms: int | None
    abandoned: int | None
    abandon_in_queue: bool
    abandon_wait_ms: int
    abandon_stage: str
    timed_out: int | None
    completed: int | None
    handle_ms: int | None
    resolved: int | None
    resolved_fc: bool
    stages: list[tuple[int, str]]
    transfers: list[int]
    csat: tuple[int, int] | None
    nps: tuple[int, int] | None


def outcome(c: Contact) -> Outcome:
    offered, queued = c.first("contact.offered"), c.first("contact.queued")
    answered, abandoned = c.first("contact.answered"), c.first("contact.abandoned")
    timed_out = c.first("contact.timed_out")
    completed_times = [ms(e) for e in c.of("contact.completed")]
    completed = max(completed_times) if completed_times else None
    start = queued if queued is not None else offered
    stages: dict[str, int] = {}
    for e in c.of("contact.ivr") + c.of("contact.queued"):
        name = e.get("stage") or ("ivr" if e["type"] == "contact.ivr" else "queue")
        stages[name] = min(stages.get(name, ms(e)), ms(e))
    path = sorted((t, s) for s, t in stages.items())
    # An abandon counts only once the offer or queue entry is known (docs/metrics.md).
    is_abandon = (
        abandoned is not None
        and answered is None
        and timed_out is None
        and (queued is not None or offered is not None)
    )
    in_queue = is_abandon and queued is not None and queued <= abandoned  # type: ignore[operator]
    a_start = queued if in_queue else offered
    stage = c.last_value("stage", ("contact.abandoned",))
    if stage is None and is_abandon:
        before = [(t, s) for t, s in path if t <= abandoned]  # type: ignore[operator]
        stage = max(before)[1] if before else "none"
    answering = sorted(
        (e for e in c.of("contact.answered") if e.get("agent")),
        key=lambda e: (ms(e), _neg(e["id"])),
    )
    agent = answering[0]["agent"] if answering else c.last_value("agent")
    resolved = c.first("contact.resolved")
    fc = c.last_value("first_contact", ("contact.resolved",))
    return Outcome(
        channel=c.last_value("channel"),
        queue=c.last_value("queue"),
        agent=agent,
        offered=offered,
        queued=queued,
        answered=answered,
        wait_ms=max(0, answered - start) if answered is not None and start is not None else None,
        abandoned=abandoned if is_abandon else None,
        abandon_in_queue=in_queue,
        abandon_wait_ms=max(0, abandoned - a_start) if is_abandon and a_start is not None else 0,  # type: ignore[operator]
        abandon_stage=stage or "none",
        timed_out=timed_out if answered is None else None,
        completed=completed,
        handle_ms=_span(answered, completed),
        resolved=resolved,
        resolved_fc=fc is True,
        stages=path,
        transfers=sorted({ms(e) for e in c.of("contact.transferred")}),
        csat=_survey(c, "csat"),
        nps=_survey(c, "nps"),
    )


def _span(start: int | None, end: int | None) -> int | None:
    return max(0, end - start) if start is not None and end is not None else None


def _mean_s(total_ms: int, count: int) -> float | None:
    return total_ms / count / 1000 if count else None


def _neg(text: str) -> tuple[int, ...]:
    """Ties on the first answer go to the greater event id."""
    return (*(-ord(ch) for ch in text), 0)


def _survey(c: Contact, name: str) -> tuple[int, int] | None:
    carrying = [e for e in c.events if e.get(name) is not None]
    if not carrying:
        return None
    top = max(carrying, key=lambda e: (ms(e), e["id"]))
    return ms(top), int(top[name])


def contacts(events: list[dict[str, Any]]) -> dict[str, Contact]:
    """Deduplicate by id (the first copy wins: copies are identical) and group by contact."""
    seen: dict[str, dict[str, Any]] = {}
    for e in events:
        seen.setdefault(e["id"], e)
    out: dict[str, Contact] = defaultdict(Contact)
    for e in seen.values():
        if e.get("contact") and e["type"] != "agent.state":
            out[e["contact"]].events.append(e)
    return dict(out)


def within(t_ms: int | None, start_s: int, end_s: int) -> bool:
    return t_ms is not None and start_s <= minute(t_ms) < end_s


def recount(
    events: list[dict[str, Any]],
    start_s: int,
    end_s: int,
    sl_threshold: dict[str, int],
    short_s: int = 5,
) -> dict[str, dict[str, dict[str, Any]]]:
    """{"channels": {c: figures}, "queues": {q: figures}} for minute buckets in [start, end)."""
    groups: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for c in contacts(events).values():
        o = outcome(c)
        if o.channel is None:
            continue
        groups[("channels", o.channel)].append(o)
        if o.queue is not None:
            groups[("queues", o.queue)].append(o)
    out: dict[str, dict[str, dict[str, Any]]] = {"channels": {}, "queues": {}}
    for (kind, name), members in groups.items():
        threshold = sl_threshold.get(members[0].channel or "", 20)
        out[kind][name] = figures(members, start_s, end_s, threshold, short_s)
    return out


def figures(
    members: list[Outcome], start_s: int, end_s: int, threshold_s: int, short_s: int
) -> dict[str, Any]:
    def w(t: int | None) -> bool:
        return within(t, start_s, end_s)

    answered = [o for o in members if w(o.answered)]
    timed = [o for o in answered if o.wait_ms is not None]  # ASA and SL: known waits only
    abandons = [o for o in members if w(o.abandoned)]
    queue_abandons = [o for o in abandons if o.abandon_in_queue]
    short = [o for o in abandons if o.abandon_wait_ms <= short_s * 1000]
    short_q = [o for o in queue_abandons if o.abandon_wait_ms <= short_s * 1000]
    handled = [o for o in members if o.handle_ms is not None and w(o.completed)]
    met = sum(1 for o in timed if (o.wait_ms or 0) <= threshold_s * 1000)
    offered = sum(1 for o in members if w(o.offered))
    by_stage: dict[str, int] = defaultdict(int)
    for o in abandons:
        by_stage[o.abandon_stage] += 1
    sl_den = len(timed) + len(queue_abandons) - len(short_q)
    ab_den = offered - len(short)
    resolved = [o for o in members if w(o.resolved)]
    return {
        "offered": offered,
        "queued": sum(1 for o in members if w(o.queued)),
        "answered": len(answered),
        "abandoned": len(abandons),
        "abandoned_queue": len(queue_abandons),
        "abandoned_ivr": len(abandons) - len(queue_abandons),
        "short_abandoned": len(short),
        "abandoned_by_stage": dict(by_stage),
        "timed_out": sum(1 for o in members if w(o.timed_out)),
        "transferred": sum(1 for o in members for t in o.transfers if w(t)),
        "handled": len(handled),
        "asa_seconds": _mean_s(sum(o.wait_ms or 0 for o in timed), len(timed)),
        "aht_seconds": _mean_s(sum(o.handle_ms or 0 for o in handled), len(handled)),
        "service_level": met / sl_den if sl_den > 0 else None,
        "service_level_variants": {
            (variant, exclude): sl_variant(
                timed, queue_abandons, threshold_s, short_s, variant, exclude
            )
            for variant in ("abandons_ignored", "abandons_missed", "abandons_met_within")
            for exclude in (True, False)
        },
        "abandon_rate": (len(abandons) - len(short)) / ab_den if ab_den > 0 else None,
        "resolved": len(resolved),
        "fcr_rate": sum(o.resolved_fc for o in resolved) / len(resolved) if resolved else None,
        "csat_responses": sum(1 for o in members if o.csat and w(o.csat[0])),
        "nps_responses": sum(1 for o in members if o.nps and w(o.nps[0])),
    }


ENDINGS = ("contact.answered", "contact.abandoned", "contact.timed_out", "contact.completed")


def sl_variant(
    answered: list[Outcome],
    abandons: list[Outcome],
    threshold_s: int,
    short_s: int,
    variant: str,
    exclude_short: bool,
) -> float | None:
    """Service level by the variant's words in docs/metrics.md, from the contacts themselves."""
    met = sum(1 for o in answered if (o.wait_ms or 0) <= threshold_s * 1000)
    if exclude_short:
        abandons = [o for o in abandons if o.abandon_wait_ms > short_s * 1000]
    den = len(answered) if variant == "abandons_ignored" else len(answered) + len(abandons)
    if variant == "abandons_met_within":
        met += sum(1 for o in abandons if o.abandon_wait_ms <= threshold_s * 1000)
    return met / den if den > 0 else None


def waiting_now(events: list[dict[str, Any]]) -> dict[str, int]:
    """Contacts queued and with no answer, abandon, timeout or completion yet, per channel."""
    counts: dict[str, int] = defaultdict(int)
    for c in contacts(events).values():
        ended = any(c.first(k) is not None for k in ENDINGS)
        channel = c.last_value("channel")
        if channel and c.first("contact.queued") is not None and not ended:
            counts[channel] += 1
    return dict(counts)


def agents(events: list[dict[str, Any]], start_s: int, end_s: int, now_ms: int) -> dict[str, Any]:
    """Per answering agent: answered, handled, AHT; per agent: seconds in each state."""
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"answered": 0, "handled": 0, "_h": 0})
    for c in contacts(events).values():
        o = outcome(c)
        if o.agent is None or o.channel is None:
            continue
        row = out[o.agent]
        row["answered"] += within(o.answered, start_s, end_s)
        if o.handle_ms is not None and within(o.completed, start_s, end_s):
            row["handled"] += 1
            row["_h"] += o.handle_ms
    for row in out.values():
        row["aht_seconds"] = _mean_s(row.pop("_h"), row["handled"])
    unique = {e["id"]: e for e in events if e["type"] == "agent.state"}
    changes: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for e in unique.values():
        changes[e["agent"]].append((ms(e), e["id"], e["state"]))
    end_ms = min(end_s * 1000, now_ms)
    for agent, rows in changes.items():
        rows.sort()
        seconds: dict[str, float] = defaultdict(float)
        for i, (at, _, state) in enumerate(rows):
            nxt = rows[i + 1][0] if i + 1 < len(rows) else end_ms
            lo, hi = max(at, start_s * 1000), min(nxt, end_ms)
            if hi > lo:
                seconds[state] += (hi - lo) / 1000
        out[agent]["time_in_state_seconds"] = dict(seconds)
    return dict(out)


FCR_WINDOW_MS = 7 * 86_400_000


def fcr_measured(
    events: list[dict[str, Any]], start_s: int, end_s: int
) -> dict[str, tuple[int, int]]:
    """Per channel: (resolved with known customer and issue, of which not repeated in 7 days)."""
    people: dict[tuple[str, str], list[tuple[str, int | None, int | None]]] = defaultdict(list)
    channel_of: dict[str, str] = {}
    for contact, c in contacts(events).items():
        customer, issue, channel = (
            c.last_value("customer"),
            c.last_value("issue"),
            c.last_value("channel"),
        )
        if customer is None or issue is None or channel is None:
            continue
        channel_of[contact] = channel
        people[(customer, issue)].append(
            (contact, c.first("contact.offered"), c.first("contact.resolved"))
        )
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for members in people.values():
        for contact, _, resolved in members:
            if resolved is None or not within(resolved, start_s, end_s):
                continue
            repeated = any(
                o is not None and resolved < o <= resolved + FCR_WINDOW_MS
                for other, o, _ in members
                if other != contact
            )
            out[channel_of[contact]][0] += 1
            out[channel_of[contact]][1] += not repeated
    return {ch: (n, ok) for ch, (n, ok) in out.items()}


def labour(
    events: list[dict[str, Any]],
    start_s: int,
    end_s: int,
    days: list[tuple[int, int]],
    now_ms: int,
) -> dict[tuple[str, str, str], float]:
    """Logged-in ms in [start, end) per (agent, channel, queue), by docs/metrics.md#cost: each
    agent's logged-in time (any state but offline) on a local day (`days`: [lo, hi) in epoch
    seconds) is shared by the agent's handle time per channel and queue of the contacts it
    completed that day; a day with none leaves it unshared, as (agent, "", "")."""
    mix: dict[tuple[str, int], dict[tuple[str, str], int]] = defaultdict(dict)
    for c in contacts(events).values():
        o = outcome(c)
        if o.agent is None or o.channel is None or o.handle_ms is None or o.completed is None:
            continue
        for lo, hi in days:
            if lo * 1000 <= o.completed < hi * 1000 and o.handle_ms > 0:
                shares = mix[(o.agent, lo)]
                group = (o.channel, o.queue or "")
                shares[group] = shares.get(group, 0) + o.handle_ms
    unique = {e["id"]: e for e in events if e["type"] == "agent.state"}
    changes: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for e in unique.values():
        changes[e["agent"]].append((ms(e), e["id"], e["state"]))
    out: dict[tuple[str, str, str], float] = defaultdict(float)
    for agent, rows in changes.items():
        rows.sort()
        for lo, hi in days:
            a, b = max(lo, start_s) * 1000, min(hi, end_s) * 1000
            logged = 0
            for i, (at, _, state) in enumerate(rows):
                nxt = rows[i + 1][0] if i + 1 < len(rows) else now_ms
                if state != "offline":
                    logged += max(0, min(nxt, b, now_ms) - max(at, a))
            if logged <= 0:
                continue
            shares = mix.get((agent, lo), {})
            total = sum(shares.values())
            if total <= 0:
                out[(agent, "", "")] += logged
                continue
            for (channel, queue), part in shares.items():
                out[(agent, channel, queue)] += logged * part / total
    return dict(out)
