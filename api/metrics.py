"""`/metrics`: Prometheus families computed from Redis at scrape time.

Every api replica reads the same Redis, so every replica exposes the same numbers. Figures of
the local day are gauges named `..._today`, not `_total` counters: they restart at local
midnight and a late event may lower them (an answer wins over an abandon already counted), and a
counter that goes down reads as a process restart to `rate()`. Histograms hold the day's
observations the same way; docs/observability.md says how to query them. Only the service's own
health (events applied, dead letters, batch apply time) is a true counter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
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
from .live import LiveReader, Window, resolve_window
from .snapshot import build

SCOPE = ["channel", "queue"]  # a channel's own series have queue="" (no queue label at all)
# Raw histogram fields per exposed histogram: (families of bucket fields, field of the ms sum).
HISTOGRAMS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "ccpulse_answer_wait_today_seconds": (
        (kpis.ANSWER_HIST,), kpis.ANSWER_WAIT_MS,
        "Waits of contacts answered today (queue entry, or offer, to answer)",
    ),
    "ccpulse_abandon_wait_today_seconds": (
        (kpis.QUEUE_ABANDON_HIST, kpis.IVR_ABANDON_HIST), kpis.ABANDON_WAIT_MS,
        "Time before the abandon of contacts abandoned today (from queue entry, or offer)",
    ),
    "ccpulse_handle_time_today_seconds": (
        (kpis.HANDLE_HIST,), kpis.HANDLE_MS,
        "Handle times (answer to completion) of contacts completed today",
    ),
}  # fmt: skip
COUNTS = (  # (family suffix, figure in the live document, help)
    ("offered", "offered", "Contacts offered today (local day)"),
    ("queued", "queued", "Contacts that entered a queue today"),
    ("answered", "answered", "Contacts answered today"),
    ("timed_out", "timed_out", "Contacts removed by a queue timeout today"),
)


class _Frozen(Collector):
    """Hands prometheus_client families that were computed asynchronously beforehand."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


class _Keeping(LiveReader):
    """A reader that keeps the raw counters `build` read: histograms come from the same read."""

    def __init__(self, reader: LiveReader) -> None:
        super().__init__(reader.redis, reader.settings)
        self.raw: dict[str, dict[str, int]] = {}

    async def counters(self, scopes: Iterable[str], window: Window) -> dict[str, dict[str, int]]:
        out = await super().counters(scopes, window)
        self.raw.update(out)
        return out


async def render(reader: LiveReader, now_s: float, extra: Iterable[Metric] = ()) -> bytes:
    """The exposition text; `extra` carries the per-process families (websocket clients)."""
    families = await collect(reader, now_s)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Frozen([*families, *extra]))
    return generate_latest(registry)


async def collect(reader: LiveReader, now_s: float) -> list[Metric]:
    """Every family, from one read of today's counters (the live document's own read)."""
    keeping = _Keeping(reader)
    doc = await build(keeping, resolve_window("today", now_s, reader.settings), now_s)
    scopes = _scopes(doc)
    stats = await reader.stats()
    reports = await reader.redis.hgetall(keys.CONSUMER_LAG)
    lag = keys.fresh_lag(reports, int(now_s * 1000))
    return [
        *_scope_families(scopes),
        *_histograms(scopes, keeping.raw),
        *_agent_families(doc, reader.settings),
        *_health(stats, lag),
    ]


Scope = tuple[str, str, str, dict[str, Any]]  # (redis scope, channel, queue or "", figures)


def _scopes(doc: dict[str, Any]) -> list[Scope]:
    """Channels (queue "") then queues, with the queue's own name (not the document's key)."""
    out: list[Scope] = [
        (keys.channel_scope(ch), ch, "", fig) for ch, fig in sorted(doc["channels"].items())
    ]
    for name, fig in sorted(doc["queues"].items()):
        channel = fig["channel"]
        suffix = f" ({channel})"
        queue = name
        if name.endswith(suffix) and doc["queues"].get(name[: -len(suffix)], fig) is not fig:
            queue = name[: -len(suffix)]  # the document told a same-named queue apart
        out.append((keys.queue_scope(channel, queue), channel, queue, fig))
    return out


def _scope_families(scopes: list[Scope]) -> list[Metric]:
    """The live document's figures per channel and queue: the wallboard's own numbers."""
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
        "ccpulse_ivr_stage_entered_today", "Contacts that entered an IVR or queue stage today",
        labels=[*SCOPE, "stage"],
    )  # fmt: skip
    now = {
        "in_queue": GaugeMetricFamily("ccpulse_contacts_waiting", "Contacts waiting in queue now",
                                      labels=SCOPE),
        "active": GaugeMetricFamily("ccpulse_contacts_active", "Open contacts now", labels=SCOPE),
        "longest_wait_seconds": GaugeMetricFamily(
            "ccpulse_longest_wait_seconds", "Longest current wait in queue", labels=SCOPE),
    }  # fmt: skip
    ratios = {
        "service_level": GaugeMetricFamily(
            "ccpulse_service_level_today_ratio",
            "Service level today (configured variant and threshold)", labels=SCOPE),
        "abandon_rate": GaugeMetricFamily(
            "ccpulse_abandon_rate_today_ratio",
            "Abandon rate today (configured denominator and short-abandon rule)", labels=SCOPE),
        "service_level_threshold_seconds": GaugeMetricFamily(
            "ccpulse_service_level_threshold_seconds",
            "Answer-time threshold of the service level", labels=SCOPE),
    }  # fmt: skip
    for _, channel, queue, fig in scopes:
        labels = [channel, queue]
        for figure, family in (*counts.items(), *now.items(), *ratios.items()):
            if fig.get(figure) is not None:
                family.add_metric(labels, fig[figure])
        # "none" always present: the day's abandon series exist from midnight, at zero.
        for stage, n in {"none": 0, **fig["abandoned_by_stage"]}.items():
            abandoned.add_metric([*labels, stage], n)
        for row in fig["ivr_funnel"]:
            entered.add_metric([*labels, str(row["stage"])], int(row["entered"]))
    return [*counts.values(), abandoned, entered, *now.values(), *ratios.values()]


def _histograms(scopes: list[Scope], raw: Mapping[str, Mapping[str, int]]) -> list[Metric]:
    """Cumulative buckets on kpis.WAIT_EDGES_S (every service-level threshold is an edge)."""
    out: list[Metric] = []
    for name, (families, sum_field, text) in HISTOGRAMS.items():
        family = HistogramMetricFamily(name, text, labels=SCOPE)
        for scope, channel, queue, _ in scopes:
            counters = raw.get(scope, {})
            family.add_metric(
                [channel, queue], _buckets(counters, families), counters.get(sum_field, 0) / 1000
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


def _agent_families(doc: dict[str, Any], settings: Settings) -> list[Metric]:
    states = GaugeMetricFamily("ccpulse_agents", "Agents by current state", labels=["state"])
    for state, n in sorted(doc["agent_states"].items()):
        states.add_metric([state], n)
    seconds: dict[str, float] = {}
    for agent in doc["agents"].values():
        for state, s in agent.get("time_in_state_seconds", {}).items():
            seconds[state] = seconds.get(state, 0.0) + s
    in_state = GaugeMetricFamily(
        "ccpulse_agents_state_today_seconds", "Agent time in each state today, all agents",
        labels=["state"],
    )  # fmt: skip
    for state, s in sorted(seconds.items()):
        in_state.add_metric([state], s)
    occupancy = GaugeMetricFamily(
        "ccpulse_agents_occupancy_today_ratio", "Busy time over busy plus idle time today"
    )
    value = kpis.occupancy(seconds, settings.busy_states, settings.idle_states)
    if value is not None:
        occupancy.add_metric([], value)
    out: list[Metric] = [states, in_state, occupancy]
    if settings.metrics_per_agent:
        out.extend(_per_agent(doc["agents"], settings.metrics_agent_cap))
    return out


PER_AGENT = (  # (family, help, figure)
    ("ccpulse_agent_contacts_answered_today", "Contacts answered today, per agent", "answered"),
    ("ccpulse_agent_contacts_handled_today", "Contacts completed today, per agent", "handled"),
    ("ccpulse_agent_handle_time_today_seconds", "Handle time today, summed, per agent", "handle"),
)


def _per_agent(agents: dict[str, Any], cap: int) -> list[Metric]:
    """Opt-in, one series per agent: the busiest `cap` agents, and how many were left out."""
    ranked = sorted(agents.items(), key=lambda item: (-item[1]["answered"], item[0]))
    families = {
        fig: GaugeMetricFamily(name, text, labels=["agent"]) for name, text, fig in PER_AGENT
    }
    state = GaugeMetricFamily(
        "ccpulse_agent_state_seconds",
        "Time in the agent's current state",
        labels=["agent", "state"],
    )
    for name, agent in ranked[:cap]:
        values = {**agent, "handle": (agent["aht_seconds"] or 0.0) * agent["handled"]}
        for figure, family in families.items():
            family.add_metric([name], values[figure])
        if agent.get("state") is not None:
            state.add_metric([name, agent["state"]], agent["state_seconds"])
    omitted = GaugeMetricFamily(
        "ccpulse_metrics_agents_omitted", "Agents left out of the per-agent series by the cap"
    )
    omitted.add_metric([], max(0, len(ranked) - cap))
    return [*families.values(), state, omitted]


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
