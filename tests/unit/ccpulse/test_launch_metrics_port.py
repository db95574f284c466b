"""`ccpulse up` gives its aggregator a loopback /metrics port unless the settings chose one."""

from __future__ import annotations

from ccpulse.launch import EMBEDDED_AGGREGATOR_METRICS_PORT, child_env
from services.settings import Settings

VARIABLE = "CCPULSE_AGGREGATOR_METRICS_PORT"


def test_embedded_stack_serves_aggregator_metrics_by_default() -> None:
    env = child_env(Settings(), {})
    assert env[VARIABLE] == str(EMBEDDED_AGGREGATOR_METRICS_PORT)
    assert Settings(aggregator_metrics_host="127.0.0.1").aggregator_metrics_host == "127.0.0.1"


def test_a_chosen_port_or_zero_is_left_alone() -> None:
    assert child_env(Settings(aggregator_metrics_port=0), {VARIABLE: "0"})[VARIABLE] == "0"
    assert child_env(Settings(aggregator_metrics_port=9102), {VARIABLE: "9102"})[VARIABLE] == "9102"
