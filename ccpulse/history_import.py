"""`ccpulse history import`: sort the files by format, map vendor exports with the live adapters
(ingest), then import everything in one transaction (aggregator), all or nothing.

The work's modules are imported when it runs."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from services.imports import ImportFormat
from services.settings import Settings

if TYPE_CHECKING:
    from aggregator.importer import Outcome


def format_of(path: Path, fmt: ImportFormat | None) -> ImportFormat:
    """`--format`, else by name: `.csv` intervals, `queue_log*` Asterisk, others native events."""
    if fmt is not None:
        return fmt
    if ".csv" in path.suffixes:
        return ImportFormat.intervals
    return ImportFormat.queue_log if path.name.startswith("queue_log") else ImportFormat.events


def _sorted_files(
    settings: Settings, files: Sequence[Path], fmt: ImportFormat | None, scratch: Path
) -> tuple[list[Path], list[Path]]:
    """(event files, interval tables); vendor exports converted to events first (raises
    convert.ConvertRefused naming every bad line)."""
    from ingest import convert

    events: list[Path] = []
    tables: list[Path] = []
    for index, path in enumerate(files):
        kind = format_of(path, fmt)
        if kind is ImportFormat.intervals:
            tables.append(path)
        elif kind is ImportFormat.events:
            events.append(path)
        else:
            converted = scratch / f"{index}.jsonl"
            convert.main(settings, kind.value, [path], converted)
            events.append(converted)
    return events, tables


def import_files(
    settings: Settings, files: Sequence[Path], fmt: ImportFormat | None, replace: bool
) -> Outcome:
    """Raises convert.ConvertRefused or importer.ImportRefused; then nothing was written."""
    from aggregator import importer

    with tempfile.TemporaryDirectory(prefix="ccpulse-import-") as scratch:
        events, tables = _sorted_files(settings, files, fmt, Path(scratch))
        return asyncio.run(importer.main(settings, events, tables, replace))
