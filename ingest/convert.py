"""Vendor exports -> contract events (JSON lines) for history import.

Amazon Connect contact records as Firehose writes them to S3 (JSON documents one after another,
with or without newlines, plain or gzipped) and Asterisk `queue_log` files (rotated and gzipped
ones too) are mapped by the same adapters as live traffic, so an imported past counts exactly as
it would have live. Every bad record or line is reported as `file:line: field: reason`; with any
problem nothing is written (ConvertRefused), so `ccpulse history import` imports all or nothing.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from services.contract import ContactEvent
from services.privacy import pseudonymise
from services.settings import Settings
from services.sources import SourceSettings

from . import jsonsafe
from .adapters.amazon_connect import json_values, map_connect
from .adapters.asterisk import map_line, parse_line
from .adapters.base import PayloadError

FORMATS = ("connect-ctr", "queue-log")
MAX_PROBLEMS = 50


def open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return path.open(encoding="utf-8")


def connect_records(
    path: Path, options: SourceSettings, problems: list[str], received: datetime
) -> list[ContactEvent]:
    """The whole export at once: a re-sent or updated record of a contact keeps its latest."""
    with open_text(path) as handle:
        text = handle.read()
    try:
        records = json_values(text)
    except jsonsafe.JsonRefused as exc:
        problems.append(f"{path}:{_line_of(text, exc)}: {exc.message}")
        return []
    good = []
    for number, record in enumerate(records, start=1):
        try:
            map_connect(record, received, options)
            good.append(record)
        except PayloadError as exc:
            problems.append(f"{path}: record {number}: {exc.field}: {exc.message}")
    return map_connect(good, received, options).events if good else []


def _line_of(text: str, exc: jsonsafe.JsonRefused) -> int:
    cause = exc.__cause__
    position = getattr(cause, "pos", 0) or 0
    return text.count("\n", 0, position) + 1


def queue_log(
    path: Path, options: SourceSettings, problems: list[str], received: datetime
) -> list[ContactEvent]:
    names = options.agent_states.get("asterisk")
    events: list[ContactEvent] = []
    with open_text(path) as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                events.extend(map_line(parse_line(text, number), names).events)
            except PayloadError as exc:
                field = exc.field.removeprefix(f"line {number}").lstrip(".") or "line"
                problems.append(f"{path}:{number}: {field}: {exc.message}")
    return events


def convert(
    fmt: str, paths: Sequence[Path], settings: Settings
) -> tuple[list[ContactEvent], list[str]]:
    problems: list[str] = []
    events: list[ContactEvent] = []
    read = connect_records if fmt == "connect-ctr" else queue_log
    received = datetime.fromtimestamp(settings.clock().now(), UTC)  # only a fallback time
    for path in paths:
        try:
            events.extend(read(path, settings.sources, problems, received))
        except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
            problems.append(f"{path}: unreadable ({type(exc).__name__})")
    key = settings.hash_key.get_secret_value().encode()
    return [_protect(e, key) for e in events], problems


def _protect(event: ContactEvent, key: bytes) -> ContactEvent:
    """The same keyed hash the live ingest gives `customer`: no phone number leaves this step."""
    if event.customer is None:
        return event
    return event.model_copy(update={"customer": pseudonymise(event.customer, key)})


def write(events: Iterable[ContactEvent], out: IO[bytes]) -> None:
    for event in events:
        out.write(event.to_wire() + b"\n")


class ConvertRefused(Exception):
    """Bad records or lines: nothing was written. `problems` (the first 50) name file and line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s); nothing was imported")
        self.problems = problems[:MAX_PROBLEMS]


def main(settings: Settings, fmt: str, paths: Sequence[Path], out: Path) -> int:
    """Convert `paths` (`fmt`: one of FORMATS) into `out`, all or nothing; the events written."""
    events, problems = convert(fmt, paths, settings)
    if problems:
        raise ConvertRefused(problems)
    with out.open("wb") as sink:
        write(events, sink)
    return len(events)
