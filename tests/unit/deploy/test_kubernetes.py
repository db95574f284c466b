"""deploy/k8s rendered by `kubectl kustomize` for each overlay, every object validated against
the schemas of a current Kubernetes (kubernetes-validate, offline, strict), then the properties
the manifests promise: probes on the paths the apps serve, autoscalers, aggregators no more than
partitions, a disruption budget, the migration Job, settings from a ConfigMap and secrets only
from the Secret, non-root read-only pods with limits.

kubectl comes from the machine or Debian's kubernetes-client (`.ci/system-deps`); without it the
rendering tests skip and say so.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from api.routes.health import router as api_health
from services.settings import Settings
from tests.tools import k8s_monitoring

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
KUBECTL = shutil.which("kubectl")
KUBERNETES = kubernetes_validate.latest_version()
# Settings whose values are secrets, or carry one (a password in the URL): only in the Secret.
SECRET_SETTINGS = {
    f"CCPULSE_{name.upper()}"
    for name, field in Settings.model_fields.items()
    if "SecretStr" in str(field.annotation)
    or name in ("redis_url", "redis_replica_url", "database_url", "sources")
}
Obj = dict[str, Any]
TLS_DIR = "/etc/ccpulse/tls"  # docs/managed-services.md names files under it
# Custom resources of the Prometheus Operator: kubernetes-validate has no schema for them, so they
# are left out of its validation by name and their structure is checked below instead.
OPERATOR_KINDS = {
    (k8s_monitoring.OPERATOR_API, kind)
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule")
}
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    KUBECTL is None,
    reason="kubectl not found: install Debian's kubernetes-client (make system-deps)",
)


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[Obj]:
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "kustomize", str(K8S / "overlays" / request.param)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [o for o in yaml.safe_load_all(done.stdout) if o]


def the(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs(objects: list[Obj]) -> dict[str, Obj]:
    return {
        f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"]["spec"]
        for o in objects
        if o["kind"] in ("Deployment", "Job")
    }


def settings_map(objects: list[Obj]) -> dict[str, str]:
    maps = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("ccpulse-settings")
    ]
    assert len(maps) == 1
    data: dict[str, str] = maps[0]["data"]
    return data


def test_secret_settings_are_known() -> None:
    assert {
        "CCPULSE_HASH_KEY",
        "CCPULSE_ADMIN_KEY",
        "CCPULSE_REDIS_URL",
        "CCPULSE_DATABASE_URL",
        "CCPULSE_INGEST_TOKENS",
    } <= SECRET_SETTINGS


def test_every_object_is_valid_for_a_current_kubernetes(rendered: list[Obj]) -> None:
    assert {o["kind"] for o in rendered} >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
        "ConfigMap",
        "NetworkPolicy",
        "ServiceAccount",
        "ServiceMonitor",
        "PrometheusRule",
    }
    for obj in rendered:
        if (obj["apiVersion"], obj["kind"]) not in OPERATOR_KINDS:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_custom_resources_are_skipped_by_name_only(rendered: list[Obj]) -> None:
    """kubernetes-validate refuses a kind it has no schema for: the skip above is needed, and
    it does not let any other unknown kind through."""
    monitor = the(rendered, "ServiceMonitor", "ccpulse-api")
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(monitor, KUBERNETES, strict=True)
    kinds = {(o["apiVersion"], o["kind"]) for o in rendered}
    assert kinds & OPERATOR_KINDS >= {
        (k8s_monitoring.OPERATOR_API, "ServiceMonitor"),
        (k8s_monitoring.OPERATOR_API, "PrometheusRule"),
    }


def test_service_monitors_scrape_what_prometheus_yml_scrapes(rendered: list[Obj]) -> None:
    """Each scrape job of deploy/prometheus/prometheus.yml: a ServiceMonitor selecting the
    Service of that name on a port it has (or a PodMonitor on the pods' port `metrics` when
    there is no Service), so the `job` label the alert rules use (`up{job="ccpulse-api"}`) is
    the one the Operator gives."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    alerts = (ROOT / "deploy" / "prometheus" / "rules" / "ccpulse-alerts.yml").read_text()
    monitors = [o for o in rendered if o["kind"] in ("ServiceMonitor", "PodMonitor")]
    assert len(monitors) == len(config["scrape_configs"]) >= 2
    for job in config["scrape_configs"]:
        name = job["job_name"]
        (monitor,) = [o for o in monitors if o["metadata"]["name"] == name]
        spec = monitor["spec"]
        if monitor["kind"] == "ServiceMonitor":
            target = the(rendered, "Service", name)
            labels, ports = target["metadata"]["labels"], target["spec"]["ports"]
            (endpoint,) = spec["endpoints"]
        else:
            pod = the(rendered, "Deployment", name)["spec"]["template"]
            labels = pod["metadata"]["labels"]
            ports = [p for c in pod["spec"]["containers"] for p in c.get("ports", [])]
            (endpoint,) = spec["podMetricsEndpoints"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), name
        assert labels[spec["jobLabel"]] == name
        assert endpoint["port"] in {p["name"] for p in ports}, name
        assert endpoint["path"] == job["metrics_path"] == "/metrics"
        assert endpoint["interval"] == config["global"]["scrape_interval"]
        # the api's /metrics needs a viewer key; the others have none
        assert ("authorization" in endpoint) == ("authorization" in job) == (name == "ccpulse-api")
    for name in ("ccpulse-api", "ccpulse-ingest"):
        assert f'job="{name}"' in alerts
        assert the(rendered, "ServiceMonitor", name)
    key = the(rendered, "ServiceMonitor", "ccpulse-api")["spec"]["endpoints"][0]["authorization"]
    assert key == {
        "type": "Bearer",
        "credentials": {"name": "ccpulse-prometheus", "key": "viewer-key"},
    }


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not found (make system-deps)")
def test_prometheus_rules_are_the_rule_files_and_promtool_accepts_them(
    rendered: list[Obj], tmp_path: Path
) -> None:
    assert PROMTOOL is not None
    sources = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
    rules = [o for o in rendered if o["kind"] == "PrometheusRule"]
    assert len(rules) == len(sources) == 2
    for path in sources:
        spec = the(rendered, "PrometheusRule", path.stem)["spec"]
        assert spec == {"groups": yaml.safe_load(path.read_text())["groups"]}
        extracted = tmp_path / path.name
        extracted.write_text(yaml.safe_dump(spec))
        done = subprocess.run(
            [PROMTOOL, "check", "rules", str(extracted)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_dashboards_config_map_for_the_grafana_sidecar(rendered: list[Obj]) -> None:
    board = the(rendered, "ConfigMap", "ccpulse-dashboards")
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    sources = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
    assert board["data"] == {p.name: p.read_text() for p in sources}
    assert {json.loads(text)["uid"] for text in board["data"].values()} == {
        json.loads(p.read_text())["uid"] for p in sources
    }
    # a ConfigMap holds 1 MiB; kubectl apply keeps a copy in an annotation limited to 256 KiB
    assert len(json.dumps(board["data"])) < 256 * 1024


def test_the_validation_rejects_a_broken_object(rendered: list[Obj]) -> None:
    broken = copy.deepcopy(the(rendered, "Deployment", "ccpulse-api"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)
    typo = copy.deepcopy(the(rendered, "Deployment", "ccpulse-ingest"))
    typo["spec"]["replicaz"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES, strict=True)


def test_the_probes_use_the_paths_the_apps_serve(rendered: list[Obj]) -> None:
    api_paths = {route.path for route in api_health.routes}  # type: ignore[attr-defined]
    ingest_source = (ROOT / "ingest" / "app.py").read_text()
    for name, port, served in [
        ("api", 8000, lambda path: path in api_paths),
        ("ingest", 8001, lambda path: f'@app.get("{path}"' in ingest_source),
    ]:
        container = the(rendered, "Deployment", f"ccpulse-{name}")["spec"]["template"]["spec"][
            "containers"
        ][0]
        assert container["args"] == ["ccpulse", name]
        assert [p["containerPort"] for p in container["ports"]] == [port]
        ready, live = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
        assert (ready["path"], ready["port"]) == ("/readyz", port)
        assert (live["path"], live["port"]) == ("/healthz", port)
        assert served("/readyz") and served("/healthz"), name
        service = the(rendered, "Service", f"ccpulse-{name}")
        assert service["spec"]["ports"][0]["port"] == port


def test_api_and_ingest_scale_with_an_autoscaler(rendered: list[Obj]) -> None:
    for name in ("api", "ingest"):
        hpa = the(rendered, "HorizontalPodAutoscaler", f"ccpulse-{name}")["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": f"ccpulse-{name}",
        }
        assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
        assert "replicas" not in the(rendered, "Deployment", f"ccpulse-{name}")["spec"]


def test_aggregators_never_outnumber_partitions(rendered: list[Obj]) -> None:
    partitions = int(settings_map(rendered)["CCPULSE_KAFKA_PARTITIONS"])
    aggregator = the(rendered, "Deployment", "ccpulse-aggregator")
    assert 1 <= aggregator["spec"]["replicas"] <= partitions
    assert "HorizontalPodAutoscaler" not in {
        o["kind"] for o in rendered if o["metadata"]["name"] == "ccpulse-aggregator"
    }
    budget = the(rendered, "PodDisruptionBudget", "ccpulse-aggregator")["spec"]
    pod_labels = aggregator["spec"]["template"]["metadata"]["labels"]
    assert budget["selector"]["matchLabels"].items() <= pod_labels.items()
    container = aggregator["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["exec"]["command"][-2:] == [
        "/app/deploy/healthcheck.py",
        "aggregator",
    ]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY deploy/healthcheck.py deploy/healthcheck.py" in dockerfile
    assert re.search(r"^WORKDIR /app$", dockerfile, re.M)


def test_the_migration_job(rendered: list[Obj]) -> None:
    job = the(rendered, "Job", "ccpulse-migrate")["spec"]
    assert job["template"]["spec"]["containers"][0]["args"] == ["ccpulse", "db", "upgrade"]
    assert job["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


def test_settings_from_the_config_map_and_secrets_from_the_secret(rendered: list[Obj]) -> None:
    config = settings_map(rendered)
    known = {f"CCPULSE_{name.upper()}" for name in Settings.model_fields}
    assert set(config) <= known, set(config) - known
    assert set(config) & SECRET_SETTINGS == set()
    config_name = next(
        o["metadata"]["name"]
        for o in rendered
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("ccpulse-settings")
    )
    for where, spec in pod_specs(rendered).items():
        for container in spec["containers"]:
            refs = container["envFrom"]
            assert {"configMapRef": {"name": config_name}} in refs, where
            assert {"secretRef": {"name": "ccpulse"}} in refs, where
            assert "env" not in container, f"{where}: settings belong in the ConfigMap or Secret"


def test_pods_run_as_non_root_read_only_with_limits(rendered: list[Obj]) -> None:
    user = re.search(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert user is not None
    for where, spec in pod_specs(rendered).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == int(user.group(1)), where
        assert spec["automountServiceAccountToken"] is False, where
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            resources = container["resources"]
            assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            assert set(mounts) == {"/tmp", TLS_DIR}, where
            assert mounts[TLS_DIR].get("readOnly") is True, where


def test_every_pod_mounts_the_optional_tls_secret(rendered: list[Obj]) -> None:
    """CA files and client certificates of managed Kafka / Redis: every process builds Settings,
    which refuses a named file it cannot read, so the migration Job needs them as well."""
    for where, spec in pod_specs(rendered).items():
        volumes = {v["name"]: v for v in spec["volumes"]}
        (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == TLS_DIR]
        secret = volumes[mount["name"]]["secret"]
        assert secret["secretName"] == "ccpulse-tls" and secret["optional"] is True, where


def test_the_image_is_pinned(rendered: list[Obj]) -> None:
    for where, spec in pod_specs(rendered).items():
        image = spec["containers"][0]["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), where
