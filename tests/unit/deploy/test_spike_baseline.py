"""One baseline for both alert paths, and no page without one (issue 19): the Prometheus
baseline rule pools abandons over offered across the same weeks the built-in alerter pools
(api/alerts/baseline.py), and the page-severity spike alert needs that baseline; without
history a separate alert warns. promtool checks the numbers (deploy/prometheus/tests)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from api.alerts.baseline import WEEKS
from api.planning.baseline import HistoryBaseline

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "rules"
BASELINE = "channel_queue:ccpulse_abandon_rate:ratio_5m_baseline_4w"


def rules() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out[rule.get("record") or rule["alert"]] = rule
    return out


def test_the_prometheus_baseline_pools_the_alerters_weeks() -> None:
    expr = rules()[BASELINE]["expr"]
    assert HistoryBaseline.__init__.__defaults__ == (WEEKS,)
    assert sorted(int(w) for w in re.findall(r"offset (\d+)w", expr)) == sorted(
        list(range(1, WEEKS + 1)) * 2
    ), "numerator and denominator over the same weeks"
    # pooled: a sum of abandons over a sum of offered, not a mean of rates
    assert "avg" not in expr and ":ratio_5m[" not in expr
    numerator, denominator = expr.split("\n/\n")
    assert numerator.count("sum_over_time(channel_queue:ccpulse_abandon_rate:abandoned_5m") == WEEKS
    assert denominator.count("sum_over_time(channel_queue:ccpulse_abandon_rate:offered_5m") == WEEKS
    ratio = rules()["channel_queue:ccpulse_abandon_rate:ratio_5m"]["expr"]
    assert "channel_queue:ccpulse_abandon_rate:abandoned_5m" in ratio
    assert "channel_queue:ccpulse_abandon_rate:offered_5m" in ratio


def test_no_page_on_the_abandon_rate_without_a_baseline() -> None:
    on_rate = {
        name: rule
        for name, rule in rules().items()
        if "alert" in rule and "ccpulse_abandon_rate" in rule["expr"]
    }
    assert set(on_rate) == {"CcpulseAbandonRateSpike", "CcpulseAbandonRateSpikeNoBaseline"}
    for name, rule in on_rate.items():
        expr = " ".join(rule["expr"].split())
        if rule["labels"]["severity"] == "page":
            assert f"> 2 * {BASELINE}" in expr, name
            assert "unless" not in expr and " or " not in expr, name
        else:
            assert rule["labels"]["severity"] == "warning"
            assert expr.endswith(f"unless {BASELINE}"), name
