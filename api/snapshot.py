"""The `/api/v1/live` document: figures per channel, queue and agent for one window."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from services import agentstates, keys, kpis
from services.settings import Settings

from .live_reader import LiveReader, Window, iso, read_options, resolve_window
from .time_in_state import time_in_state

SCOPE_MEMORY_S = 24 * 3600  # channels, queues and agents seen this long ago stay listed


@dataclass(frozen=True, slots=True)
class Overrides:
    """Per-request definition choices (`?sl_variant=&sl_threshold=&...`)."""

    sl_variant: kpis.SlVariant | None = None
    sl_threshold_s: int | None = None
    sl_exclude_short: bool | None = None
    abandon_denominator: kpis.AbandonDenominator | None = None


@dataclass(frozen=True, slots=True)
class Read:
    """What one document is made of, as read from Redis at one instant (`now_s`)."""

    now_s: float
    scopes: list[str]
    counters: dict[str, dict[str, int]]
    gauges: dict[str, dict[str, Any]]
    states: dict[str, dict[str, Any]]
    logs: dict[str, list[kpis.StateChange]]


async def read(reader: LiveReader, window: Window, now_s: float) -> Read:
    """Every scope seen within a day (or the window), the window's counters of each, the gauges
    of channels and queues, agents' sheets and their state logs within the window. Independent
    reads run at once: Redis answers one while Python parses another's reply."""
    scopes = await reader.active_scopes(min(window.start_s, int(now_s) - SCOPE_MEMORY_S))
    waiting_scopes = [s for s in scopes if not s.startswith("ag")]
    listed = {keys.parse_scope(s)[1] for s in scopes if keys.parse_scope(s)[0] == "ag"}
    start_ms, end_ms = window.start_s * 1000, int(min(window.end_s, now_s) * 1000)

    async def agents() -> tuple[dict[str, dict[str, Any]], dict[str, list[kpis.StateChange]]]:
        states = await reader.agent_states()  # also tells agent_logs where each agent's log is
        names = sorted(listed | set(states))
        return states, await reader.agent_logs(names, start_ms, end_ms, int(now_s * 1000))

    counters, gauges, (states, logs) = await asyncio.gather(
        reader.counters(scopes, window), reader.gauges(waiting_scopes, now_s), agents()
    )
    return Read(now_s, scopes, counters, gauges, states, logs)


async def shared_read(reader: LiveReader, window: Window, now_s: float) -> Read:
    """`read`, once for every document made from the same window, state and half tick: the
    `today` document and `/metrics` (api/metrics.py) read the state once between them. Its
    figures are as of `Read.now_s`; callers must not change it."""
    return await reader.readings.get(window, now_s, lambda: read(reader, window, now_s), fresh=True)


async def build(
    reader: LiveReader, window: Window, now_s: float, overrides: Overrides | None = None
) -> dict[str, Any]:
    """The document, as of the instant its reading was made (`now_s`, or up to half a tick
    before it when that reading is shared)."""
    over = overrides or Overrides()
    parts = await shared_read(reader, window, now_s)
    # Assembled in a worker thread from what was read: hundreds of scopes and agents are tens of
    # ms of Python, during which the event loop keeps answering other requests.
    return await asyncio.to_thread(_assemble, reader.settings, window, parts.now_s, over, parts)


def _assemble(
    settings: Settings, window: Window, now_s: float, over: Overrides, read: Read
) -> dict[str, Any]:
    scopes, counters, gauges, states = read.scopes, read.counters, read.gauges, read.states
    channels: dict[str, Any] = {}
    queues: dict[str, Any] = {}
    agents: dict[str, Any] = {}
    queue_keys: dict[str, list[str]] = {}  # a queue's name -> its keys in `queues`
    for scope in scopes:
        parts = keys.parse_scope(scope)
        if parts[0] == "ch":
            opts = read_options(settings, parts[1], None, **_kw(over))
            channels[parts[1]] = {**kpis.figures(counters[scope], opts), **gauges[scope]}
        elif parts[0] == "q":
            opts = read_options(settings, parts[1], parts[2], **_kw(over))
            entry = {"channel": parts[1], **kpis.figures(counters[scope], opts), **gauges[scope]}
            name = _queue_name(queues, parts[1], parts[2])
            queues[name] = entry
            queue_keys.setdefault(parts[2], []).append(name)
        elif parts[0] == "ag":
            agents[parts[1]] = _agent(counters[scope])
    for name, state in states.items():
        entry = agents.setdefault(name, _agent({}))
        since_s = state["since_ms"] / 1000
        entry.update(
            state=state["state"],
            state_reason=state.get("reason"),
            state_since=iso(since_s),
            state_seconds=round(max(0.0, now_s - since_s), 3),
            queues=sorted(
                q for q, ms in state["queues"].items() if ms / 1000 > now_s - SCOPE_MEMORY_S
            ),
        )
    _time_in_state(settings, agents, read.logs, window, now_s)
    _agents_by_scope(channels, queues, queue_keys, agents)
    return {
        "as_of": iso(now_s),
        "window": window.name,
        "from": iso(window.start_s),
        "to": iso(window.end_s),
        "timezone": settings.timezone,
        # Measured FCR is provisional for resolutions after this time: a repeat may still come.
        "fcr_measured_final_before": iso(now_s - settings.fcr_window_seconds),
        "fcr_measured_provisional": window.end_s > now_s - settings.fcr_window_seconds,
        "channels": channels,
        "queues": queues,
        "agents": agents,
        "agent_states": dict(Counter(s["state"] for s in states.values())),
    }


async def shared_build(
    reader: LiveReader,
    window: Window,
    now_s: float,
    overrides: Overrides | None = None,
    fresh: bool = False,
) -> dict[str, Any]:
    """`build`'s document, computed once for every request of the same query, state and tick
    (api/shared_reads.py). Shared: callers must not change it."""
    over = overrides or Overrides()
    return await reader.shared.get(
        ("live", window, over), now_s, lambda: build(reader, window, now_s, over), fresh
    )


def _time_in_state(
    settings: Settings,
    agents: dict[str, Any],
    logs: dict[str, list[kpis.StateChange]],
    window: Window,
    now_s: float,
) -> None:
    """Per agent: seconds in each state within the window (up to now), and occupancy."""
    start_ms, end_ms = window.start_s * 1000, int(min(window.end_s, now_s) * 1000)
    for name, changes in logs.items():
        seconds = time_in_state(changes, start_ms, end_ms, log=name)
        agents[name]["time_in_state_seconds"] = {s: round(v, 3) for s, v in seconds.items()}
        agents[name]["occupancy"] = kpis.occupancy(
            seconds, settings.busy_states, settings.idle_states
        )


NO_REASON = "unspecified"


def _agents_by_scope(
    channels: dict[str, Any],
    queues: dict[str, Any],
    queue_keys: dict[str, list[str]],
    agents: dict[str, Any],
) -> None:
    """Per channel and queue: its agents by current state (docs/metrics.md, agents by scope).
    An agent counts for every listed queue of that name and for those queues' channels."""
    for entry in (*channels.values(), *queues.values()):
        entry["agents"] = _empty_summary()
    for agent in agents.values():
        if agent.get("state") is None:
            continue
        state, reason = agentstates.normalise(agent["state"])
        names = {key for queue in agent.get("queues", ()) for key in queue_keys.get(queue, ())}
        scoped = [queues[k] for k in names]
        scoped += [channels[c] for c in {q["channel"] for q in scoped} if c in channels]
        if scoped:
            _count(
                [entry["agents"] for entry in scoped],
                state,
                agent.get("state_reason") or reason,
                agent,
            )


BUCKETS = ("available", "on_contact", "after_contact_work", "not_ready", "offline")


def _empty_summary() -> dict[str, Any]:
    return {
        **dict.fromkeys(BUCKETS, 0),
        "not_ready_by_reason": {},
        "longest_available_seconds": None,
        "current_state_seconds": {
            b: {"longest_seconds": None, "total_seconds": 0.0} for b in BUCKETS
        },
    }


def _count(
    summaries: list[dict[str, Any]], state: str, reason: str | None, agent: dict[str, Any]
) -> None:
    """One agent counted in each of these summaries (hundreds of agents, each in several:
    what does not depend on the summary is worked out once)."""
    bucket = "after_contact_work" if state == agentstates.WRAP_UP else state
    why = reason or NO_REASON if state == agentstates.NOT_READY else None
    seconds = agent.get("state_seconds")  # there for every agent with a state
    available = state == agentstates.AVAILABLE
    for summary in summaries:
        summary[bucket] += 1
        if why is not None:
            by_reason = summary["not_ready_by_reason"]
            by_reason[why] = by_reason.get(why, 0) + 1
        if seconds is None:
            continue
        timing = summary["current_state_seconds"][bucket]
        timing["longest_seconds"] = longest = max(timing["longest_seconds"] or 0.0, seconds)
        timing["total_seconds"] = round(timing["total_seconds"] + seconds, 3)
        if available:
            summary["longest_available_seconds"] = longest


def _kw(over: Overrides) -> dict[str, Any]:
    return {
        "sl_variant": over.sl_variant,
        "sl_threshold_s": over.sl_threshold_s,
        "sl_exclude_short": over.sl_exclude_short,
        "abandon_denominator": over.abandon_denominator,
    }


def _queue_name(existing: dict[str, Any], channel: str, queue: str) -> str:
    """Queues are keyed by name; a name used on two channels is told apart by its channel."""
    if queue in existing and existing[queue]["channel"] != channel:
        return f"{queue} ({channel})"
    return queue


def _agent(c: dict[str, int]) -> dict[str, Any]:
    return {
        "answered": kpis.answered(c),
        "handled": c.get(kpis.HANDLED, 0),
        "aht_seconds": kpis.mean_seconds(c.get(kpis.HANDLE_MS, 0), c.get(kpis.HANDLED, 0)),
        "asa_seconds": kpis.mean_seconds(c.get(kpis.ANSWER_WAIT_MS, 0), c.get(kpis.ANSWERED, 0)),
        "resolved": c.get(kpis.RESOLVED, 0),
        "resolution_seconds": kpis.mean_seconds(
            c.get(kpis.RESOLUTION_MS, 0), c.get(kpis.RESOLVED, 0)
        ),
        "transferred": c.get(kpis.TRANSFERRED, 0),
        "state": None,
    }


async def today_totals(reader: LiveReader, now_s: float) -> dict[str, Any]:
    """Today's offered and answered per channel, read at the same instant as the window it goes
    with: the tiles' "today" can no longer lag their window (it came by REST every 5 s)."""
    window = resolve_window("today", now_s, reader.settings)
    scopes = [s for s in await reader.active_scopes(window.start_s) if s.startswith("ch")]
    counters = await reader.counters(scopes, window)
    channels: dict[str, Any] = {}
    for scope in scopes:
        channel = keys.parse_scope(scope)[1]
        figures = kpis.figures(counters[scope], read_options(reader.settings, channel, None))
        channels[channel] = {"offered": figures["offered"], "answered": figures["answered"]}
    return {
        "window": window.name,
        "from": iso(window.start_s),
        "to": iso(window.end_s),
        "channels": channels,
    }


async def wallboard_frame(reader: LiveReader, now_s: float) -> dict[str, Any]:
    """What one websocket message carries: the 15-minute document and today's totals, read
    side by side (one after the other, today's waited for the document's round trips). Today's
    never miss a step the document counts: when a step landed while both were read (the state's
    version moved), today's are read again after the document."""

    def today() -> Awaitable[dict[str, Any]]:
        return reader.shared.get(("today-totals",), now_s, lambda: today_totals(reader, now_s))

    before = await reader.shared.version()
    data, totals = await asyncio.gather(
        shared_build(reader, resolve_window("15m", now_s, reader.settings), now_s), today()
    )
    if before is None or await reader.shared.version() != before:
        totals = await today()
    return {"data": data, "today": totals}
