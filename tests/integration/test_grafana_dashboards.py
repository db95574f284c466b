"""deploy/grafana/: every dashboard query names only metrics the running services expose.

A real pipeline (embedded broker, Redis, the three processes) takes a simulated hour; then its
api and ingest `/metrics` are scraped and every metric name in every panel query and template
variable must be among their samples or the recording rules of deploy/prometheus/rules.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from simulator.scenario import Day, generate, iso
from tests.clock import clock
from tests.conftest import PipelineFactory

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
RULES = ROOT / "deploy" / "prometheus" / "rules"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
EXPECTED = {"queue-overview", "ivr-funnel", "service-level", "agents"}

# PromQL words that are not metric names; functions are told apart by the "(" that follows.
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
    "atan2",
}
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def midday_zone(now_s: float) -> str:
    """A zone where today began hours ago, so today's families have samples at any hour."""
    zones = ["Etc/GMT", *(f"Etc/GMT{s}{n}" for n in range(1, 13) for s in "+-")]

    def distance(zone: str) -> float:
        local = datetime.fromtimestamp(now_s, ZoneInfo(zone))
        return abs(local.hour + local.minute / 60 - 12)

    return min(zones, key=distance)


def panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    out: list[dict[str, Any]] = []
    for panel in items:
        out.append(panel)
        out.extend(panels(panel.get("panels", [])))
    return out


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    out = [
        (f"{board['uid']}/{panel['title']}/{target['refId']}", target["expr"])
        for panel in panels(board["panels"])
        for target in panel.get("targets", [])
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["definition"])
            assert match, variable["definition"]
            out.append((f"{board['uid']}/${variable['name']}", match.group(1)))
    return out


def promql(expr: str) -> str:
    """The query as Prometheus receives it: Grafana variables replaced."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return re.sub(r"\$\w+", ".*", expr)


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords,
    label names (in matchers and by/without/on lists), durations or strings."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql(expr))
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", text):
        if match.group(1).lower() not in KEYWORDS:
            names.add(match.group(1))
    return names


def scrape(url: str) -> set[str]:
    response = httpx.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    return {s.name for f in text_string_to_metric_families(response.text) for s in f.samples}


def rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in sorted(RULES.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def recording_rules() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def test_metric_names_are_found_in_queries() -> None:
    """The extractor itself, on the shapes the dashboards use."""
    expr = (
        'histogram_quantile(0.9, max by (channel, le) (a_bucket{channel=~"$channel", le="20.0"}))'
        " / sum(rate(b_total[$__rate_interval] offset 1w)) and on () c:d:e"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c:d:e"}


def test_provisioning_points_at_the_dashboards() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/ccpulse.yml").read_text())
    uids = {s["uid"] for s in sources["datasources"]}
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/ccpulse.yml").read_text())
    assert [p["type"] for p in providers["providers"]] == ["file"]
    assert {p.stem for p in DASHBOARDS} >= EXPECTED
    seen = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] not in seen, path
        seen.add(board["uid"])
        variable = next(v for v in board["templating"]["list"] if v["name"] == "datasource")
        assert variable["current"]["value"] in uids, path
        for panel in panels(board["panels"]):
            if panel["type"] != "row":
                assert panel["targets"], f"{path.name}: {panel['title']} has no query"


def test_every_query_names_only_exposed_metrics(
    pipeline_factory: PipelineFactory, tmp_path: Path
) -> None:
    zone = midday_zone(clock.now())
    pipeline = pipeline_factory({"CCPULSE_TIMEZONE": zone, "CCPULSE_METRICS_PER_AGENT": "true"})
    now = clock.now()
    events = generate(Day(seed=41, busy_factor=2.0, prefix="graf"), now - 3600, 300, 300 / 3600)
    events = [e for e in events if e["time"] <= iso(now - 1)]
    pipeline.post(events)
    refused = httpx.post(f"{pipeline.ingest_url}/v1/events", content=b"{not json", timeout=10)
    assert refused.status_code == 400  # the ingest's refusal counter gets a sample
    pipeline.wait_applied(len(events))
    exposed = scrape(pipeline.api_url) | scrape(pipeline.ingest_url)
    valid = exposed | recording_rules() | {"up"}
    missing = {
        (where, name)
        for path in DASHBOARDS
        for where, expr in queries(json.loads(path.read_text()))
        for name in metric_names(expr)
        if name not in valid
    }
    assert not missing, f"queries name metrics nobody exposes: {sorted(missing)}"
    # The Prometheus rules too: a renamed family must not silence an alert.
    in_rules = {name for rule in rules() for name in metric_names(rule["expr"])}
    assert in_rules - valid == set(), f"rules name metrics nobody exposes: {in_rules - valid}"
    check_syntax(tmp_path)


def check_syntax(tmp_path: Path) -> None:
    """Every query parses as PromQL (promtool, as recording rules), when promtool is here."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return
    rules = [
        {"record": f"dashboard:query_{i}", "expr": promql(expr)}
        for i, (_, expr) in enumerate(
            q for path in DASHBOARDS for q in queries(json.loads(path.read_text()))
        )
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
