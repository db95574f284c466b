"""`/metrics`: Prometheus families computed from Redis at scrape time.

Every api replica reads the same Redis, so every replica exposes the same numbers. Families
follow Prometheus' conventions: base units, `_total` counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from services import keys

from .live import LiveReader, resolve_window
from .snapshot import build


class _Frozen(Collector):
    """Hands prometheus_client families that were computed asynchronously beforehand."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Iterator[Any]:
        return iter(self.families)


async def render(reader: LiveReader, now_s: float, extra: Iterable[Any] = ()) -> bytes:
    families = await collect(reader, now_s)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Frozen([*families, *extra]))
    return generate_latest(registry)


async def collect(reader: LiveReader, now_s: float) -> list[Any]:
    doc = await build(reader, resolve_window("today", now_s, reader.settings), now_s)
    offered = CounterMetricFamily(
        "ccpulse_contacts_offered", "Contacts offered today", labels=["channel"]
    )
    answered = CounterMetricFamily(
        "ccpulse_contacts_answered", "Contacts answered today", labels=["channel"]
    )
    abandoned = CounterMetricFamily(
        "ccpulse_contacts_abandoned", "Contacts abandoned today", labels=["channel", "stage"]
    )
    waiting = GaugeMetricFamily(
        "ccpulse_contacts_waiting", "Contacts waiting now", labels=["channel"]
    )
    longest = GaugeMetricFamily(
        "ccpulse_longest_wait_seconds", "Longest current wait", labels=["channel"]
    )
    for name, fig in doc["channels"].items():
        offered.add_metric([name], fig["offered"])
        answered.add_metric([name], fig["answered"])
        for stage, n in fig["abandoned_by_stage"].items():
            abandoned.add_metric([name, stage], n)
        waiting.add_metric([name], fig["in_queue"])
        longest.add_metric([name], fig["longest_wait_seconds"])
    stats = await reader.redis.hgetall(keys.STATS)
    health = _health({_t(k): int(v) for k, v in stats.items()})
    return [offered, answered, abandoned, waiting, longest, *health]


def _health(stats: dict[str, int]) -> list[Any]:
    applied = CounterMetricFamily("ccpulse_aggregator_events_applied", "Events applied to Redis")
    applied.add_metric([], stats.get("events_applied", 0))
    dead = CounterMetricFamily("ccpulse_aggregator_dead_letters", "Events sent to the DLQ")
    dead.add_metric([], stats.get("dead_letters", 0))
    lag = GaugeMetricFamily("ccpulse_aggregator_consumer_lag", "Records not yet applied")
    lag.add_metric([], stats.get("consumer_lag", 0))
    return [applied, dead, lag]


def _t(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
