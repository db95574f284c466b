"""Read the live state for one rule: which scopes it covers and what each one shows now.

A rule's trailing window is made of whole minute buckets like the live `5m` window: the current
minute and the ones before it, so the alerter and the wallboard agree on what "last 5 minutes"
means.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from services import agentstates, erlang, keys, kpis
from services.alerting import ALL, SHORTFALL, AlertRule

from ..live_reader import LiveReader, Window, read_options
from ..snapshot import SCOPE_MEMORY_S
from .baseline import BaselineSource
from .rules import AlertState, Observation

log = logging.getLogger("ccpulse.alerts")

Scope = tuple[str, str | None]  # (channel, queue or None for the whole channel)
BASELINE_CACHE_S = 300.0  # the baseline moves once an hour: no need to ask SQL every 5 s
# Agents who can take the next contact soon: ready, on a contact, or in after-contact work. Not
# ready (a break, training) and offline agents are not staffing the queue.
STAFFED_STATES = frozenset({agentstates.AVAILABLE, agentstates.ON_CONTACT, agentstates.WRAP_UP})


def trailing_window(now_s: float, seconds: int) -> Window:
    """The current minute and the minutes before it, `seconds` in all."""
    end = keys.bucket_start_s(now_s, "m") + keys.MINUTE_SECONDS
    return Window(f"last_{seconds}s", end - seconds, end)


def matches(rule: AlertRule, channel: str, queue: str | None) -> bool:
    if rule.channel not in (ALL, channel):
        return False
    if rule.queue is None:
        return queue is None
    return queue is not None and rule.queue in (ALL, queue)


def covered(rule: AlertRule, active: Iterable[str], stored: Iterable[AlertState]) -> list[Scope]:
    """Active scopes the rule matches, its own scope when named, and scopes it still has an
    alert for (so an alert on a scope that went quiet gets resolved, not forgotten)."""
    found: set[Scope] = set()
    for scope in active:
        parts = keys.parse_scope(scope)
        if parts[0] == "ch":
            found.add((parts[1], None))
        elif parts[0] == "q":
            found.add((parts[1], parts[2]))
    out = {s for s in found if matches(rule, *s)}
    if rule.channel != ALL and rule.queue != ALL:
        out.add((rule.channel, rule.queue))
    out.update((s.channel, s.queue) for s in stored if s.rule == rule.name)
    return sorted(out, key=lambda s: (s[0], s[1] or ""))


def scope_key(channel: str, queue: str | None) -> str:
    return keys.channel_scope(channel) if queue is None else keys.queue_scope(channel, queue)


def figure(
    rule: AlertRule, c: Mapping[str, int], gauge: Mapping[str, Any], opts: kpis.ReadOptions
) -> tuple[float | None, int]:
    """(value, volume) of the rule's metric; volume is the rate's denominator, or the
    contacts waiting for the waiting metrics."""
    if rule.metric == "abandon_rate":
        return kpis.abandon_rate(c, opts), _abandon_denominator(c, opts)
    if rule.metric == "service_level":
        short = kpis.hist_within(c, kpis.QUEUE_ABANDON_HIST, opts.short_abandon_s)
        volume = c.get(kpis.ANSWERED, 0) + c.get(kpis.ABANDONED_QUEUE, 0)
        return kpis.service_level(c, opts), volume - (short if opts.sl_exclude_short else 0)
    waiting = int(gauge.get("in_queue", 0))
    if rule.metric == "waiting":
        return float(waiting), waiting
    return float(gauge.get("longest_wait_seconds", 0.0)), waiting


def staffing_figure(
    c: Mapping[str, int], window_s: float, staffed: int | None, target: float, threshold_s: int
) -> tuple[float | None, int]:
    """((agents needed - agents staffed) / agents needed, contacts offered): Erlang C on the
    window's arrival rate and AHT at the scope's service-level target (docs/metrics.md,
    staffing shortfall); 0.25 is a quarter short, a negative value a surplus.
    No figure without known agents (a platform that sends no agent states) or without a
    handle time yet (nothing completed in the window)."""
    offered = c.get(kpis.OFFERED, 0)
    handled, handle_ms = c.get(kpis.HANDLED, 0), c.get(kpis.HANDLE_MS, 0)
    if staffed is None or handled <= 0 or offered <= 0:
        return None, offered
    needed = erlang.agents_erlang_c(
        offered / window_s, handle_ms / handled / 1000, target, threshold_s
    )
    return (needed.agents - staffed) / needed.agents, offered


def staffed_by_scope(
    agents: Mapping[str, Mapping[str, Any]], active: Iterable[str]
) -> dict[Scope, int]:
    """Agents staffed now per channel and queue, counted as the wallboard counts them: an agent
    serves each queue it was seen on (every channel that has a queue of that name), and the
    channels of those queues. Scopes no agent serves are absent (their figure is unknown)."""
    channels_of: dict[str, set[str]] = {}
    for scope in active:
        parts = keys.parse_scope(scope)
        if parts[0] == "q":
            channels_of.setdefault(parts[2], set()).add(parts[1])
    out: dict[Scope, int] = {}
    for agent in agents.values():
        state = agent.get("state")
        if state is None:
            continue
        count = 1 if agentstates.normalise(str(state))[0] in STAFFED_STATES else 0
        served: set[Scope] = set()
        for queue in agent.get("queues", ()):
            for channel in channels_of.get(queue, ()):
                served.update({(channel, queue), (channel, None)})
        for where in served:
            out[where] = out.get(where, 0) + count
    return out


def _abandon_denominator(c: Mapping[str, int], opts: kpis.ReadOptions) -> int:
    if opts.abandon_denominator == "queued":
        short = kpis.hist_within(c, kpis.QUEUE_ABANDON_HIST, opts.short_abandon_s)
        return c.get(kpis.QUEUED, 0) - (short if opts.sl_exclude_short else 0)
    short = kpis.short_abandoned(c, opts.short_abandon_s) if opts.sl_exclude_short else 0
    return c.get(kpis.OFFERED, 0) - short


class Observer:
    """Turns the live state into one Observation per (rule, scope)."""

    def __init__(self, reader: LiveReader, baseline: BaselineSource) -> None:
        self.reader = reader
        self.baseline = baseline
        self._baselines: dict[tuple[str, str | None, int], tuple[float | None, float]] = {}

    async def observe(
        self, rule: AlertRule, scopes: list[Scope], now_s: float
    ) -> dict[Scope, Observation]:
        names = [scope_key(ch, q) for ch, q in scopes]
        window = trailing_window(now_s, rule.window_seconds)
        counters = await self.reader.counters(names, window)
        fast = rule.fast_window
        short = await self.reader.counters(names, trailing_window(now_s, fast)) if fast else {}
        waits = rule.metric in ("waiting", "longest_wait_seconds")
        gauges = await self.reader.gauges(names, now_s) if waits else {}
        staffed: dict[Scope, int] = {}
        if rule.metric == SHORTFALL:
            active = await self.reader.active_scopes(int(now_s) - SCOPE_MEMORY_S)
            staffed = staffed_by_scope(await self.reader.agent_states(), active)
        out: dict[Scope, Observation] = {}
        for (channel, queue), name in zip(scopes, names, strict=True):
            opts = read_options(self.reader.settings, channel, queue)
            if rule.metric == SHORTFALL:
                value, volume = staffing_figure(
                    counters[name],
                    max(60.0, now_s - window.start_s),  # the current minute is still running
                    staffed.get((channel, queue)),
                    rule.target_service_level,
                    opts.sl_threshold_s,
                )
            else:
                value, volume = figure(rule, counters[name], gauges.get(name, {}), opts)
            base = await self._baseline(channel, queue, now_s) if rule.baseline_factor else None
            fast_value, fast_volume = (
                figure(rule, short[name], gauges.get(name, {}), opts) if fast else (None, 0)
            )
            out[(channel, queue)] = Observation(
                value=value,
                volume=volume,
                baseline=base,
                fast_value=fast_value,
                fast_volume=fast_volume,
            )
        return out

    async def _baseline(self, channel: str, queue: str | None, now_s: float) -> float | None:
        """Cached per hour; a failing source counts as unknown (the threshold still pages)."""
        hour = keys.bucket_start_s(now_s, "h")
        cached = self._baselines.get((channel, queue, hour))
        if cached is not None and time.monotonic() - cached[1] < BASELINE_CACHE_S:
            return cached[0]
        try:
            value = await self.baseline.rate(channel, queue, now_s)
        except Exception as exc:  # any source failure: fall back, never stop alerting
            log.warning("baseline for %s/%s unavailable: %s", channel, queue, exc)
            value = None
        if len(self._baselines) > 10_000:
            self._baselines.clear()
        self._baselines[(channel, queue, hour)] = (value, time.monotonic())
        return value
