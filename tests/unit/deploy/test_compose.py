"""deploy/docker-compose.yml as compose reads it: the start-up graph, healthchecks, pinned images,
loopback ports, secrets from the environment, Kafka's storage, Alertmanager; and the Dockerfile.

Read with Debian's `docker-compose config` (1.29, `.ci/system-deps` installs it) when present, so
the file is checked by compose itself; PyYAML otherwise (same checks, no compose validation).
Nothing here starts a container: this machine has no Docker engine (deploy/README.md).
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKER_COMPOSE = shutil.which("docker-compose")
SECRETS = {
    "REDIS_PASSWORD": "redis-sentinel-pw-4f1c",
    "POSTGRES_PASSWORD": "postgres-sentinel-pw-9a2e",
    "GRAFANA_ADMIN_PASSWORD": "grafana-sentinel-pw-77b0",
}
Config = dict[str, Any]


def render(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert DOCKER_COMPOSE is not None
    return subprocess.run(
        [DOCKER_COMPOSE, "-f", str(COMPOSE), "config"],
        cwd=DEPLOY,
        env={"PATH": "/usr/bin:/bin", "HOME": str(DEPLOY), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def config() -> Config:
    if DOCKER_COMPOSE is None:
        loaded: Config = yaml.safe_load(interpolate(COMPOSE.read_text(), SECRETS))
        return loaded
    done = render(SECRETS)
    assert done.returncode == 0, done.stderr
    rendered: Config = yaml.safe_load(done.stdout)
    return rendered


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution, for the PyYAML fallback: ${X}, ${X:?err}, ${X:-default}."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in env:
            return env[name]
        assert op != ":?", f"{name} is required: {arg}"
        return arg

    text = re.sub(r"(?<!\$)\$\{(\w+)(:[?-])?([^}]*)\}", value, text)
    return text.replace("$$", "$")


def conditions(service: Config) -> dict[str, str]:
    """depends_on as {service: condition}; the short list form means merely "started"."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def has_healthcheck(service: Config) -> bool:
    check = service.get("healthcheck")
    if not check or check.get("disable"):
        return False
    return bool(check.get("test")) and check["test"] != ["NONE"]


def one_shot(service: Config) -> bool:
    return str(service.get("restart", "no")) == "no"


def graph_problems(config: Config) -> list[str]:
    """Every way a first `up` could start something before what it needs is ready."""
    services: dict[str, Config] = config["services"]
    problems = []
    for name, service in services.items():
        if not one_shot(service) and not has_healthcheck(service):
            problems.append(f"{name}: long-running without a healthcheck")
        for target, condition in conditions(service).items():
            if target not in services:
                problems.append(f"{name} depends on unknown {target}")
            elif condition == "service_healthy" and not has_healthcheck(services[target]):
                problems.append(f"{name} waits for {target} healthy, which has no healthcheck")
            elif condition == "service_completed_successfully" and not one_shot(services[target]):
                problems.append(f"{name} waits for {target} to complete, which restarts")
            elif condition not in ("service_healthy", "service_completed_successfully"):
                problems.append(f"{name} waits only for {target} to have started ({condition})")
    return problems


def published_hosts(service: Config) -> list[str]:
    """The host address of each published port ('' for every interface)."""
    hosts = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            hosts.append(str(port.get("host_ip", "")))
            continue
        parts = str(port).split("/")[0].split(":")
        hosts.append(parts[0] if len(parts) == 3 else "")
    return hosts


def test_the_start_up_graph_waits_for_health_or_completion(config: Config) -> None:
    assert graph_problems(config) == []


def test_the_check_fails_when_a_healthcheck_is_removed(config: Config) -> None:
    for name in ("postgres", "kafka", "redis", "alertmanager"):
        broken = copy.deepcopy(config)
        del broken["services"][name]["healthcheck"]
        assert any(name in problem for problem in graph_problems(broken)), name
    started = copy.deepcopy(config)
    started["services"]["ingest"]["depends_on"] = ["kafka-topics"]
    assert graph_problems(started) == [
        "ingest waits only for kafka-topics to have started (service_started)"
    ]


def test_the_required_order(config: Config) -> None:
    want = {
        "migrate": {"postgres": "service_healthy"},
        "aggregator": {
            "migrate": "service_completed_successfully",
            "kafka-topics": "service_completed_successfully",
        },
        "api": {"migrate": "service_completed_successfully"},
        "ingest": {"kafka-topics": "service_completed_successfully"},
        "kafka-topics": {"kafka": "service_healthy"},
    }
    for name, edges in want.items():
        got = conditions(config["services"][name])
        assert {k: got.get(k) for k in edges} == edges, name


def test_ports_are_published_on_loopback_only(config: Config) -> None:
    published = {n: published_hosts(s) for n, s in config["services"].items() if s.get("ports")}
    assert {"api", "ingest", "prometheus", "grafana", "alertmanager"} <= set(published)
    assert {n: h for n, h in published.items() if set(h) != {"127.0.0.1"}} == {}


def test_images_are_pinned_and_the_ccpulse_image_is_built_once(config: Config) -> None:
    services: dict[str, Config] = config["services"]
    built = {n: s["image"] for n, s in services.items() if s.get("build")}
    assert len(built) == 1, built
    own = next(iter(built.values()))
    users = sorted(n for n, s in services.items() if s.get("image") == own)
    assert users == ["aggregator", "api", "ingest", "migrate"]
    assert {n: services[n].get("pull_policy") for n in users if not services[n].get("build")} == {
        "aggregator": "never",
        "api": "never",
        "ingest": "never",
    }
    for name, service in services.items():
        image = service.get("image", "")
        assert image, f"{name} has no image"
        if image == own:
            continue
        _, _, tag = image.rpartition(":")
        assert tag and "/" not in tag and tag != "latest", f"{name}: {image} is not pinned"
        assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?", tag), f"{name}: {image} names a bare major"
    redis_tag = services["redis"]["image"].rpartition(":")[2]
    assert re.fullmatch(r"7\.\d+\.\d+", redis_tag), services["redis"]["image"]


def test_restart_policies(config: Config) -> None:
    for name, service in config["services"].items():
        expected = "no" if name in ("migrate", "kafka-topics") else "unless-stopped"
        assert str(service.get("restart")) == expected, name


def test_passwords_come_from_the_environment() -> None:
    raw = COMPOSE.read_text()
    assert "POSTGRES_PASSWORD: ccpulse" not in raw and "ccpulse:ccpulse@" not in raw
    for name in SECRETS:
        assert "${" + name + ":?" in raw, f"{name} must be required from the environment"
    for path in (DEPLOY / "ccpulse.env", DEPLOY / "compose.env.example"):
        assert "ccpulse:ccpulse@" not in path.read_text(), path


def test_the_secrets_reach_the_services(config: Config) -> None:
    services = config["services"]
    redis_pw, pg_pw = SECRETS["REDIS_PASSWORD"], SECRETS["POSTGRES_PASSWORD"]
    assert services["redis"]["environment"]["REDIS_PASSWORD"] == redis_pw
    assert "--requirepass" in " ".join(services["redis"]["command"])
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == pg_pw
    for name in ("migrate", "ingest", "aggregator", "api"):
        env = services[name]["environment"]
        assert f":{redis_pw}@redis:" in env["CCPULSE_REDIS_URL"], name
        assert f":{pg_pw}@postgres/" in env["CCPULSE_DATABASE_URL"], name


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose not found (make system-deps)")
def test_compose_refuses_to_start_without_the_passwords() -> None:
    done = render({k: v for k, v in SECRETS.items() if k != "REDIS_PASSWORD"})
    assert done.returncode != 0
    assert "REDIS_PASSWORD" in done.stderr


def test_kafka_keeps_its_data_on_the_volume(config: Config) -> None:
    kafka = config["services"]["kafka"]
    env = kafka["environment"]
    mounts = [str(v).split(":")[1] if isinstance(v, str) else v["target"] for v in kafka["volumes"]]
    assert env["KAFKA_LOG_DIRS"] in mounts
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", str(env["CLUSTER_ID"]))


def test_the_topic_job_creates_every_topic_the_code_uses(config: Config) -> None:
    from services.keys import ALL_TOPICS

    command = " ".join(config["services"]["kafka-topics"]["command"])
    listed = re.search(r"for t in ([^;]+);", command)
    assert listed is not None, command
    assert sorted(listed.group(1).split()) == sorted(ALL_TOPICS)
    readme = (DEPLOY / "README.md").read_text()
    assert all(topic in readme for topic in ALL_TOPICS)


def test_prometheus_alerts_reach_the_alertmanager_service(config: Config) -> None:
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = [
        target
        for manager in prometheus["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    assert targets == ["alertmanager:9093"]
    alertmanager = config["services"]["alertmanager"]
    assert "alertmanager:" in alertmanager["image"]
    volumes = [
        str(v) if isinstance(v, str) else f"{v['source']}:{v['target']}"
        for v in alertmanager["volumes"]
    ]
    mounted = [v.split(":")[0] for v in volumes if "alertmanager.yml" in v]
    assert len(mounted) == 1
    source = Path(mounted[0]) if Path(mounted[0]).is_absolute() else DEPLOY / mounted[0]
    assert source.resolve() == (DEPLOY / "alertmanager" / "alertmanager.yml").resolve()
    assert any(
        "--config.file=/etc/alertmanager/alertmanager.yml" in c for c in alertmanager["command"]
    )


def test_the_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    node = re.search(r"^FROM node:(\d+)", text, re.M)
    assert node and int(node.group(1)) >= 22, "node image past its end of life"
    lock_install = text.index("--require-hashes -r requirements/prod.lock")
    assert lock_install < text.index("COPY services"), "dependencies not in their own layer"
    assert re.search(r"^HEALTHCHECK .*deploy/healthcheck\.py", text, re.M | re.S)
    assert re.search(r"^USER \d+", text, re.M), "a numeric non-root user (runAsNonRoot)"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"**/node_modules", ".venv", "var"} <= set(ignored)
