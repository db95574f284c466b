"""The `ccpulse` command: embedded broker and Redis when none is configured, then the processes.

With `__main__` modules, the only place that reads the environment: it builds one `Settings` and
hands every child the resolved addresses through `CCPULSE_*` variables.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr

from services import database
from services.apikeys import new_key
from services.keys import ALL_TOPICS
from services.settings import Settings, load_settings
from services.stack import (
    ChildSpec,
    EmbeddedBroker,
    EmbeddedRedis,
    RunFile,
    ShutdownSignal,
    StackError,
    Supervisor,
    write_private,
)

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="ccpulse: real-time contact-center monitoring."
)

DEFAULT_RATE = 1.0  # new contacts per second: about 10 events a second, a busy small center
RUN_FILE = Path("run") / "ccpulse.json"
SECRETS_FILE = "secrets.json"
DEFAULT_HASH_KEY = Settings.model_fields["hash_key"].get_default().get_secret_value()
# Start downstream first; the supervisor stops in reverse: simulator, ingest, aggregator, api.
START_ORDER = ("api", "aggregator", "ingest", "simulator")

log = logging.getLogger("ccpulse.cli")


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
    if settings.kafka_idempotence is not None:
        env["CCPULSE_KAFKA_IDEMPOTENCE"] = str(settings.kafka_idempotence).lower()
    return env


def _access_env(settings: Settings) -> dict[str, str]:
    env: dict[str, str] = {"CCPULSE_HASH_KEY": settings.hash_key.get_secret_value()}
    if settings.admin_key is not None:
        env["CCPULSE_ADMIN_KEY"] = settings.admin_key.get_secret_value()
    if settings.viewer_key is not None:
        env["CCPULSE_VIEWER_KEY"] = settings.viewer_key.get_secret_value()
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
        if not settings.ingest_tokens:
            update["ingest_tokens"] = [SecretStr(stored["ingest_token"])]
    return settings.model_copy(update=update)


def _stored_secrets(path: Path) -> dict[str, str]:
    """Read, complete and rewrite the file; created 0600, so it is never readable by others."""
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [
        k for k in ("hash_key", "admin_key", "viewer_key", "ingest_token") if k not in stored
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
        commands["simulator"] = [python, "-m", "simulator", "--rate", str(rate), "--url", url]
    return commands


def build_children(
    settings: Settings,
    *,
    simulate: bool = False,
    rate: float = DEFAULT_RATE,
    python: str = sys.executable,
    base_env: Mapping[str, str] | None = None,
    commands: Mapping[str, Sequence[str]] | None = None,
) -> list[ChildSpec]:
    """Children in start order; `commands` (name -> argv) replaces the real ones in tests."""
    if commands is None:
        commands = default_commands(settings, simulate=simulate, rate=rate, python=python)
    env = child_env(settings, os.environ if base_env is None else base_env)
    rank = {name: i for i, name in enumerate(START_ORDER)}
    names = sorted(commands, key=lambda name: rank.get(name, len(rank)))
    return [ChildSpec(name, tuple(commands[name]), env) for name in names]


def parse_child_options(options: Sequence[str]) -> dict[str, list[str]] | None:
    """`NAME=COMMAND` strings (hidden --child option) into argv lists; None when there are none."""
    if not options:
        return None
    commands: dict[str, list[str]] = {}
    for option in options:
        name, sep, command = option.partition("=")
        if not sep or not name or not command:
            raise typer.BadParameter(f"expected NAME=COMMAND, got {option!r}", param_hint="--child")
        commands[name] = shlex.split(command)
    return commands


@contextlib.contextmanager
def infrastructure(settings: Settings, run_file: RunFile) -> Iterator[Settings]:
    """Start what the settings leave unset; yield settings naming the real addresses.

    Redis keeps an append-only file under data_dir/redis, so live state survives a restart.
    """
    data_dir = settings.data_dir
    resolved: dict[str, object] = {}
    with contextlib.ExitStack() as stack:
        if settings.redis_url is None:
            redis = stack.enter_context(
                EmbeddedRedis(data_dir / "redis", log_dir=data_dir / "logs")
            )
            resolved["redis_url"] = redis.url
            run_file.update(redis_pid=redis.pid)
        if settings.kafka_bootstrap is None:
            broker = stack.enter_context(EmbeddedBroker(data_dir / "logs"))
            broker.create_topics(
                ALL_TOPICS,
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


def _load_settings() -> Settings:
    settings = load_settings()
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    return settings


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
    typer.echo(f"kafka  {settings.kafka_bootstrap}")
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


ChildFactory = Callable[[Settings], list[ChildSpec]]


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
    if "admin_key" in from_env:
        return [viewer, "admin key  from CCPULSE_ADMIN_KEY"]
    where = settings.data_dir / SECRETS_FILE
    return [viewer, f"admin key  {settings.admin_key.get_secret_value()}  (kept in {where})"]


def _serve(
    settings: Settings,
    make_children: ChildFactory | None,
    shutdown: ShutdownSignal,
    from_env: frozenset[str],
) -> None:
    """Run until a signal: children under a supervisor, or the infrastructure alone."""
    run_file = RunFile(settings.data_dir / RUN_FILE)
    run_file.update(pid=os.getpid(), children={})
    try:
        with infrastructure(settings, run_file) as wired:
            _print_infra(wired, reveal=make_children is None)
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


def _run_or_exit(
    settings: Settings,
    make_children: ChildFactory | None,
    from_env: frozenset[str] = frozenset(),
) -> None:
    with ShutdownSignal() as shutdown:
        try:
            _serve(settings, make_children, shutdown, from_env)
        except StackError as exc:
            typer.echo(f"ccpulse: {exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo("ccpulse stopped")


@app.command()
def up(
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Also post a simulated day.")
    ] = False,
    rate: Annotated[float, typer.Option(help="Simulated contacts per second.")] = DEFAULT_RATE,
    only_infra: Annotated[
        bool, typer.Option("--only-infra", help="Broker and Redis only.")
    ] = False,
    child: Annotated[
        list[str] | None,
        typer.Option("--child", hidden=True, help="NAME=COMMAND replacing the real children."),
    ] = None,
) -> None:
    """Start everything (embedded broker and Redis unless configured); Ctrl-C stops it all."""
    loaded = _load_settings()
    from_env = frozenset(k for k in ("admin_key", "viewer_key") if getattr(loaded, k) is not None)
    settings = with_access_keys(loaded)
    commands = parse_child_options(child or [])
    make_children = None
    if not only_infra:
        make_children = functools.partial(
            build_children, simulate=simulate, rate=rate, commands=commands
        )
    _run_or_exit(settings, make_children, from_env)


@app.command()
def stack() -> None:
    """Start only the embedded broker and Redis and print their addresses, for development."""
    _run_or_exit(_load_settings(), None)


@app.command()
def simulate(
    rate: Annotated[float, typer.Option(help="New contacts per second.")] = DEFAULT_RATE,
    duration: Annotated[float, typer.Option(help="Seconds to run; 0 runs until stopped.")] = 0.0,
    url: Annotated[str | None, typer.Option(help="Ingest base URL (default: settings).")] = None,
) -> None:
    """Post a simulated contact-center day to a running ingest (replaces this process)."""
    target = url or ingest_url(load_settings())
    argv = [sys.executable, "-m", "simulator", "--rate", str(rate), "--duration", str(duration)]
    os.execv(sys.executable, [*argv, "--url", target])


@app.command("tail-queue-log")
def tail_queue_log(
    path: Annotated[Path, typer.Argument(help="The Asterisk queue_log file.")],
    backfill: Annotated[bool, typer.Option(help="Send the whole file once, then stop.")] = False,
    position_file: Annotated[
        Path | None, typer.Option(help="Default: DATA_DIR/queue_log.position.")
    ] = None,
    ingest: Annotated[str | None, typer.Option("--ingest-url", help="Ingest base URL.")] = None,
) -> None:
    """Follow an Asterisk queue_log into the ingest, across rotation, resuming where it stopped."""
    settings = with_access_keys(load_settings())  # the same hash key and keys as `up`
    mode = "backfill" if backfill else "follow"
    argv = [sys.executable, "-m", "ingest.queue_log", mode, str(path),
            "--ingest-url", ingest or ingest_url(settings)]  # fmt: skip
    if position_file is not None:
        argv += ["--position-file", str(position_file)]
    raise typer.Exit(subprocess.call(argv, env=child_env(settings, os.environ)))


@app.command()
def replay(
    since: Annotated[
        str | None, typer.Option(help="ISO time; default: the whole raw topic.")
    ] = None,
) -> None:
    """Map ccpulse.raw again with today's adapters and publish the events (ids keep it exact)."""
    settings = with_access_keys(load_settings())  # the same hash key and keys as `up`
    argv = [sys.executable, "-m", "ingest.replay", *(["--since", since] if since else [])]
    raise typer.Exit(subprocess.call(argv, env=child_env(settings, os.environ)))


@app.command()
def keys(
    action: Annotated[str, typer.Argument(help="create, list or revoke")],
    name: Annotated[str | None, typer.Option(help="create: who the key is for")] = None,
    role: Annotated[str, typer.Option(help="create: viewer, planner or admin")] = "viewer",
    key_id: Annotated[str | None, typer.Option("--id", help="revoke: the key's id")] = None,
) -> None:
    """Manage API keys (stored hashed in Redis); a new key is shown once."""
    settings = with_access_keys(load_settings())  # the same hash key and keys as `up`
    env = child_env(settings, os.environ)
    if settings.redis_url is None:
        running = (
            RunFile.read(settings.data_dir / RUN_FILE)
            if (settings.data_dir / RUN_FILE).exists()
            else {}
        )
        if running.get("redis_url"):
            env["CCPULSE_REDIS_URL"] = str(running["redis_url"])
    argv = [sys.executable, "-m", "api.keys", action, "--role", role]
    argv += [*(["--name", name] if name else []), *(["--id", key_id] if key_id else [])]
    raise typer.Exit(subprocess.call(argv, env=env))


db_app = typer.Typer(no_args_is_help=True, help="The SQL history database.")
history_app = typer.Typer(no_args_is_help=True, help="SQL history: 15-minute interval rows.")
app.add_typer(db_app, name="db")
app.add_typer(history_app, name="history")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Alembic revision")] = "head",
) -> None:
    """Apply the history schema migrations (SQLite under DATA_DIR, or CCPULSE_DATABASE_URL)."""
    settings = load_settings()
    database.upgrade(settings, revision)
    typer.echo(f"history schema at {revision}: {database.database_url(settings).split('@')[-1]}")


@history_app.command("rebuild")
def history_rebuild(
    start: Annotated[str, typer.Option("--from", help="ISO time (inclusive)")],
    end: Annotated[str, typer.Option("--to", help="ISO time (exclusive)")],
    export: Annotated[
        Path | None, typer.Option(help="JSON-lines file of contract events instead of the topic")
    ] = None,
) -> None:
    """Recompute the rows in [from, to) from ccpulse.events (or an export) and replace them."""
    settings = with_access_keys(load_settings())  # the same hash key and keys as `up`
    database.upgrade(settings)
    argv = [sys.executable, "-m", "aggregator.rebuild", "--from", start, "--to", end]
    argv += ["--export", str(export)] if export is not None else []
    raise typer.Exit(subprocess.call(argv, env=child_env(settings, os.environ)))


IMPORT_FORMATS = ("events", "intervals", "connect-ctr", "queue-log")


def _import_format(path: Path, fmt: str | None) -> str:
    """`--format`, else by name: `.csv` intervals, `queue_log*` Asterisk, others native events."""
    if fmt is not None:
        return fmt
    if ".csv" in path.suffixes:
        return "intervals"
    return "queue-log" if path.name.startswith("queue_log") else "events"


@history_app.command("import")
def history_import(
    files: Annotated[list[Path], typer.Argument(help="exports to import (.gz accepted)")],
    fmt: Annotated[
        str | None, typer.Option("--format", help=f"one of {', '.join(IMPORT_FORMATS)}")
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="where history holds other figures, this import's figures win")
    ] = False,
) -> None:
    """Import past data into the interval rows, all or nothing; importing twice changes nothing."""
    if fmt not in (None, *IMPORT_FORMATS):
        raise typer.BadParameter(f"--format is one of {', '.join(IMPORT_FORMATS)}")
    settings = Settings()
    database.upgrade(settings)
    env = child_env(settings, os.environ)
    argv = [sys.executable, "-m", "aggregator.importer"]
    with tempfile.TemporaryDirectory(prefix="ccpulse-import-") as scratch:
        for index, path in enumerate(files):
            kind = _import_format(path, fmt)
            if kind in ("connect-ctr", "queue-log"):  # mapped by the live adapters first
                converted = Path(scratch) / f"{index}.jsonl"
                convert = [sys.executable, "-m", "ingest.convert", "--format", kind]
                code = subprocess.call([*convert, "--out", str(converted), str(path)], env=env)
                if code:
                    raise typer.Exit(code)
                path, kind = converted, "events"
            argv += [f"--{kind}", str(path)]
        argv += ["--replace"] if replace else []
        raise typer.Exit(subprocess.call(argv, env=env))


if __name__ == "__main__":
    app()
