"""deploy/k8s/monitoring equals what tests/tools/k8s_monitoring.py generates from
deploy/prometheus and deploy/grafana (one source of truth), and the drift check catches an edited,
missing or extra file. The rendered objects are checked in test_kubernetes.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from tests.tools import k8s_monitoring

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_objects_equal_their_sources() -> None:
    assert k8s_monitoring.stale() == [], "run make k8s-monitoring"


def test_the_drift_check_catches_an_edit_a_missing_and_an_extra_file(tmp_path: Path) -> None:
    copy = tmp_path / "monitoring"
    shutil.copytree(k8s_monitoring.TARGET, copy)
    assert k8s_monitoring.stale(copy) == []
    rule = copy / "prometheusrule-ccpulse-alerts.yaml"
    rule.write_text(rule.read_text().replace("> 0.15", "> 0.25"))
    (copy / "servicemonitors.yaml").unlink()
    (copy / "by-hand.yaml").write_text("kind: ConfigMap\n")
    assert k8s_monitoring.stale(copy) == [
        "by-hand.yaml",
        "prometheusrule-ccpulse-alerts.yaml",
        "servicemonitors.yaml",
    ]
    assert k8s_monitoring.main(["--check"]) == 0


def test_the_objects_carry_the_sources_unchanged() -> None:
    """Parsed back, the generated YAML holds the rule files' groups and the dashboards' text."""
    target = k8s_monitoring.TARGET
    for path in sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")):
        rule = yaml.safe_load((target / f"prometheusrule-{path.stem}.yaml").read_text())
        assert rule["spec"]["groups"] == yaml.safe_load(path.read_text())["groups"]
    dashboards = yaml.safe_load((target / "grafana-dashboards.yaml").read_text())
    sources = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
    assert sorted(dashboards["data"]) == [p.name for p in sources]
    for path in sources:
        assert dashboards["data"][path.name] == path.read_text()
        json.loads(dashboards["data"][path.name])


def test_a_job_without_a_service_becomes_a_pod_monitor() -> None:
    """One target per pod (the aggregators' own /metrics): PodMonitor on the port `metrics`."""
    job = {"job_name": "ccpulse-aggregator", "metrics_path": "/metrics"}
    monitor = k8s_monitoring.service_monitor(job, "15s", k8s_monitoring.k8s_services())
    assert monitor["kind"] == "PodMonitor"
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s"}
    ]
    assert monitor["spec"]["selector"] == {
        "matchLabels": {"app.kubernetes.io/name": "ccpulse-aggregator"}
    }
    api = {"job_name": "ccpulse-api", "metrics_path": "/metrics"}
    assert k8s_monitoring.service_monitor(api, "15s", {"ccpulse-api"})["kind"] == "ServiceMonitor"
