"""This aggregator instance's own `/metrics`: its lag, batches, apply time, rebalances, partitions
and process figures, so a stuck or starved instance shows on its own scrape target.

The api's `/metrics` reads the figures every instance wrote to Redis (the pipeline's totals);
these are the instance's own, in memory, served by prometheus_client's threaded HTTP server
beside the event loop (CCPULSE_AGGREGATOR_METRICS_PORT; nothing is served when it is 0 or unset).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

log = logging.getLogger("ccpulse.aggregator")

BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10_000)
APPLY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class InstanceMetrics:
    """The instance's families on a registry of its own (never prometheus_client's global one)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes, cpu, open fds
        self.lag = Gauge(
            "ccpulse_aggregator_instance_lag_records",
            "Records behind the high-water marks of the partitions this instance owns",
            registry=r,
        )
        self.assigned = Gauge(
            "ccpulse_aggregator_instance_assigned_partitions",
            "Partitions of ccpulse.events assigned to this instance",
            registry=r,
        )
        self.rebalances = Counter(
            "ccpulse_aggregator_instance_rebalances",
            "Partition assignments this instance received (one per rebalance it took part in)",
            registry=r,
        )
        self.group_conflicts = Counter(
            "ccpulse_aggregator_instance_group_conflicts",
            "Steps refused because another partition's step wrote one of their measured-FCR "
            "groups first (each is planned again and resent)",
            registry=r,
        )
        self.batch = Histogram(
            "ccpulse_aggregator_instance_batch_records",
            "Records per polled batch this instance handled",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.apply = Histogram(
            "ccpulse_aggregator_instance_apply_seconds",
            "Time to plan a batch and hand it to Redis (the previous batch's round trip included)",
            buckets=APPLY_BUCKETS,
            registry=r,
        )


@dataclass
class MetricsServer:
    """prometheus_client's HTTP server on its own thread; `stop` closes the socket."""

    server: WSGIServer
    thread: Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_metrics(metrics: InstanceMetrics, host: str, port: int | None) -> MetricsServer | None:
    """Serve `/metrics` on host:port; None when the port is 0 or unset (off), or taken: the
    figures are for watching, so a port clash (two `ccpulse up` on one machine) is logged as an
    error rather than stopping the aggregation."""
    if not port:
        return None
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        log.error("instance metrics not served on %s:%d: %s", host, port, exc)
        return None
    log.info("instance metrics on http://%s:%d/metrics", host, port)
    return MetricsServer(server, thread)
