"""The per-contact export as a stream of CSV or NDJSON lines, from the SQL `contacts` table.

Rows come through a server-side cursor in chunks (`yield_per`) and leave as encoded lines chunk
by chunk, so memory stays flat whatever the range: a planner's 90 days export like one hour.
Columns are fixed and in a fixed order (docs/contacts.md).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services import intervals

Format = Literal["csv", "ndjson"]
CHUNK_ROWS = 2000
EXPORT_COLUMNS: tuple[str, ...] = tuple(
    str(c.name) for c in intervals.contacts.columns if c.name != "updated_s"
)
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """Contacts that began in [start_ms, end_ms), optionally of one channel and one queue."""

    start_ms: int
    end_ms: int
    channel: str | None = None
    queue: str | None = None


def statement(q: ExportQuery) -> Select[Any]:
    t = intervals.contacts
    stmt = select(*(t.c[name] for name in EXPORT_COLUMNS)).where(
        t.c.start_ms >= q.start_ms, t.c.start_ms < q.end_ms
    )
    if q.channel is not None:
        stmt = stmt.where(t.c.channel == q.channel)
    if q.queue is not None:
        stmt = stmt.where(t.c.queue == q.queue)
    return stmt.order_by(t.c.start_ms, t.c.contact)


async def export_lines(
    engine: AsyncEngine, q: ExportQuery, fmt: Format, chunk: int = CHUNK_ROWS
) -> AsyncIterator[bytes]:
    """The header (CSV), then one encoded block per chunk of rows."""
    encode = _csv_block if fmt == "csv" else _ndjson_block
    if fmt == "csv":
        yield _csv_block([EXPORT_COLUMNS])
    async with engine.connect() as conn:
        result = await conn.stream(statement(q).execution_options(yield_per=chunk))
        async for rows in result.partitions(chunk):
            yield encode(rows)


def csv_cell(value: Any) -> Any:
    """Empty for unknown, lower-case booleans like NDJSON's, and OWASP's rule against CSV
    injection: text a spreadsheet would run as a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_block(rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return out.getvalue().encode()


def _ndjson_block(rows: Sequence[Sequence[Any]]) -> bytes:
    return b"".join(
        orjson.dumps(dict(zip(EXPORT_COLUMNS, row, strict=True))) + b"\n" for row in rows
    )
