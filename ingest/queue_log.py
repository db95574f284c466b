"""Follow an Asterisk queue_log into the ingest: across rotation, resuming exactly where it stopped.

It runs on the PBX host and posts complete lines to the ingest's `/webhooks/asterisk/queue-log`
over HTTP rather than producing to Kafka itself: the ingest then keeps the raw lines on
`ccpulse.raw`, hashes caller ids and maps them like every other webhook (one path to test and to
replay), and the PBX host needs only the ingest URL and a token, not broker access.

The position file holds the file's inode and the byte offset after the last line the ingest
acknowledged, written atomically after every acknowledged batch, so a restart neither skips nor
repeats a line (a crash between the acknowledgement and the write can repeat one batch; its event
ids are made from the lines, so it counts once). Rotation by rename is followed to the end of the
old file before the new one is read; a truncated file (copytruncate) is read again from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from services.settings import Settings
from services.sources import sources_of

log = logging.getLogger("ccpulse.queue_log")

READ_BYTES = 1 << 20
BATCH_LINES = 500
MAX_BACKOFF_S = 30.0
ROUTE = "/webhooks/asterisk/queue-log"


class Rejected(Exception):
    """The ingest refused the lines as malformed (400) or out of range (422, a time older than
    the lateness window); retrying the same lines cannot help."""


class Unavailable(Exception):
    """The ingest or its broker is not taking lines now; retry the same lines later."""


Sink = Callable[[list[str]], Awaitable[None]]


@dataclass(frozen=True)
class Position:
    inode: int
    offset: int


class PositionFile:
    """Where the last acknowledged line ends; replaced atomically so a crash leaves old or new."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Position | None:
        try:
            data = json.loads(self.path.read_text())
            return Position(int(data["inode"]), int(data["offset"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"position file {self.path} is unreadable: {exc}") from exc

    def save(self, position: Position) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w") as handle:
            json.dump({"inode": position.inode, "offset": position.offset}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


def complete_lines(chunk: bytes) -> tuple[list[str], int]:
    """The whole lines in `chunk` and the bytes they use; a trailing partial line waits."""
    end = chunk.rfind(b"\n") + 1
    text = chunk[:end].decode("utf-8", errors="replace")
    return [line for line in text.split("\n") if line.strip()], end


class Follower:
    """Tail one queue_log path; `step()` is one poll, `run()` polls until stopped."""

    def __init__(self, path: Path, positions: PositionFile, sink: Sink, poll_s: float = 0.5):
        self.path = path
        self.positions = positions
        self.sink = sink
        self.poll_s = poll_s
        self._file: BinaryIO | None = None
        self._pos = Position(0, 0)

    async def step(self) -> int:
        """Ship what is new; returns the number of lines the ingest acknowledged."""
        if self._file is None and not await self._open():
            return 0
        shipped = await self._drain()
        return shipped + await self._follow_rotation()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop`; when the ingest is unavailable, back off and resend."""
        delay = self.poll_s
        while not stop.is_set():
            try:
                await self.step()
                delay = self.poll_s
            except Unavailable as exc:
                delay = min(MAX_BACKOFF_S, max(delay * 2, 1.0))
                log.warning("ingest unavailable, retrying in %.0fs: %s", delay, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def _open(self) -> bool:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return False
        inode = os.fstat(handle.fileno()).st_ino
        saved = self.positions.load()
        if saved is not None and saved.inode != inode:
            await self._drain_rotated_while_down(saved)
            saved = None
        size = os.fstat(handle.fileno()).st_size
        offset = saved.offset if saved is not None and saved.offset <= size else 0
        self._file, self._pos = handle, Position(inode, offset)
        return True

    async def _drain_rotated_while_down(self, saved: Position) -> None:
        """The file rotated while we were stopped: finish the old one if it is still nearby."""
        old = _find_inode(self.path, saved.inode)
        if old is None:
            log.warning(
                "rotated file with inode %d not found; lines after it may be missed", saved.inode
            )
            return
        with old.open("rb") as handle:
            self._file, self._pos = handle, saved
            await self._drain(final=True)
        self._file = None

    async def _drain(self, final: bool = False) -> int:
        assert self._file is not None
        shipped = 0
        while True:
            self._file.seek(self._pos.offset)
            chunk = self._file.read(READ_BYTES)
            at_end = final and len(chunk) < READ_BYTES
            lines, used = complete_lines(_terminated(chunk) if at_end else chunk)
            used = min(used, len(chunk))
            if used == 0:
                return shipped
            await self._ship(lines, Position(self._pos.inode, self._pos.offset + used))
            shipped += len(lines)

    async def _ship(self, lines: list[str], after: Position) -> None:
        for start in range(0, len(lines), BATCH_LINES):
            await ship_lines(self.sink, lines[start : start + BATCH_LINES])
        self._pos = after
        self.positions.save(after)

    async def _follow_rotation(self) -> int:
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return 0  # between the rename and the new file: keep reading the old one
        if current.st_ino != self._pos.inode:
            if current.st_size == 0:
                return 0  # the writer may not have reopened yet; keep draining the old file
            shipped = await self._drain(final=True)
            self.close()
            self.positions.save(Position(current.st_ino, 0))
            await self._open()
            return shipped
        if current.st_size < self._pos.offset:
            log.warning("%s was truncated; reading it again from the start", self.path)
            self._pos = Position(self._pos.inode, 0)
            self.positions.save(self._pos)
        return 0


def _terminated(chunk: bytes) -> bytes:
    """A finished (rotated) file's last line counts even without its newline."""
    return chunk if not chunk or chunk.endswith(b"\n") else chunk + b"\n"


def _find_inode(path: Path, inode: int) -> Path | None:
    for candidate in sorted(path.parent.glob(path.name + "*")):
        try:
            if candidate.is_file() and candidate.stat().st_ino == inode:
                return candidate
        except OSError:
            continue
    return None


async def ship_lines(sink: Sink, lines: list[str]) -> None:
    """A refused batch is resent line by line so one bad line cannot hold up the rest."""
    try:
        await sink(lines)
    except Rejected:
        for line in lines:
            try:
                await sink([line])
            except Rejected as exc:
                log.error("the ingest refused a queue_log line, skipped: %s", exc)


async def backfill(path: Path, sink: Sink, positions: PositionFile | None = None) -> int:
    """Send a whole file (a rotated one, say); with `positions`, a later follow resumes after it."""
    with path.open("rb") as handle:
        data = handle.read()
        inode = os.fstat(handle.fileno()).st_ino
    lines, used = complete_lines(_terminated(data))
    for start in range(0, len(lines), BATCH_LINES):
        await ship_lines(sink, lines[start : start + BATCH_LINES])
    if positions is not None:
        positions.save(Position(inode, min(used, len(data))))
    return len(lines)


class HttpSink:
    """Posts lines to the ingest; 2xx acknowledges, 400 and 422 reject, the rest is retried."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str | None = None):
        self.client = client
        self.url = base_url.rstrip("/") + ROUTE
        self.headers = {"content-type": "text/plain; charset=utf-8"}
        if token:
            self.headers["authorization"] = f"Bearer {token}"

    async def __call__(self, lines: list[str]) -> None:
        body = ("\n".join(lines) + "\n").encode()
        try:
            response = await self.client.post(self.url, content=body, headers=self.headers)
        except httpx.HTTPError as exc:
            raise Unavailable(type(exc).__name__) from exc
        too_old = _too_old(response)
        if too_old is not None:
            # Older than the lateness window: acknowledged (resending cannot help), and said.
            log.warning("queue_log lines too old for live figures: %s", too_old)
            return
        if response.status_code in (400, 422):
            raise Rejected(response.json().get("detail", "malformed"))
        if response.status_code >= 300:
            raise Unavailable(f"HTTP {response.status_code}")


def _too_old(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if not body.get("too_old") or response.status_code not in (202, 422):
        return None
    return str(body.get("too_old_detail") or body.get("detail"))


async def main(
    settings: Settings,
    path: Path,
    *,
    url: str,
    whole_file: bool = False,
    position_file: Path | None = None,
) -> None:
    """`ccpulse tail-queue-log`: follow until SIGTERM, or send the whole file once (backfill).

    Posts to the ingest at `url` with the Asterisk token of the settings' sources."""
    token = sources_of(settings).asterisk_token
    secret = token.get_secret_value() if token is not None else None
    positions = PositionFile(position_file or settings.data_dir / "queue_log.position")
    async with httpx.AsyncClient(timeout=10) as client:
        sink = HttpSink(client, url, secret)
        if whole_file:
            count = await backfill(path, sink, positions)
            log.info("backfilled %d lines from %s", count, path)
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        follower = Follower(path, positions, sink)
        try:
            await follower.run(stop)
        finally:
            follower.close()
