"""deploy/grafana/dashboards read as a Prometheus user would: no channel or threshold written into
a query (the dashboard's variables choose them), no rate collapsed across channels by max() or
min() (that shows the worst channel, not the combined rate), per-agent panels that say why they
are empty; and the combined-rate and threshold queries evaluated by promtool on made-up series.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services import kpis
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
PROMTOOL = shutil.which("promtool")
# An aggregation and the first metric name inside it: `max by (channel) (x_ratio{...})`.
AGGREGATION = re.compile(r"\b(sum|max|min|avg)\s*(?:(by|without)\s*\(([^)]*)\))?\s*\(\s*([\w:]+)")
PER_AGENT = re.compile(r"\bccpulse_(agent_\w+|metrics_agents_omitted)\b")


def board(name: str) -> dict[str, Any]:
    board: dict[str, Any] = json.loads((ROOT / "deploy/grafana/dashboards" / name).read_text())
    return board


def panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in items:
        out.append(panel)
        out.extend(panels(panel.get("panels", [])))
    return out


def exprs() -> list[tuple[str, str]]:
    return [
        (f"{path.name}: {panel['title']}", target["expr"])
        for path in DASHBOARDS
        for panel in panels(json.loads(path.read_text())["panels"])
        for target in panel.get("targets", [])
    ]


def written_choices(expr: str) -> list[str]:
    """Matchers that fix a channel or a histogram edge instead of taking a variable."""
    return re.findall(r'\b(?:channel|le)\s*=~?\s*"(?!\$)[^"]*"', expr)


def ratios_across_channels(expr: str) -> list[str]:
    """max/min/avg (or sum) over a ratio series that drops the channel label."""
    out = []
    for match in AGGREGATION.finditer(expr):
        _, mode, labels, metric = match.groups()
        names = {label.strip() for label in (labels or "").split(",")}
        keeps_channel = (mode == "by" and "channel" in names) or (
            mode == "without" and "channel" not in names
        )
        # the agents' ratios have no channel label: max() there only keeps one replica's copy
        if "ratio" in metric and not metric.startswith("ccpulse_agents") and not keeps_channel:
            out.append(match.group(0))
    return out


def test_the_checks_catch_the_old_queries() -> None:
    old_sl = (
        'sum(clamp_min(delta(ccpulse_answer_wait_today_seconds_bucket{channel="voice", '
        'level="channel", le="20.0"}[15m]), 0))'
    )
    assert written_choices(old_sl) == ['channel="voice"', 'le="20.0"']
    assert written_choices('x{channel=~"$channel", le="$threshold"}') == []
    old_rate = 'max(ccpulse_abandon_rate_today_ratio{channel=~"$channel", level="channel"})'
    assert ratios_across_channels(old_rate) == ["max(ccpulse_abandon_rate_today_ratio"]
    assert ratios_across_channels("max by (channel) (ccpulse_abandon_rate_today_ratio)") == []


def test_no_query_fixes_a_channel_or_a_threshold() -> None:
    fixed = {(where, m) for where, expr in exprs() for m in written_choices(expr)}
    assert not fixed, sorted(fixed)


def test_no_rate_is_collapsed_across_channels() -> None:
    collapsed = {(where, m) for where, expr in exprs() for m in ratios_across_channels(expr)}
    assert not collapsed, sorted(collapsed)


def test_per_agent_panels_say_the_setting_is_needed() -> None:
    found = 0
    for path in DASHBOARDS:
        for panel in panels(json.loads(path.read_text())["panels"]):
            if any(PER_AGENT.search(t["expr"]) for t in panel.get("targets", [])):
                found += 1
                where = f"{path.name}: {panel['title']}"
                assert "CCPULSE_METRICS_PER_AGENT=true" in panel.get("description", ""), where
                no_value = panel["fieldConfig"]["defaults"].get("noValue", "")
                assert "CCPULSE_METRICS_PER_AGENT=true" in no_value, where
    assert found >= 2


def test_the_threshold_variable_offers_the_histogram_edges() -> None:
    variable = next(
        v for v in board("service-level.json")["templating"]["list"] if v["name"] == "threshold"
    )
    default = float(Settings().sl_thresholds_seconds.get("voice", 20))
    assert variable["current"]["value"] == repr(default)  # as the exporter spells `le`
    assert default in kpis.WAIT_EDGES_S
    assert "ccpulse_answer_wait_today_seconds_bucket" in variable["definition"]
    assert not re.fullmatch(variable["regex"].strip("/"), "+Inf")


def expr_of(name: str, title: str, **variables: str) -> str:
    panel = next(p for p in panels(board(name)["panels"]) if p["title"].startswith(title))
    expr: str = panel["targets"][0]["expr"]
    for variable, value in variables.items():
        expr = expr.replace(f"${variable}", value)
    assert "$" not in expr, expr
    return expr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not found (make system-deps)")
def test_the_queries_give_the_combined_rate_and_the_chosen_threshold(tmp_path: Path) -> None:
    """voice 10 of 100 abandoned, chat 5 of 10: combined 15/110 (max() read chat's 50 %);
    2 api replicas expose the same figures. Voice answers in the last 15 minutes: 150, 75 of
    them within 20 s, 120 within 30 s."""

    def gauge(name: str, channel: str, value: str, **labels: str) -> list[dict[str, str]]:
        extra = "".join(f',{k}="{v}"' for k, v in labels.items())
        return [
            {
                "series": f'{name}{{instance="{i}",level="channel",channel="{channel}",queue=""'
                f"{extra}}}",
                "values": value,
            }
            for i in ("a", "b")
        ]

    series = [
        *gauge("ccpulse_contacts_offered_today", "voice", "100x20"),
        *gauge("ccpulse_contacts_offered_today", "chat", "10x20"),
        *gauge("ccpulse_contacts_abandoned_today", "voice", "10x20", stage="queue"),
        *gauge("ccpulse_contacts_abandoned_today", "chat", "5x20", stage="none"),
        *gauge("ccpulse_abandon_wait_today_seconds_bucket", "voice", "0x20", le="5.0"),
        *gauge("ccpulse_abandon_wait_today_seconds_bucket", "chat", "0x20", le="5.0"),
        *gauge("ccpulse_answer_wait_today_seconds_bucket", "voice", "0+5x20", le="20.0"),
        *gauge("ccpulse_answer_wait_today_seconds_bucket", "voice", "0+8x20", le="30.0"),
        *gauge("ccpulse_answer_wait_today_seconds_count", "voice", "0+10x20"),
    ]
    within = "Answered within"
    tests = {
        "rule_files": [str(ROOT / "deploy/prometheus/rules/ccpulse-recording.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": expr_of("ivr-funnel.json", "Abandon rate today", channel=".*"),
                        "eval_time": "10m",
                        "exp_samples": [{"labels": "{}", "value": 15 / 110}],
                    },
                    {
                        "expr": expr_of(
                            "service-level.json", within, channel="voice", threshold="20.0"
                        ),
                        "eval_time": "15m",
                        "exp_samples": [{"labels": '{channel="voice"}', "value": 0.5}],
                    },
                    {
                        "expr": expr_of(
                            "service-level.json", within, channel=".*", threshold="30.0"
                        ),
                        "eval_time": "15m",
                        "exp_samples": [{"labels": '{channel="voice"}', "value": 0.8}],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "dashboards_test.yml"
    path.write_text(yaml.safe_dump(tests))
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
