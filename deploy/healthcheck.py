"""Container health for the ccpulse image: one script for its three long-running commands.

Docker (HEALTHCHECK, compose `healthcheck:`) and Kubernetes (exec probe for the aggregator) run
it inside the container. Which check applies follows from the command being run: an argument
(`api`, `ingest`, `aggregator`), else PID 1's command line, so the image's one HEALTHCHECK fits
every service. ingest and api: their own `/readyz` on loopback. The aggregator (whose only HTTP
is its optional /metrics, which says nothing of its consumer) is healthy while this container's
consumer has written its lag report to Redis within the freshness window the api uses
(services.keys.LAG_FRESH_MS). A one-shot command (`ccpulse db upgrade`) is healthy while it runs.
Exit 0 healthy, 1 not (with the reason on stderr).
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services import keys
from services.connections import redis_target
from services.settings import Settings

SERVICES = ("api", "ingest", "aggregator")
HTTP_PORTS = {"api": ("CCPULSE_API_PORT", 8000), "ingest": ("CCPULSE_INGEST_PORT", 8001)}
TIMEOUT_S = 3.0


def service_of(argv: list[str], cmdline: list[str]) -> str | None:
    """The service to check: the argument, else the first ccpulse subcommand in PID 1's command."""
    if argv:
        return argv[0]
    return next((word for word in cmdline if word in SERVICES), None)


def pid1_cmdline() -> list[str]:
    try:
        raw = Path("/proc/1/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def check_http(service: str, env: dict[str, str]) -> str | None:
    """None when the service's /readyz answers 200; otherwise why not."""
    name, default = HTTP_PORTS[service]
    url = f"http://127.0.0.1:{env.get(name, default)}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return None if response.status == 200 else f"{url} answered {response.status}"
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code}: {exc.read()[:200]!r}"
    except OSError as exc:
        return f"{url}: {exc}"


def check_aggregator(settings: Settings, host: str) -> str | None:
    """None when a consumer of this host reported its lag lately; otherwise why not."""
    from redis.exceptions import RedisError

    if not settings.redis_url and not settings.redis_sentinels:
        return "CCPULSE_REDIS_URL is not set"
    clock = settings.clock()
    try:
        client = redis_client(settings)
        try:
            reports = client.hgetall(keys.CONSUMER_LAG)
        finally:
            client.close()
    except (RedisError, OSError) as exc:
        return f"Redis: {exc}"
    now_ms = int(clock.now() * 1000)
    ages = [
        now_ms - int(value.decode().rpartition(keys.SEP)[2])
        for name, value in reports.items()
        if name.decode().startswith(f"{host}:")
    ]
    if not ages:
        return f"no lag report from a consumer on {host} yet"
    if min(ages) > keys.LAG_FRESH_MS:
        return f"last lag report from {host} is {min(ages) // 1000} s old"
    return None


def redis_client(settings: Settings) -> Any:
    """The aggregator's Redis as its own shell builds it (password, TLS files, Sentinel), but
    synchronous: a probe is one short command."""
    from redis import Redis
    from redis.cluster import RedisCluster
    from redis.sentinel import Sentinel

    target = redis_target(settings)
    options: dict[str, Any] = {
        **target.options,
        "socket_timeout": TIMEOUT_S,
        "socket_connect_timeout": TIMEOUT_S,
    }
    if target.sentinels:
        sentinel = Sentinel(target.sentinels, sentinel_kwargs=target.sentinel_options, **options)
        return sentinel.master_for(str(target.service))
    if target.cluster:
        return RedisCluster.from_url(target.url, **options)
    return Redis.from_url(target.url, **options)


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    service = service_of(argv, pid1_cmdline())
    if service in HTTP_PORTS:
        problem = check_http(service, env)
    elif service == "aggregator":
        try:
            settings = Settings()
        except ValidationError as exc:  # the reasons only: pydantic's text repeats the values
            return _unhealthy("settings: " + "; ".join(str(e["msg"]) for e in exc.errors()))
        problem = check_aggregator(settings, socket.gethostname())
    elif service is None and not argv:
        problem = None  # a one-shot command (db upgrade, keys): healthy while it runs
    else:
        problem = f"unknown service {service!r}: expected one of {', '.join(SERVICES)}"
    return _unhealthy(problem) if problem else 0


def _unhealthy(problem: str) -> int:
    print(f"unhealthy: {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
