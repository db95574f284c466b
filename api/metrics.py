"""`/metrics`: Prometheus families computed from Redis at scrape time.

Every api replica reads the same Redis, so every replica exposes the same numbers. Figures of
the local day are gauges named `..._today`, not `_total` counters: they restart at local
midnight and a late event may lower them (an answer wins over an abandon already counted), and a
counter that goes down reads as a process restart to `rate()`. Histograms hold the day's
observations the same way; docs/observability.md says how to query them. For `rate()` and
`increase()`, offered, answered and abandoned also come as monotonic `_total` counters with
their `_corrected_total` (aggregator/totals.py, docs/metrics.md), and the service's own health
(events applied, dead letters, batch apply time) is counted the same way.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from services import keys, kpis
from services.settings import Settings

from .broadcaster import Broadcaster
from .live_reader import LiveReader, read_options, resolve_window
from .snapshot import shared_read
from .time_in_state import time_in_state

AGENT_PREFIX = keys.agent_scope("")
# level="channel": a channel's own totals (queue="", no queue label at all); level="queue": its
# queues. Both levels count the same contacts, so every sum() selects one level.
SCOPE = ["level", "channel", "queue"]
# Raw histogram fields per exposed histogram: (families of bucket fields, field of the ms sum).
HISTOGRAMS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "ccpulse_answer_wait_today_seconds": (
        (kpis.ANSWER_HIST,),
        kpis.ANSWER_WAIT_MS,
        "Waits of contacts answered today (queue entry, or offer, to answer)",
    ),
    "ccpulse_abandon_wait_today_seconds": (
        (kpis.QUEUE_ABANDON_HIST, kpis.IVR_ABANDON_HIST),
        kpis.ABANDON_WAIT_MS,
        "Time before the abandon of contacts abandoned today (from queue entry, or offer)",
    ),
    "ccpulse_handle_time_today_seconds": (
        (kpis.HANDLE_HIST,),
        kpis.HANDLE_MS,
        "Handle times (answer to completion) of contacts completed today",
    ),
}
TOTALS = (  # (counter in the totals hash, family, help), the `_corrected` ones after each
    ("offered", "ccpulse_contacts_offered", "Contacts offered, every increase applied"),
    ("answered", "ccpulse_contacts_answered", "Contacts answered, every increase applied"),
    ("abandoned", "ccpulse_contacts_abandoned", "Contacts abandoned, every increase applied"),
)
CORRECTED = "_corrected"  # aggregator/totals.py: decreases are counted apart, never subtracted
COUNTS = (  # (family suffix, figure in the live document, help)
    ("offered", "offered", "Contacts offered today (local day)"),
    ("queued", "queued", "Contacts that entered a queue today"),
    ("answered", "answered", "Contacts answered today"),
    ("timed_out", "timed_out", "Contacts removed by a queue timeout today"),
)


@dataclass(frozen=True, slots=True)
class ScopeReading:
    """One channel (queue "") or queue: its summed counters for today and its gauges now."""

    scope: str
    channel: str
    queue: str
    counters: Mapping[str, int]
    gauges: Mapping[str, float]
    opts: kpis.ReadOptions


@dataclass(frozen=True, slots=True)
class AgentReading:
    """One agent: today's counters, its current state, its seconds in each state today."""

    name: str
    counters: Mapping[str, int]
    state: str | None
    state_seconds: float
    time_in_state: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Reading:
    """What one scrape read from Redis: the counters, gauges and states the families need."""

    scopes: list[ScopeReading]
    agents: list[AgentReading]  # in the order the live document lists them
    agent_states: dict[str, int]
    per_agent: bool
    agent_cap: int
    busy_states: tuple[str, ...]
    idle_states: tuple[str, ...]
    scope_cap: int = 200
    # channel or queue scope -> its monotonic totals (LiveReader.totals), days without contacts too
    totals: Mapping[str, Mapping[str, int]] = dataclass_field(default_factory=dict)


class LiveCollector(Collector):
    """prometheus_client's custom-collector interface over one Reading: `collect` builds the
    families from the counters read (Redis is read asynchronously beforehand, in `read`). The
    aggregator's health is not in it: `render` reads and renders it for each scrape."""

    def __init__(self, reading: Reading, extra: Iterable[Metric] = ()) -> None:
        self.reading = reading
        self.extra = list(extra)

    def collect(self) -> Iterator[Metric]:
        yield from self.figures()
        yield from self.extra

    def figures(self) -> Iterator[Metric]:
        """The families of the live state (all but the aggregator's health and the extras)."""
        reading = self.reading
        scopes, dropped_queues = _cap_queues(reading.scopes, reading.scope_cap)
        stages, dropped_stages = _cap_stages(scopes, reading.scope_cap)
        yield from _scope_families(scopes, stages)
        yield from _totals(scopes, reading.totals, reading.scope_cap)
        yield from _histograms(scopes)
        yield _dropped(dropped_queues, dropped_stages)
        yield from _agent_families(reading)


async def render(reader: LiveReader, now_s: float, extra: Iterable[Metric] = ()) -> bytes:
    """The exposition text; `extra` carries the per-process families (websocket clients).

    The live state's families are rendered once for every scrape of the same state and tick
    (api/shared_reads.py); the aggregator's health (its loop's figures and lag are written
    outside its steps) and the extras are read and rendered for each scrape, after them."""
    figures = await reader.shared.get(("metrics",), now_s, lambda: _figures(reader, now_s))
    stats, reports = await asyncio.gather(reader.stats(), reader.redis.hgetall(keys.CONSUMER_LAG))
    health = _health(stats, keys.fresh_lag(reports, int(now_s * 1000)))
    return figures + _exposition([*health, *extra])


async def _figures(reader: LiveReader, now_s: float) -> bytes:
    collector = LiveCollector(await read(reader, now_s))
    # Rendered in a worker thread: the event loop keeps answering other requests meanwhile.
    return await asyncio.to_thread(lambda: _exposition(collector.figures()))


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _exposition(families: Iterable[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


async def read(reader: LiveReader, now_s: float) -> Reading:
    """Today's counters of the scopes the families expose, the gauges, the agents' states and
    time in state: from the reading the `today` document is made of (api/snapshot.py, shared
    by both for the same state and half tick, so as of its instant), plus the totals."""
    settings = reader.settings
    window = resolve_window("today", now_s, settings)
    parts, totals = await asyncio.gather(shared_read(reader, window, now_s), reader.totals())
    now_s = parts.now_s
    exposed = [s for s in parts.scopes if not s.startswith(AGENT_PREFIX)]
    agent_scopes = [s for s in parts.scopes if s.startswith(AGENT_PREFIX)]
    start_ms, end_ms = window.start_s * 1000, int(min(window.end_s, now_s) * 1000)
    counters, states = parts.counters, parts.states
    # Time in state of hundreds of agents: worked out in a worker thread, the loop keeps serving.
    agents = await asyncio.to_thread(
        _agent_readings, agent_scopes, counters, states, parts.logs, now_s, start_ms, end_ms
    )
    return Reading(
        scopes=_scope_readings(exposed, counters, parts.gauges, settings),
        agents=agents,
        agent_states=dict(Counter(s["state"] for s in states.values())),
        per_agent=settings.metrics_per_agent,
        agent_cap=settings.metrics_agent_cap,
        busy_states=tuple(settings.busy_states),
        idle_states=tuple(settings.idle_states),
        scope_cap=settings.metrics_scope_cap,
        totals=totals,
    )


def _agent_readings(
    agent_scopes: list[str],
    counters: dict[str, dict[str, int]],
    states: dict[str, dict[str, Any]],
    logs: dict[str, list[kpis.StateChange]],
    now_s: float,
    start_ms: int,
    end_ms: int,
) -> list[AgentReading]:
    listed = {keys.parse_scope(s)[1] for s in agent_scopes}
    names = [keys.parse_scope(s)[1] for s in agent_scopes]  # the live document's order
    names += [name for name in states if name not in listed]
    agents = []
    for name in names:
        state = states.get(name)
        seconds = time_in_state(logs.get(name, ()), start_ms, end_ms, log=name)
        agents.append(
            AgentReading(
                name,
                counters.get(keys.agent_scope(name), {}),
                state["state"] if state else None,
                round(max(0.0, now_s - state["since_ms"] / 1000), 3) if state else 0.0,
                {s: round(v, 3) for s, v in seconds.items()},
            )
        )
    return agents


def _scope_readings(
    scopes: list[str],
    counters: Mapping[str, Mapping[str, int]],
    gauges: Mapping[str, Mapping[str, float]],
    settings: Settings,
) -> list[ScopeReading]:
    """Channels (queue "") by name, then queues by name (by channel where a name repeats)."""
    channels: list[ScopeReading] = []
    queues: list[ScopeReading] = []
    for scope in scopes:
        parts = keys.parse_scope(scope)
        queue = parts[2] if parts[0] == "q" else ""
        reading = ScopeReading(
            scope,
            parts[1],
            queue,
            counters.get(scope, {}),
            gauges.get(scope, {}),
            read_options(settings, parts[1], queue or None),
        )
        (queues if queue else channels).append(reading)
    channels.sort(key=lambda r: r.channel)
    first: dict[str, str] = {}  # queue name -> the channel listed under the bare name
    for r in queues:  # scopes are sorted: the first channel of a name keeps the bare name
        first.setdefault(r.queue, r.channel)
    queues.sort(
        key=lambda r: r.queue if first[r.queue] == r.channel else f"{r.queue} ({r.channel})"
    )
    return channels + queues


def _level(r: ScopeReading) -> str:
    return "queue" if r.queue else "channel"


def _stage_counts(c: Mapping[str, int], family: str) -> dict[str, int]:
    """`family:name` fields as {name: count}, zeros kept: a stage seen today whose count a
    late correction brought back to 0 reads 0 instead of vanishing."""
    return {k[len(family) :]: v for k, v in c.items() if k.startswith(family)}


def _cap_queues(scopes: list[ScopeReading], cap: int) -> tuple[list[ScopeReading], int]:
    """Channels, and the `cap` busiest queues (offered today, then name): queue names come
    from event fields, so a bound on the series per scrape; returns how many were left out."""
    queues = [r for r in scopes if r.queue]
    ranked = sorted(queues, key=lambda r: (-r.counters.get(kpis.OFFERED, 0), r.queue, r.channel))
    kept = {id(r) for r in ranked[:cap]}
    return [r for r in scopes if not r.queue or id(r) in kept], max(0, len(queues) - cap)


def _cap_stages(scopes: list[ScopeReading], cap: int) -> tuple[set[str], int]:
    """The `cap` stage names with most contacts today (entered plus abandoned, over the
    exposed scopes); "none" (no stage reached) is always kept and not counted."""
    totals: Counter[str] = Counter()
    for r in scopes:
        for family in (kpis.STAGE_ENTERED, kpis.ABANDON_STAGE):
            totals.update(_stage_counts(r.counters, family))
    totals.pop("none", None)
    ranked = sorted(totals, key=lambda stage: (-totals[stage], stage))
    return {"none", *ranked[:cap]}, max(0, len(ranked) - cap)


def _dropped(queues: int, stages: int) -> Metric:
    family = GaugeMetricFamily(
        "ccpulse_metrics_scopes_dropped",
        "Distinct queue or stage label values left out of this scrape by CCPULSE_METRICS_SCOPE_CAP",
        labels=["label"],
    )
    family.add_metric(["queue"], queues)
    family.add_metric(["stage"], stages)
    return family


def _scope_families(scopes: list[ScopeReading], stages: set[str]) -> list[Metric]:
    """The wallboard's own figures per channel and queue, from the same formulas (kpis); only
    the stage names in `stages`."""
    counts = {
        figure: GaugeMetricFamily(f"ccpulse_contacts_{suffix}_today", text, labels=SCOPE)
        for suffix, figure, text in COUNTS
    }
    abandoned = GaugeMetricFamily(
        "ccpulse_contacts_abandoned_today",
        "Contacts abandoned today, by the stage they left at",
        labels=[*SCOPE, "stage"],
    )
    entered = GaugeMetricFamily(
        "ccpulse_ivr_stage_entered_today",
        "Contacts that entered an IVR or queue stage today",
        labels=[*SCOPE, "stage"],
    )
    now = {
        "in_queue": GaugeMetricFamily(
            "ccpulse_contacts_waiting", "Contacts waiting in queue now", labels=SCOPE
        ),
        "active": GaugeMetricFamily("ccpulse_contacts_active", "Open contacts now", labels=SCOPE),
        "longest_wait_seconds": GaugeMetricFamily(
            "ccpulse_longest_wait_seconds", "Longest current wait in queue", labels=SCOPE
        ),
    }
    ratios = {
        "service_level": GaugeMetricFamily(
            "ccpulse_service_level_today_ratio",
            "Service level today (configured variant and threshold)",
            labels=SCOPE,
        ),
        "abandon_rate": GaugeMetricFamily(
            "ccpulse_abandon_rate_today_ratio",
            "Abandon rate today (configured denominator and short-abandon rule)",
            labels=SCOPE,
        ),
        "service_level_threshold_seconds": GaugeMetricFamily(
            "ccpulse_service_level_threshold_seconds",
            "Answer-time threshold of the service level",
            labels=SCOPE,
        ),
    }
    for r in scopes:
        labels = [_level(r), r.channel, r.queue]
        c = r.counters
        values: dict[str, float | None] = {
            "offered": c.get(kpis.OFFERED, 0),
            "queued": c.get(kpis.QUEUED, 0),
            "answered": kpis.answered(c),
            "timed_out": c.get(kpis.TIMED_OUT, 0),
            **r.gauges,
            "service_level": kpis.service_level(c, r.opts),
            "abandon_rate": kpis.abandon_rate(c, r.opts),
            "service_level_threshold_seconds": r.opts.sl_threshold_s,
        }
        for figure, family in (*counts.items(), *now.items(), *ratios.items()):
            if (number := values.get(figure)) is not None:
                family.add_metric(labels, number)
        # "none" always present: the day's abandon series exist from midnight, at zero.
        for stage, n in {"none": 0, **_stage_counts(c, kpis.ABANDON_STAGE)}.items():
            if stage in stages:
                abandoned.add_metric([*labels, stage], n)
        funnel = [str(row["stage"]) for row in kpis.ivr_funnel(c)]  # the funnel's order first
        seen = _stage_counts(c, kpis.STAGE_ENTERED)
        for stage in [*funnel, *sorted(set(seen) - set(funnel))]:
            if stage in stages:
                entered.add_metric([*labels, stage], seen[stage])
    return [*counts.values(), abandoned, entered, *now.values(), *ratios.values()]


def _totals(
    scopes: list[ScopeReading], totals: Mapping[str, Mapping[str, int]], cap: int
) -> list[Metric]:
    """The monotonic counters, with `_created` (when the scope was first counted: a series
    younger than a window counted all of it inside the window). Every channel; the queues kept
    by the cap, then queues quiet today by name while the cap allows, so a queue's series does
    not come and go with its activity (a new first sample hides an increase from `increase()`)."""
    shown = {r.scope for r in scopes}
    queues = sum(1 for r in scopes if r.queue)
    quiet = sorted(s for s in totals if s not in shown and keys.parse_scope(s)[0] == "q")
    chosen = [s for s in (r.scope for r in scopes) if s in totals]
    chosen += sorted(s for s in totals if s not in shown and keys.parse_scope(s)[0] == "ch")
    chosen += quiet[: max(0, cap - queues)]
    families: list[Metric] = []
    for name, family, text in TOTALS:
        up = CounterMetricFamily(family, text, labels=SCOPE)
        down = CounterMetricFamily(
            f"{family}{CORRECTED}",
            f"Decreases of the same count by later corrections ({family}_total less this: net)",
            labels=SCOPE,
        )
        for scope in chosen:
            parts, values = keys.parse_scope(scope), totals[scope]
            labels = ["queue", parts[1], parts[2]] if parts[0] == "q" else ["channel", parts[1], ""]
            since = values.get(keys.TOTALS_SINCE)
            created = since / 1000 if since is not None else None
            up.add_metric(labels, values.get(name, 0), created=created)
            down.add_metric(labels, values.get(name + CORRECTED, 0), created=created)
        families += [up, down]
    return families


def _histograms(scopes: list[ScopeReading]) -> list[Metric]:
    """Cumulative buckets on kpis.WAIT_EDGES_S (every service-level threshold is an edge)."""
    out: list[Metric] = []
    for name, (families, sum_field, text) in HISTOGRAMS.items():
        family = HistogramMetricFamily(name, text, labels=SCOPE)
        for r in scopes:
            family.add_metric(
                [_level(r), r.channel, r.queue],
                _buckets(r.counters, families),
                r.counters.get(sum_field, 0) / 1000,
            )
        out.append(family)
    return out


def _buckets(counters: Mapping[str, int], families: tuple[str, ...]) -> list[tuple[str, float]]:
    """Redis keeps non-cumulative buckets (mergeable); Prometheus wants them cumulative."""
    buckets: list[tuple[str, float]] = []
    running = 0
    for index, edge in enumerate((*kpis.WAIT_EDGES_S, float("inf"))):
        running += sum(counters.get(f"{family}{index}", 0) for family in families)
        buckets.append(("+Inf" if edge == float("inf") else repr(float(edge)), running))
    return buckets


def _agent_families(reading: Reading) -> list[Metric]:
    states = GaugeMetricFamily("ccpulse_agents", "Agents by current state", labels=["state"])
    for state, n in sorted(reading.agent_states.items()):
        states.add_metric([state], n)
    seconds: dict[str, float] = {}
    for agent in reading.agents:  # summed in the live document's order: the same float sums
        for state, s in agent.time_in_state.items():
            seconds[state] = seconds.get(state, 0.0) + s
    in_state = GaugeMetricFamily(
        "ccpulse_agents_state_today_seconds",
        "Agent time in each state today, all agents",
        labels=["state"],
    )
    for state, s in sorted(seconds.items()):
        in_state.add_metric([state], s)
    occupancy = GaugeMetricFamily(
        "ccpulse_agents_occupancy_today_ratio", "Busy time over busy plus idle time today"
    )
    value = kpis.occupancy(seconds, reading.busy_states, reading.idle_states)
    if value is not None:
        occupancy.add_metric([], value)
    out: list[Metric] = [states, in_state, occupancy]
    if reading.per_agent:
        out.extend(_per_agent(reading.agents, reading.agent_cap))
    return out


PER_AGENT = (  # (family, help)
    ("ccpulse_agent_contacts_answered_today", "Contacts answered today, per agent"),
    ("ccpulse_agent_contacts_handled_today", "Contacts completed today, per agent"),
    ("ccpulse_agent_handle_time_today_seconds", "Handle time today, summed, per agent"),
)


def agent_values(c: Mapping[str, int]) -> tuple[int, int, float]:
    """(answered, handled, handle seconds) of one agent, as the live document states them
    (handle time is its mean handle time times the contacts handled)."""
    handled = c.get(kpis.HANDLED, 0)
    aht = kpis.mean_seconds(c.get(kpis.HANDLE_MS, 0), handled)
    return kpis.answered(c), handled, (aht or 0.0) * handled


def _per_agent(agents: list[AgentReading], cap: int) -> list[Metric]:
    """Opt-in, one series per agent: the busiest `cap` agents, and how many were left out."""
    values = {agent.name: agent_values(agent.counters) for agent in agents}
    ranked = sorted(agents, key=lambda agent: (-values[agent.name][0], agent.name))
    families = [GaugeMetricFamily(name, text, labels=["agent"]) for name, text in PER_AGENT]
    state = GaugeMetricFamily(
        "ccpulse_agent_state_seconds",
        "Time in the agent's current state",
        labels=["agent", "state"],
    )
    for agent in ranked[:cap]:
        for family, number in zip(families, values[agent.name], strict=True):
            family.add_metric([agent.name], number)
        if agent.state is not None:
            state.add_metric([agent.name, agent.state], agent.state_seconds)
    omitted = GaugeMetricFamily(
        "ccpulse_metrics_agents_omitted", "Agents left out of the per-agent series by the cap"
    )
    omitted.add_metric([], max(0, len(ranked) - cap))
    return [*families, state, omitted]


def _health(stats: dict[str, int], lag_now: int | None) -> list[Metric]:
    """The aggregator's own counters, kept per partition by its atomic step (and in keys.STATS
    by its loop), summed by LiveReader.stats."""
    out: list[Metric] = []
    for name, field, text in (
        ("ccpulse_aggregator_events_applied", "events_applied", "Events applied to Redis"),
        ("ccpulse_aggregator_dead_letters", "dead_letters", "Records sent to the DLQ"),
        ("ccpulse_aggregator_batches_applied", "batches_applied", "Batches applied to Redis"),
    ):
        family = CounterMetricFamily(name, text)
        family.add_metric([], stats.get(field, 0))
        out.append(family)
    out.append(_not_counted(stats))
    lag = GaugeMetricFamily(
        "ccpulse_aggregator_consumer_lag", "Records not yet applied, over the running consumers"
    )
    if lag_now is not None:  # no running consumer: no sample (CcpulseAggregatorStalled pages)
        lag.add_metric([], lag_now)
    last = GaugeMetricFamily(
        "ccpulse_aggregator_last_apply_timestamp_seconds", "When a batch was last applied"
    )
    if "last_apply_epoch_ms" in stats:
        last.add_metric([], stats["last_apply_epoch_ms"] / 1000)
    apply = SummaryMetricFamily(
        "ccpulse_aggregator_batch_apply_seconds", "Time to screen, plan and apply a batch"
    )
    apply.add_metric([], stats.get("apply_timed_batches", 0), stats.get("apply_us_total", 0) / 1e6)
    return [*out, lag, last, apply]


def _not_counted(stats: Mapping[str, int]) -> Metric:
    """Events that counted partially or not at all, by reason (docs/metrics.md): the
    aggregator's `not_counted:<reason>` stats; dead letters are among them by kind."""
    family = CounterMetricFamily(
        "ccpulse_aggregator_events_not_counted",
        "Events that counted partially or not at all, by reason",
        labels=["reason"],
    )
    for name, value in sorted(stats.items()):
        if name.startswith(keys.NOT_COUNTED_STAT):
            family.add_metric([name[len(keys.NOT_COUNTED_STAT) :]], value)
    return family


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def websocket_shed(broadcaster: Broadcaster) -> Metric:
    """Updates a slow client never got (overwritten in its one-slot mailbox), this process."""
    shed = CounterMetricFamily(
        "ccpulse_websocket_updates_shed", "Websocket updates replaced before a client took them"
    )
    live = sum(box.replaced for box in list(broadcaster.clients))
    shed.add_metric([], broadcaster.shed_total + live)
    return shed
