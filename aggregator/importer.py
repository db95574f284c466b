"""`ccpulse history import`: past data straight into the SQL interval rows.

Two formats (docs/history.md#import): the native event contract as JSON lines (folded by the
aggregator's own pure engine, no lateness limit) and the interval CSV every ACD can export. A
whole file set is read and checked before anything is written: any bad line is reported with its
file and line number and nothing is imported. Rows are then written in one transaction, by one
rule: a row already holding exactly what the import computes is left alone (importing twice
changes nothing), a row holding something else is a conflict that refuses the import unless
`--replace` says the file's figures win.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import and_, delete, or_, select

from services import intervals, keys, kpis
from services.contract import Channel, decode_wire
from services.database import make_engine
from services.settings import Settings

from . import engine
from .rebuild import FAR_S, Totals

Cells = dict[tuple[int, str], dict[str, int]]
CSV_REQUIRED = ("start", "channel", "offered", "answered", "abandoned", "answered_within_sl")
CSV_NUMBERS = (
    "offered",
    "answered",
    "abandoned",
    "answered_within_sl",
    "sl_threshold_seconds",
    "handled",
    "handle_seconds",
    "aht_seconds",
    "answer_wait_seconds",
    "asa_seconds",
    "abandoned_short",
)
MAX_ERRORS = 50


class ImportRefused(Exception):
    """Bad lines or conflicting rows: nothing was written. `problems` name file and line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s); nothing was imported")
        self.problems = problems


@dataclass
class Outcome:
    rows: int = 0  # rows the files give
    written: int = 0  # rows inserted or replaced
    unchanged: int = 0  # rows already holding exactly these figures
    events: int = 0
    lines: int = 0


@dataclass
class Reader:
    """Checks and folds every line of every file; collects problems instead of stopping."""

    settings: Settings
    now_s: float
    problems: list[str] = field(default_factory=list)
    cells: Cells = field(default_factory=dict)
    lines: int = 0
    events: int = 0

    @property
    def oldest_s(self) -> float:
        return self.now_s - self.settings.history_retention_days * 86400

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def add(self, start_s: int, scope: str, counters: Mapping[str, int]) -> None:
        kpis.add_counters(self.cells.setdefault((start_s, scope), {}), counters)


class Progress:
    """A one-line progress bar on a terminal's stderr, by bytes of the (compressed) file read."""

    def __init__(self, path: Path, raw: IO[bytes]) -> None:
        self.path, self.raw = path, raw
        self.size = path.stat().st_size
        self.shown = -1
        self.on = sys.stderr.isatty() and self.size > 1 << 20

    def tick(self) -> None:
        if not self.on:
            return
        percent = min(100, self.raw.tell() * 100 // self.size)
        if percent != self.shown:
            self.shown = percent
            bar = "#" * (percent // 5)
            sys.stderr.write(f"\r{self.path.name} [{bar:<20}] {percent:3d}%")
            sys.stderr.flush()

    def close(self) -> None:
        if self.on and self.shown >= 0:
            sys.stderr.write("\n")


@contextmanager
def open_text(path: Path) -> Iterator[tuple[IO[str], Progress]]:
    """Plain or gzipped (rotated exports are often `.gz`), UTF-8, with its progress."""
    with path.open("rb") as raw:
        binary = cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if path.suffix == ".gz" else raw
        progress = Progress(path, raw)
        try:
            yield io.TextIOWrapper(binary, encoding="utf-8", newline=""), progress
        finally:
            progress.close()


def read_native(reader: Reader, path: Path, totals: Totals) -> None:
    """Contract events, one JSON object a line; folded like the aggregator folds them, into one
    engine state for every file (a call split by a log rotation is one contact)."""
    records: list[engine.Record] = []
    with open_text(path) as (handle, progress):
        for number, line in enumerate(handle, start=1):
            reader.lines += 1
            progress.tick()
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                event = decode_wire(line.strip().encode())
            except ValueError as exc:
                reader.problem(where, str(exc))
                continue
            if event.time.timestamp() < reader.oldest_s:
                reader.problem(where, "time: older than the history retention")
            elif event.time.timestamp() > reader.now_s + engine.FUTURE_TOLERANCE_S:
                reader.problem(where, "time: in the future")
            else:
                records.append(engine.Record(0, number, event.to_wire()))
    for start in range(0, len(records), 5000):
        totals.feed(records[start : start + 5000])


def read_csv(reader: Reader, path: Path) -> None:
    """The interval CSV (docs/history.md#interval-csv): one row per interval, channel, queue."""
    seen: set[tuple[int, str, str]] = set()
    with open_text(path) as (handle, progress):
        rows = csv.DictReader(handle)
        missing = [c for c in CSV_REQUIRED if c not in (rows.fieldnames or [])]
        if missing:
            reader.problem(f"{path}:1", f"missing column(s) {', '.join(missing)}")
            return
        for row in rows:
            reader.lines += 1
            progress.tick()
            where = f"{path}:{rows.line_num}"
            parsed = _csv_row(reader, row, where)
            if parsed is None:
                continue
            start_s, channel, queue, counters = parsed
            if (start_s, channel, queue) in seen:
                reader.problem(where, "a second row for this start, channel and queue")
                continue
            seen.add((start_s, channel, queue))
            for scope in _scopes(channel, queue):
                reader.add(start_s, scope, counters)


def _scopes(channel: str, queue: str) -> list[str]:
    """A queue's row counts for its queue and its channel; a row without queue for the channel."""
    if not queue:
        return [keys.channel_scope(channel)]
    return [keys.channel_scope(channel), keys.queue_scope(channel, queue)]


def _csv_row(
    reader: Reader, row: Mapping[str, str | None], where: str
) -> tuple[int, str, str, dict[str, int]] | None:
    values: dict[str, float] = {}
    for name in CSV_NUMBERS:
        text = (row.get(name) or "").strip()
        if not text:
            continue
        try:
            values[name] = float(text)
        except ValueError:
            reader.problem(where, f"{name}: not a number ({text[:20]!r})")
            return None
        if values[name] < 0:
            reader.problem(where, f"{name}: must not be negative")
            return None
    start_s = _start(reader, (row.get("start") or "").strip(), where)
    channel = (row.get("channel") or "").strip().lower()
    if channel not in {c.value for c in Channel}:
        reader.problem(where, f"channel: unknown ({channel[:20]!r})")
        return None
    queue = (row.get("queue") or "").strip()
    if start_s is None or not _complete(reader, values, where):
        return None
    threshold = int(values.get("sl_threshold_seconds", reader.settings.sl_threshold_for(channel)))
    return start_s, channel, queue, interval_counters(values, threshold, reader.settings)


def _start(reader: Reader, text: str, where: str) -> int | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        reader.problem(where, f"start: not an ISO 8601 time ({text[:30]!r})")
        return None
    when = value if value.tzinfo is not None else value.replace(tzinfo=reader.settings.zone)
    start_s = int(when.timestamp())
    if start_s % keys.INTERVAL_SECONDS:
        reader.problem(where, "start: not on a 15-minute boundary")
        return None
    if start_s < reader.oldest_s or start_s > reader.now_s:
        reader.problem(where, "start: outside the history retention (or in the future)")
        return None
    return start_s


def _complete(reader: Reader, v: Mapping[str, float], where: str) -> bool:
    for name in ("offered", "answered", "abandoned", "answered_within_sl"):
        if name not in v or v[name] != int(v[name]):
            reader.problem(where, f"{name}: a whole number is required")
            return False
    if v["answered_within_sl"] > v["answered"]:
        reader.problem(where, "answered_within_sl: more than answered")
        return False
    if v.get("abandoned_short", 0) > v["abandoned"]:
        reader.problem(where, "abandoned_short: more than abandoned")
        return False
    if v["answered"] and not ({"answer_wait_seconds", "asa_seconds"} & v.keys()):
        reader.problem(where, "answer_wait_seconds (or asa_seconds) is required with answers")
        return False
    return True


def interval_counters(
    v: Mapping[str, float], threshold_s: int, settings: Settings
) -> dict[str, int]:
    """The raw counters one CSV row stands for (docs/history.md#interval-csv): answers within the
    service-level threshold sit in its histogram bucket, the others in the bucket above it, so
    service level at that threshold is exact; short abandons sit in the first bucket."""
    answered, abandoned = int(v["answered"]), int(v["abandoned"])
    within, short = int(v["answered_within_sl"]), int(v.get("abandoned_short", 0))
    handled = int(v.get("handled", answered))
    wait_s = v.get("answer_wait_seconds", v.get("asa_seconds", 0) * answered)
    handle_s = v.get("handle_seconds", v.get("aht_seconds", 0) * handled)
    at = kpis.bucket_index(kpis.require_edge(threshold_s) * 1000)
    above = min(at + 1, kpis.OVERFLOW)
    short_at = kpis.bucket_index(settings.short_abandon_seconds * 1000)
    counters = {
        kpis.OFFERED: int(v["offered"]),
        kpis.QUEUED: int(v["offered"]),
        kpis.ANSWERED: answered,
        kpis.ANSWER_WAIT_MS: round(wait_s * 1000),
        kpis.ABANDONED: abandoned,
        kpis.ABANDONED_QUEUE: abandoned,
        kpis.HANDLED: handled,
        kpis.HANDLE_MS: round(handle_s * 1000),
    }
    for name, value in (
        (f"{kpis.ANSWER_HIST}{at}", within),
        (f"{kpis.ANSWER_HIST}{above}", answered - within),
        (f"{kpis.QUEUE_ABANDON_HIST}{short_at}", short),
        (f"{kpis.QUEUE_ABANDON_HIST}{above}", abandoned - short),
    ):
        counters[name] = counters.get(name, 0) + value
    return {k: n for k, n in counters.items() if n}


def read_all(settings: Settings, native: Sequence[Path], tables: Sequence[Path]) -> Reader:
    reader = Reader(settings, settings.clock().now())
    totals = Totals(-FAR_S, FAR_S, settings)
    for path in native:
        _guard(reader, path, lambda r, p: read_native(r, p, totals))
    reader.events = totals.events
    for (start_s, scope), counters in totals.cells.items():
        reader.add(start_s, scope, counters)
    for path in tables:
        _guard(reader, path, read_csv)
    return reader


def _guard(reader: Reader, path: Path, read: Callable[[Reader, Path], None]) -> None:
    try:
        read(reader, path)
    except (OSError, UnicodeDecodeError, csv.Error, EOFError, gzip.BadGzipFile) as exc:
        reader.problem(str(path), f"unreadable ({type(exc).__name__}: {exc})")


def rows_of(cells: Cells, now_s: int) -> dict[tuple[int, str], dict[str, Any]]:
    return {
        cell: intervals.to_row(cell[0], cell[1], counters, now_s)
        for cell, counters in sorted(cells.items())
        if not intervals.is_empty(counters)
    }


_COMPARED = (*intervals.COUNTER_COLUMNS, "extra")


def _same(existing: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return all(existing[c] == new[c] for c in _COMPARED)


async def remove_demo(settings: Settings) -> int:
    """Delete every demo row (`ccpulse up --simulate`'s history); returns how many interval
    rows went (the demo agents' time goes with them)."""
    table = intervals.interval_counters
    agents = intervals.agent_intervals
    db = make_engine(settings)
    try:
        async with db.begin() as conn:
            done = await conn.execute(delete(table).where(table.c.extra.like(intervals.DEMO_MARK)))
            await conn.execute(delete(agents).where(agents.c.extra.like(intervals.DEMO_MARK)))
        return int(done.rowcount or 0)
    finally:
        await db.dispose()


async def write_demo_agents(
    settings: Settings,
    times: Mapping[tuple[int, str], Mapping[str, int]],
    counters: Mapping[tuple[int, str], Mapping[str, int]],
) -> int:
    """The demo agents' time per state and their interval rows, marked as demo like the rest
    (simulator.history.demo_agents); returns the interval rows written (agents' rows)."""
    now_s = int(settings.clock().now())
    time_rows = [
        {"start_s": start, "agent": agent, **ms, "extra": intervals.DEMO_EXTRA, "updated_s": now_s}
        for (start, agent), ms in sorted(times.items())
    ]
    counter_rows = [
        intervals.to_row(start, keys.agent_scope(agent), {**c, intervals.DEMO_FIELD: 1}, now_s)
        for (start, agent), c in sorted(counters.items())
    ]
    db = make_engine(settings)
    try:
        async with db.begin() as conn:
            for chunk in _chunked(time_rows, 500):
                await conn.execute(intervals.agent_intervals.insert(), chunk)
            for chunk in _chunked(counter_rows, 500):
                await conn.execute(intervals.interval_counters.insert(), chunk)
    finally:
        await db.dispose()
    return len(counter_rows)


async def has_history(settings: Settings) -> bool:
    table = intervals.interval_counters
    db = make_engine(settings)
    try:
        async with db.connect() as conn:
            return (await conn.execute(select(table.c.start_s).limit(1))).first() is not None
    finally:
        await db.dispose()


async def write(
    settings: Settings, rows: dict[tuple[int, str], dict[str, Any]], replace: bool
) -> Outcome:
    """One transaction: unchanged rows stay, new rows go in, conflicts refuse (or replace)."""
    table = intervals.interval_counters
    outcome = Outcome(rows=len(rows))
    db = make_engine(settings)
    try:
        async with db.begin() as conn:
            existing: dict[tuple[int, str], Mapping[str, Any]] = {}
            for chunk in _chunked(list(rows), 200):
                match = or_(*(and_(table.c.start_s == s, table.c.scope == sc) for s, sc in chunk))
                for found in (await conn.execute(select(table).where(match))).mappings():
                    existing[(found["start_s"], found["scope"])] = dict(found)
            conflicts = [
                c for c, row in rows.items() if c in existing and not _same(existing[c], row)
            ]
            if conflicts and not replace:
                raise ImportRefused([_conflict(c) for c in conflicts[:MAX_ERRORS]])
            fresh = [row for c, row in rows.items() if c not in existing or c in conflicts]
            for start_s, scope in conflicts:
                await conn.execute(
                    delete(table).where(table.c.start_s == start_s, table.c.scope == scope)
                )
            for chunk_rows in _chunked(fresh, 500):
                await conn.execute(table.insert(), chunk_rows)
            outcome.written, outcome.unchanged = len(fresh), len(rows) - len(fresh)
    finally:
        await db.dispose()
    return outcome


def _conflict(cell: tuple[int, str]) -> str:
    when = datetime.fromtimestamp(cell[0], UTC).isoformat()
    return (
        f"interval {when} scope {cell[1]}: history already holds other figures "
        "(live data or another import); --replace makes this import's figures win"
    )


def _chunked(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def main(
    settings: Settings,
    native: Sequence[Path],
    tables: Sequence[Path],
    replace: bool = False,
    demo: bool = False,
) -> Outcome:
    """Read and check everything, then write in one transaction; raises ImportRefused. `demo`
    marks every row as demo history (intervals.DEMO_FIELD)."""
    reader = read_all(settings, native, tables)
    if reader.problems:
        raise ImportRefused(reader.problems[:MAX_ERRORS])
    if demo:
        for counters in reader.cells.values():
            counters[intervals.DEMO_FIELD] = 1
    outcome = await write(settings, rows_of(reader.cells, int(reader.now_s)), replace)
    outcome.events, outcome.lines = reader.events, reader.lines
    return outcome
