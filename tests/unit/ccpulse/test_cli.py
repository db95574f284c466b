"""The `ccpulse` command's surface, in process: every subcommand listed, typed choices refused
with a message naming the option, the version, and the one place that reads the environment."""

from __future__ import annotations

import ast
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ccpulse.cli import app
from ccpulse.launch import RUN_FILE, beside_running_stack
from ccpulse.processes import RunFile, free_port
from services.apikeys import Role, RoleName
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
PRODUCT = ("ccpulse", "services", "ingest", "aggregator", "api", "simulator")
WIDE = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}  # no wrapping inside a word


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=WIDE, prog_name="ccpulse")
    return result.exit_code, result.output


def test_help_lists_every_subcommand() -> None:
    code, text = invoke("--help")
    assert code == 0
    for name in ("up", "stack", "ingest", "aggregator", "api", "simulate", "tail-queue-log"):
        assert f" {name} " in text, name
    for name in ("replay", "keys", "db", "history"):
        assert f" {name} " in text, name
    assert " rebuild " in invoke("history", "--help")[1]
    assert " import " in invoke("history", "--help")[1]
    assert " upgrade " in invoke("db", "--help")[1]


def test_version_is_the_package_version() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    code, text = invoke("--version")
    assert code == 0
    assert text.strip() == f"ccpulse {declared}" == f"ccpulse {version('ccpulse')}"


def test_keys_help_shows_its_choices() -> None:
    text = invoke("keys", "--help")[1]
    assert "create" in text and "revoke" in text and "planner" in text


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("keys", "frobnicate"), "'action'"),
        (("keys", "create", "--role", "owner"), "--role"),
        (("history", "import", "x.csv", "--format", "xlsx"), "--format"),
        (("history", "rebuild", "--from", "yesterday", "--to", "2026-01-02"), "--from"),
        (("replay", "--since", "soon"), "--since"),
        (("keys", "revoke"), "--id"),
    ],
)
def test_a_bad_value_is_refused_naming_the_option(args: tuple[str, ...], option: str) -> None:
    code, text = invoke(*args)
    assert code == 2, text
    assert option in text and "Traceback" not in text, text


def test_the_role_choices_are_the_roles() -> None:
    assert [r.value for r in RoleName] == [r.name for r in Role]


def _reads_environment(tree: ast.AST) -> list[int]:
    """Lines that build Settings from the environment or read it directly."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in ("Settings", "load_settings", "getenv"):
                lines.append(node.lineno)
            if any(k.arg == "envvar" for k in node.keywords):
                lines.append(node.lineno)
        if isinstance(node, ast.Attribute) and node.attr == "environ":
            lines.append(node.lineno)
    return lines


def test_only_main_modules_and_the_cli_read_the_environment() -> None:
    allowed = {ROOT / "ccpulse" / "cli.py", ROOT / "services" / "settings.py"}
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "__main__.py" and path not in allowed
        for line in _reads_environment(ast.parse(path.read_text()))
    ]
    assert found == []


def test_replay_without_a_broker_says_so(tmp_path: Path) -> None:
    env = {**WIDE, "CCPULSE_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, ["replay"], env=env, prog_name="ccpulse")
    assert result.exit_code == 1
    assert "no broker: set CCPULSE_KAFKA_BOOTSTRAP" in result.stderr, result.output


def test_commands_beside_up_use_its_broker_and_redis(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth="off")
    assert beside_running_stack(settings) == settings  # nothing running: nothing filled in
    RunFile(tmp_path / RUN_FILE).update(kafka_bootstrap="127.0.0.1:1", redis_url="redis://x:2/0")
    running = beside_running_stack(settings)
    assert (running.kafka_bootstrap, running.redis_url) == ("127.0.0.1:1", "redis://x:2/0")
    assert running.kafka_idempotence is False  # the embedded broker has no idempotent producer
    configured = settings.model_copy(update={"redis_url": "redis://mine:3/0"})
    assert beside_running_stack(configured).redis_url == "redis://mine:3/0"
    sentinel = settings.model_copy(
        update={"redis_sentinels": ["127.0.0.1:26379"], "redis_sentinel_service": "m"}
    )
    assert beside_running_stack(sentinel).redis_url is None  # Sentinel names the Redis


def test_keys_without_redis_says_where_it_looked(tmp_path: Path) -> None:
    url = f"redis://:{'p' * 32}@127.0.0.1:{free_port()}/0"  # nothing listens there
    env = {**WIDE, "CCPULSE_DATA_DIR": str(tmp_path), "CCPULSE_REDIS_URL": url}
    result = CliRunner().invoke(app, ["keys", "list"], env=env, prog_name="ccpulse")
    assert result.exit_code == 1, result.output
    assert "cannot reach Redis at redis://:***@127.0.0.1:" in result.stderr, result.output
    assert "p" * 32 not in result.output


def test_the_start_banner_names_the_kafka_protocol_and_sentinel_without_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pydantic import SecretStr

    from ccpulse.launch import _print_infra

    secret = "sasl-secret-0123456789-0123456789"
    settings = Settings(
        kafka_bootstrap="kafka.example:9093",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password=SecretStr(secret),
        redis_password=SecretStr(secret),
        redis_sentinels=["10.0.0.1:26379"],
        redis_sentinel_service="main",
    )
    _print_infra(settings, reveal=False)
    out = capsys.readouterr().out
    assert "kafka  kafka.example:9093 (SASL_PLAINTEXT)" in out
    assert "redis  sentinel main at ['10.0.0.1:26379']" in out
    assert secret not in out


def test_simulate_prices_the_demo_unless_costs_are_set() -> None:
    """`up --simulate` shows cost per case on a first run, never over an installation's costs."""
    import json as _json

    from ccpulse.launch import demo_cost_env
    from services.settings import Settings as _Settings

    env = demo_cost_env(_Settings(_env_file=None))
    assert _json.loads(env["CCPULSE_CHANNEL_COST_PER_HOUR"])["voice"] > 0
    assert demo_cost_env(_Settings(_env_file=None, cost_per_hour=40.0)) == {}
    assert demo_cost_env(_Settings(_env_file=None, queue_cost_per_hour={"vip": 50.0})) == {}
