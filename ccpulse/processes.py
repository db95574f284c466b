"""Child processes: spawn (own session, dies with us), stop by PID, wait until ready, files.

The plumbing under the embedded broker and Redis (`stack.py`) and the supervisor
(`supervise.py`): nothing here knows what the processes are.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

log = logging.getLogger("ccpulse.stack")

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1

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


def wait_ready(
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


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


class Managed:
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
