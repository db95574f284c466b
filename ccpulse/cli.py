"""The `ccpulse` command: one typer app for everything, each subcommand in process.

With the `__main__` modules, the only place that reads the environment: every subcommand builds
one `Settings` here and hands it to the module that does the work (`main(settings, ...)`); `up`
hands its children the resolved addresses through `CCPULSE_*` variables.

Each subcommand imports its process's modules when it runs, not at the top: `ccpulse --help` and
the supervisor of `ccpulse up` then load neither the web apps nor the Kafka client.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import shlex
from collections.abc import Sequence
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from redis.exceptions import RedisError

from services import database, logs
from services.apikeys import KeyAction, RoleName
from services.imports import ImportFormat
from services.settings import Settings, load_settings

from .launch import (
    DEFAULT_RATE,
    ChildFactory,
    beside_running_stack,
    build_children,
    ingest_url,
    masked_url,
    serve,
    with_access_keys,
)
from .processes import StackError
from .supervise import ShutdownSignal

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="ccpulse: real-time contact-center monitoring."
)
db_app = typer.Typer(no_args_is_help=True, help="The SQL history database.")
history_app = typer.Typer(no_args_is_help=True, help="SQL history: 15-minute interval rows.")
app.add_typer(db_app, name="db")
app.add_typer(history_app, name="history")

log = logging.getLogger("ccpulse.cli")


def fail(message: str, code: int = 1) -> NoReturn:
    """A refusal the user can act on: one message on stderr, then the exit code."""
    typer.echo(f"ccpulse: {message}", err=True)
    raise typer.Exit(code)


def _load_settings() -> Settings:
    """The environment's settings (a bad one exits naming it), logging configured by them."""
    settings = load_settings()
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    logs.configure(settings.log_level, settings.log_format)
    return settings


def _iso_time(text: str) -> datetime:
    """An ISO date or time; whether one without an offset is UTC or local is the command's call."""
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO date or time: {text!r}") from exc


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"ccpulse {version('ccpulse')}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """ccpulse: real-time contact-center monitoring."""


# --- the stack: everything, or the infrastructure alone ---


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


def _run_or_exit(
    settings: Settings,
    make_children: ChildFactory | None,
    from_env: frozenset[str] = frozenset(),
    demo_peak_per_hour: float | None = None,
) -> None:
    with ShutdownSignal() as shutdown:
        try:
            serve(settings, make_children, shutdown, from_env, demo_peak_per_hour)
        except StackError as exc:
            fail(str(exc))
    typer.echo("ccpulse stopped")


@app.command()
def up(
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Also post simulated traffic, and seed 8 weeks of demo history when history "
            "is empty (remove it with `ccpulse history remove-demo`).",
        ),
    ] = False,
    rate: Annotated[
        float, typer.Option(help="Simulated contacts per second at the day's busiest hour.")
    ] = DEFAULT_RATE,
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
    from_env = frozenset(
        k for k in ("admin_key", "viewer_key", "planner_key") if getattr(loaded, k) is not None
    )
    settings = with_access_keys(loaded)
    commands = parse_child_options(child or [])
    make_children = None
    if not only_infra:
        make_children = functools.partial(
            build_children,
            simulate=simulate,
            rate=rate,
            commands=commands,
            base_env=dict(os.environ),
        )
    demo_peak = rate * 3600 if simulate and not only_infra else None  # the simulator's peak hour
    _run_or_exit(settings, make_children, from_env, demo_peak_per_hour=demo_peak)


@app.command()
def stack() -> None:
    """Start only the embedded broker and Redis and print their addresses, for development."""
    _run_or_exit(_load_settings(), None)


# --- the processes, as containers and `ccpulse up` run them ---


@app.command("ingest")
def ingest_command() -> None:
    """Serve the webhook endpoints on CCPULSE_INGEST_PORT (the ingest process)."""
    from ingest.__main__ import main
    from ingest.webhooks import ConfigError

    try:
        main(_load_settings())
    except ConfigError as exc:
        fail(f"ingest refuses to start: {exc}", 2)


@app.command("aggregator")
def aggregator_command() -> None:
    """Consume ccpulse.events into Redis and roll history to SQL, until SIGTERM."""
    from aggregator.__main__ import main

    settings = _load_settings()
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # group chatter on every rebalance
    asyncio.run(main(settings))


@app.command("api")
def api_command() -> None:
    """Serve REST, websocket, metrics and the wallboard on CCPULSE_API_PORT."""
    from api.__main__ import main

    main(_load_settings())


# --- tools beside a running stack ---


@app.command()
def simulate(
    rate: Annotated[
        float,
        typer.Option(help="New contacts per second at the day's busiest hour (local time)."),
    ] = DEFAULT_RATE,
    duration: Annotated[float, typer.Option(help="Seconds to run; 0 runs until stopped.")] = 0.0,
    url: Annotated[str | None, typer.Option(help="Ingest base URL (default: settings).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated day.")] = 1,
    token: Annotated[
        str | None,
        typer.Option(envvar="CCPULSE_INGEST_TOKEN", help="Bearer token (default: settings)."),
    ] = None,
) -> None:
    """Post a simulated contact center to a running ingest, live: agents with capacity and
    states, queues, abandons and the daily arrival curve in CCPULSE_TIMEZONE."""
    from simulator.realtime import run as simulate_day

    settings = _load_settings()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per post is noise
    if token is None:
        tokens = [t.get_secret_value() for t in settings.ingest_tokens]
        token = tokens[0] if tokens else ""
    target = url or ingest_url(settings)
    accepted = simulate_day(target, rate, duration, seed, token, settings.clock(), settings.zone)
    typer.echo(f"accepted {accepted} events")


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
    from ingest import queue_log

    settings = with_access_keys(_load_settings())  # the same hash key and keys as `up`
    url = ingest or ingest_url(settings)
    asyncio.run(
        queue_log.main(settings, path, url=url, whole_file=backfill, position_file=position_file)
    )


@app.command("replay")
def replay_command(
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=_iso_time, metavar="ISO", help="Without an offset UTC; default: the whole topic."
        ),
    ] = None,
) -> None:
    """Map ccpulse.raw again with today's adapters and publish the events (ids keep it exact)."""
    from ingest import replay

    settings = beside_running_stack(with_access_keys(_load_settings()))  # as `up` runs them
    if settings.kafka_bootstrap is None:
        fail("no broker: set CCPULSE_KAFKA_BOOTSTRAP, or run beside `ccpulse up` (same DATA_DIR)")
    asyncio.run(replay.main(settings, since))


@app.command("keys")
def keys_command(
    action: Annotated[KeyAction, typer.Argument(help="What to do.")],
    name: Annotated[str | None, typer.Option(help="create: who the key is for.")] = None,
    role: Annotated[RoleName, typer.Option(help="create: what the key may do.")] = RoleName.viewer,
    key_id: Annotated[str | None, typer.Option("--id", help="revoke: the key's id.")] = None,
) -> None:
    """Manage API keys (stored hashed in Redis); a new key is shown once."""
    if action is KeyAction.revoke and not key_id:
        raise typer.BadParameter("revoke needs the key's id", param_hint="--id")
    from api import key_admin as api_keys

    settings = beside_running_stack(with_access_keys(_load_settings()))  # as `up` runs them
    try:
        rows = asyncio.run(api_keys.main(settings, action, name=name, role=role, key_id=key_id))
    except api_keys.UnknownKey as exc:
        fail(str(exc))
    except RedisError as exc:  # the URL without its password: this ends up in terminals and logs
        fail(f"cannot reach Redis at {masked_url(settings.redis_url)}: {exc}")
    for row in rows:
        typer.echo(json.dumps(row))


# --- the SQL history ---


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Alembic revision.")] = "head",
) -> None:
    """Apply the history schema migrations (SQLite under DATA_DIR, or CCPULSE_DATABASE_URL)."""
    settings = load_settings()
    database.upgrade(settings, revision)
    typer.echo(f"history schema at {revision}: {database.database_url(settings).split('@')[-1]}")


@history_app.command("rebuild")
def history_rebuild(
    start: Annotated[
        datetime,
        typer.Option(
            "--from", parser=_iso_time, metavar="ISO", help="Inclusive; without an offset local."
        ),
    ],
    end: Annotated[
        datetime,
        typer.Option("--to", parser=_iso_time, metavar="ISO", help="Exclusive, like --from."),
    ],
    export: Annotated[
        Path | None, typer.Option(help="JSON-lines file of contract events instead of the topic.")
    ] = None,
) -> None:
    """Recompute the rows in [from, to) from ccpulse.events (or an export) and replace them."""
    from aggregator import rebuild

    settings = beside_running_stack(with_access_keys(_load_settings()))  # as `up` runs them
    database.upgrade(settings)
    totals = asyncio.run(rebuild.main(settings, start, end, export))
    typer.echo(
        f"rebuilt {len(totals.cells)} interval rows from {totals.events} events "
        f"({len(totals.dead)} unusable) for [{start.isoformat()}, {end.isoformat()})"
    )


@history_app.command("import")
def history_import(
    files: Annotated[list[Path], typer.Argument(help="Exports to import (.gz accepted).")],
    fmt: Annotated[
        ImportFormat | None, typer.Option("--format", help="Default: by the file's name.")
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Where history holds other figures, this import's figures win.")
    ] = False,
) -> None:
    """Import past data into the interval rows, all or nothing; importing twice changes nothing."""
    from aggregator.importer import ImportRefused
    from ingest.convert import ConvertRefused

    from .history_import import import_files

    settings = load_settings()
    database.upgrade(settings)
    try:
        outcome = import_files(settings, files, fmt, replace)
    except (ConvertRefused, ImportRefused) as exc:
        fail("\n  ".join([f"{exc}:", *exc.problems]))
    typer.echo(
        f"imported {outcome.rows} interval rows ({outcome.written} written, "
        f"{outcome.unchanged} already there) from {outcome.lines} lines, {outcome.events} events"
    )


@history_app.command("remove-demo")
def history_remove_demo() -> None:
    """Delete the demo history `ccpulse up --simulate` seeded (and nothing else)."""
    from . import demo

    settings = load_settings()
    database.upgrade(settings)
    typer.echo(f"removed {demo.remove(settings)} demo interval rows")
