"""Supervision of the ccpulse processes: restart with capped backoff, stop in reverse order, and
turn SIGTERM/SIGINT into a flag the synchronous main loop polls."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

from .processes import STOP_TIMEOUT_S, Popen, spawn, terminate

log = logging.getLogger("ccpulse.stack")


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
