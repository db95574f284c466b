"""What `ccpulse up` and `ccpulse stack` run: the secrets they keep, the infrastructure they start
when the settings name none, and the children they supervise, wired by `CCPULSE_*` variables.

It reads no environment: the CLI hands it the settings and, for the children, the parent's
environment to extend.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from pydantic import SecretStr

from services import database
from services.apikeys import new_key
from services.keys import ALL_TOPICS
from services.settings import Settings

from .processes import RunFile, write_private
from .stack import EmbeddedBroker, EmbeddedRedis
from .supervise import ChildSpec, ShutdownSignal, Supervisor

# `ccpulse up`'s aggregator serves its own /metrics here unless the setting says otherwise.
EMBEDDED_AGGREGATOR_METRICS_PORT = 8002
# New contacts a second at the busiest hour of the day (simulator/center.py sizes the team for it:
# about 115 agents at the peak, a dozen in the evening, a handful at night).
DEFAULT_RATE = 0.3
RUN_FILE = Path("run") / "ccpulse.json"
SECRETS_FILE = "secrets.json"
DEFAULT_HASH_KEY = Settings.model_fields["hash_key"].get_default().get_secret_value()
# Start downstream first; the supervisor stops in reverse: simulator, ingest, aggregator, api.
START_ORDER = ("api", "aggregator", "ingest", "simulator")

ChildFactory = Callable[[Settings], list[ChildSpec]]


def connect_host(host: str) -> str:
    """A wildcard bind address is not something to connect to; use loopback instead."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def ingest_url(settings: Settings) -> str:
    return f"http://{connect_host(settings.ingest_host)}:{settings.ingest_port}"


def wallboard_url(settings: Settings) -> str:
    return f"http://{connect_host(settings.api_host)}:{settings.api_port}"


def child_env(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment plus the resolved wiring, so children build the same Settings."""
    env = dict(base)
    wiring = {
        "CCPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CCPULSE_REDIS_URL": settings.redis_url,
        "CCPULSE_DATABASE_URL": settings.database_url,
        "CCPULSE_DATA_DIR": str(settings.data_dir),
    }
    env.update({key: value for key, value in wiring.items() if value is not None})
    env.update(_access_env(settings))
    if settings.aggregator_metrics_port is None:
        env["CCPULSE_AGGREGATOR_METRICS_PORT"] = str(EMBEDDED_AGGREGATOR_METRICS_PORT)
    if settings.kafka_idempotence is not None:
        env["CCPULSE_KAFKA_IDEMPOTENCE"] = str(settings.kafka_idempotence).lower()
    return env


def _access_env(settings: Settings) -> dict[str, str]:
    env: dict[str, str] = {"CCPULSE_HASH_KEY": settings.hash_key.get_secret_value()}
    if settings.admin_key is not None:
        env["CCPULSE_ADMIN_KEY"] = settings.admin_key.get_secret_value()
    if settings.viewer_key is not None:
        env["CCPULSE_VIEWER_KEY"] = settings.viewer_key.get_secret_value()
    if settings.planner_key is not None:
        env["CCPULSE_PLANNER_KEY"] = settings.planner_key.get_secret_value()
    tokens = [t.get_secret_value() for t in settings.ingest_tokens]
    if tokens:
        env["CCPULSE_INGEST_TOKENS"] = json.dumps(tokens)
        env["CCPULSE_INGEST_TOKEN"] = tokens[0]  # what the simulator sends
    return env


def with_access_keys(settings: Settings) -> Settings:
    """Fill in the secrets left unset (or the built-in hash key) from DATA_DIR/secrets.json,
    generating the missing ones, so the TV's link and the hashes survive restarts."""
    stored = _stored_secrets(settings.data_dir / SECRETS_FILE)
    update: dict[str, Any] = {}
    if settings.hash_key.get_secret_value() == DEFAULT_HASH_KEY:
        update["hash_key"] = SecretStr(stored["hash_key"])
    if settings.auth == "on":
        if settings.admin_key is None:
            update["admin_key"] = SecretStr(stored["admin_key"])
        if settings.viewer_key is None:
            update["viewer_key"] = SecretStr(stored["viewer_key"])
        if settings.planner_key is None:
            update["planner_key"] = SecretStr(stored["planner_key"])
        if not settings.ingest_tokens:
            update["ingest_tokens"] = [SecretStr(stored["ingest_token"])]
    return settings.model_copy(update=update)


def _stored_secrets(path: Path) -> dict[str, str]:
    """Read, complete and rewrite the file; created 0600, so it is never readable by others."""
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [
        k
        for k in ("hash_key", "admin_key", "viewer_key", "planner_key", "ingest_token")
        if k not in stored
    ]
    if missing or path.stat().st_mode & 0o077:
        stored.update({name: new_key() for name in missing})
        write_private(path, json.dumps(stored))
    return stored


def default_commands(
    settings: Settings, *, simulate: bool, rate: float, python: str
) -> dict[str, list[str]]:
    commands = {name: [python, "-m", name] for name in ("api", "aggregator", "ingest")}
    if simulate:
        url = ingest_url(settings)
        # `ccpulse simulate`, the one definition of its options (the simulator has no entry point)
        commands["simulator"] = [python, "-m", "ccpulse", "simulate", "--rate", str(rate)]
        commands["simulator"] += ["--url", url]
    return commands


# `up --simulate` prices the demo's agent hours when no hourly cost is set, so the planning page
# shows cost per case on a first run (the page marks demo history as such).
DEMO_COST_PER_HOUR = 26.0
DEMO_CHANNEL_COST_PER_HOUR = {
    "voice": 32.0,
    "chat": 28.0,
    "email": 26.0,
    "sms": 26.0,
    "social": 26.0,
}


def demo_cost_env(settings: Settings) -> dict[str, str]:
    """The demo's hourly costs, unless the installation set any of its own."""
    if settings.cost_per_hour is not None or settings.channel_cost_per_hour:
        return {}
    if settings.queue_cost_per_hour:
        return {}
    return {
        "CCPULSE_CHANNEL_COST_PER_HOUR": json.dumps(DEMO_CHANNEL_COST_PER_HOUR),
        "CCPULSE_COST_PER_HOUR": str(DEMO_COST_PER_HOUR),  # idle time is priced too
    }


def build_children(
    settings: Settings,
    *,
    python: str = sys.executable,
    simulate: bool = False,
    rate: float = DEFAULT_RATE,
    base_env: Mapping[str, str] | None = None,
    commands: Mapping[str, Sequence[str]] | None = None,
) -> list[ChildSpec]:
    """Children in start order, each with `base_env` plus the wiring; `commands` (name -> argv)
    replaces the real ones in tests."""
    if commands is None:
        commands = default_commands(settings, simulate=simulate, rate=rate, python=python)
    env = child_env(settings, base_env or {})
    if simulate:
        env = {**env, **demo_cost_env(settings)}
    rank = {name: i for i, name in enumerate(START_ORDER)}
    names = sorted(commands, key=lambda name: rank.get(name, len(rank)))
    return [ChildSpec(name, tuple(commands[name]), env) for name in names]


@contextlib.contextmanager
def infrastructure(settings: Settings, run_file: RunFile) -> Iterator[Settings]:
    """Start what the settings leave unset; yield settings naming the real addresses.

    Redis keeps an append-only file under data_dir/redis, so live state survives a restart.
    """
    data_dir = settings.data_dir
    resolved: dict[str, object] = {}
    with contextlib.ExitStack() as stack:
        if settings.redis_url is None and not settings.redis_sentinels:  # Sentinel: external
            redis = stack.enter_context(
                EmbeddedRedis(data_dir / "redis", log_dir=data_dir / "logs")
            )
            resolved["redis_url"] = redis.url
            run_file.update(redis_pid=redis.pid)
        if settings.kafka_bootstrap is None:
            broker = stack.enter_context(EmbeddedBroker(data_dir / "logs"))
            broker.create_topics(
                [settings.topic(name) for name in ALL_TOPICS],
                settings.kafka_partitions,
                {"retention.ms": str(settings.kafka_retention_ms)},
            )
            resolved.update(kafka_bootstrap=broker.bootstrap, kafka_idempotence=False)
            run_file.update(broker_pid=broker.pid)
        if settings.database_url is None:
            resolved["database_url"] = f"sqlite+aiosqlite:///{data_dir / 'ccpulse.db'}"
        final = settings.model_copy(update=resolved)
        database.upgrade(final)  # history schema first: the aggregator writes it from the start
        run_file.update(
            kafka_bootstrap=final.kafka_bootstrap,
            redis_url=final.redis_url,
            database_url=final.database_url,
        )
        yield final


def masked_url(url: str | None) -> str | None:
    """The URL with its password replaced by `***`: start-up output ends up in logs."""
    if url is None or "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    credentials, _, host = rest.rpartition("@")
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}:***@{host}"


def _print_infra(settings: Settings, *, reveal: bool) -> None:
    """`ccpulse stack` prints the real Redis URL to export; `up` masks its password."""
    redis_url = settings.redis_url if reveal else masked_url(settings.redis_url)
    kafka = settings.kafka_bootstrap
    if settings.kafka_security_protocol != "PLAINTEXT":
        kafka = f"{kafka} ({settings.kafka_security_protocol})"
    if settings.redis_sentinels:  # Sentinel names the primary; the URL's host is not used
        redis_url = f"sentinel {settings.redis_sentinel_service} at {settings.redis_sentinels}"
    typer.echo(f"kafka  {kafka}")
    typer.echo(f"redis  {redis_url}")
    typer.echo(f"sql    {settings.database_url}")
    if not reveal:
        typer.echo(f"       (the Redis password is in {settings.data_dir / RUN_FILE}, mode 0600)")
        return
    idempotence = str(settings.idempotent_producer()).lower()
    typer.echo(
        f"export CCPULSE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} "
        f"CCPULSE_REDIS_URL={settings.redis_url} CCPULSE_KAFKA_IDEMPOTENCE={idempotence}"
    )


def access_lines(settings: Settings, from_env: frozenset[str] = frozenset()) -> list[str]:
    """What to print about access: generated keys in full (they are new to the user), keys set
    in the environment only by name (the user has them; a log of the start should not)."""
    if settings.auth == "off" or settings.viewer_key is None or settings.admin_key is None:
        return ["access     open (CCPULSE_AUTH=off, loopback only)"]
    login = f"{wallboard_url(settings).rstrip('/')}/login?key="
    if "viewer_key" in from_env:
        viewer = f"viewer     {login}<CCPULSE_VIEWER_KEY>"
    else:
        viewer = f"viewer     {login}{settings.viewer_key.get_secret_value()}"
    lines = [viewer]
    if settings.planner_key is not None:
        planner = (
            "<CCPULSE_PLANNER_KEY>"
            if "planner_key" in from_env
            else settings.planner_key.get_secret_value()
        )
        lines.append(f"planning   {login}{planner}&next=/planning/")
    if "admin_key" in from_env:
        return [*lines, "admin key  from CCPULSE_ADMIN_KEY"]
    where = settings.data_dir / SECRETS_FILE
    return [*lines, f"admin key  {settings.admin_key.get_secret_value()}  (kept in {where})"]


def serve(
    settings: Settings,
    make_children: ChildFactory | None,
    shutdown: ShutdownSignal,
    from_env: frozenset[str],
    demo_peak_per_hour: float | None = None,
) -> None:
    """Run until a signal: children under a supervisor, or the infrastructure alone."""
    run_file = RunFile(settings.data_dir / RUN_FILE)
    run_file.update(pid=os.getpid(), children={})
    try:
        with infrastructure(settings, run_file) as wired:
            _print_infra(wired, reveal=make_children is None)
            if demo_peak_per_hour is not None:  # `up --simulate`: a past at the simulator's rate
                _seed_demo(wired, demo_peak_per_hour)
            if make_children is None:
                shutdown.wait()
                return
            children = make_children(wired)
            with Supervisor(children, on_change=lambda pids: run_file.update(children=pids)) as sup:
                sup.start()
                typer.echo(f"wallboard  {wallboard_url(wired)}")
                for line in access_lines(wired, from_env):
                    typer.echo(line)
                sup.run(shutdown)
    finally:
        run_file.remove()


def _seed_demo(settings: Settings, peak_per_hour: float) -> None:
    from . import demo

    written = demo.seed(settings, peak_per_hour=peak_per_hour)
    if demo_cost_env(settings):
        typer.echo(
            "cost       demo hourly cost per agent: voice 32, chat 28, written 26 "
            f"{settings.cost_currency} (set CCPULSE_COST_PER_HOUR for your own)"
        )
    if written is None:
        typer.echo("history    has rows: no demo history seeded")
    else:
        typer.echo(
            f"history    {written} demo interval rows over {demo.DEMO_WEEKS} weeks "
            "(remove: ccpulse history remove-demo)"
        )


def beside_running_stack(settings: Settings) -> Settings:
    """Settings for a command run beside `ccpulse up` (same DATA_DIR): the broker and Redis it
    started, from its run file, where the settings name none."""
    path = settings.data_dir / RUN_FILE
    running = RunFile.read(path) if path.exists() else {}
    update: dict[str, object] = {}
    if settings.redis_url is None and not settings.redis_sentinels and running.get("redis_url"):
        update["redis_url"] = str(running["redis_url"])
    if settings.kafka_bootstrap is None and running.get("kafka_bootstrap"):
        update.update(kafka_bootstrap=str(running["kafka_bootstrap"]), kafka_idempotence=False)
    return settings.model_copy(update=update)
