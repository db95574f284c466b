"""The aggregator's own metrics server: served on a free port and closed on stop; off at 0 or
unset; a port already taken is logged and leaves the aggregation running."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from aggregator.instance_metrics import InstanceMetrics, serve_metrics
from tests.harness import free_port


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_served_then_closed() -> None:
    metrics = InstanceMetrics()
    metrics.batch.observe(42)
    port = free_port()
    server = serve_metrics(metrics, "127.0.0.1", port)
    assert server is not None
    try:
        text = scrape(port)
    finally:
        server.stop()
    assert "ccpulse_aggregator_instance_batch_records_sum 42.0" in text
    assert "process_resident_memory_bytes" in text
    with pytest.raises(ConnectionRefusedError):  # the socket is closed, not merely unserved
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.mark.parametrize("port", [None, 0])
def test_off(port: int | None) -> None:
    assert serve_metrics(InstanceMetrics(), "127.0.0.1", port) is None


def test_a_taken_port_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve_metrics(InstanceMetrics(), "127.0.0.1", port) is None
    assert "instance metrics not served" in caplog.text
