"""Per-contact export: one row per contact of a range, CSV or NDJSON, streamed from SQL history.

Same role as the planners' endpoints. The stream starts before the last row is read, so a
refusal (bad range, no database) is decided first; a failure mid-stream cuts the body short.
"""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from services import problems
from services.contract import Channel

from ..contacts_export import EXPORT_COLUMNS, MEDIA_TYPES, ExportQuery, Format, export_lines
from ..deps import State
from .params import when, zone_of

router = APIRouter(prefix="/api/v1", tags=["history"])

CSV_EXAMPLE = ",".join(EXPORT_COLUMNS) + "\n"


def _epoch_ms(name: str, value: str, zone: ZoneInfo) -> int:
    parsed = when(name, value, zone)
    assert parsed is not None
    return int(parsed.timestamp() * 1000)


@router.get(
    "/contacts/export",
    summary="One row per contact that began in [from, to), CSV or NDJSON, streamed",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "text/csv": {
                    "schema": {"type": "string", "description": "header, then one row each"},
                    "example": CSV_EXAMPLE,
                },
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "one JSON object per line"},
                },
            }
        },
        **problems.responses(422, 503),
    },
)
async def export_contacts(
    state: State,
    start: Annotated[str, Query(alias="from", examples=["2026-11-23"])],
    end: Annotated[str, Query(alias="to", examples=["2026-11-24T00:00:00"])],
    channel: Annotated[Channel | None, Query(description="Only this channel")] = None,
    queue: Annotated[str | None, Query(description="Only this queue", max_length=128)] = None,
    format: Annotated[Format, Query(description="csv (with a header) or ndjson")] = "csv",
    tz: Annotated[
        str | None, Query(description="IANA time zone of from/to without an offset")
    ] = None,
) -> Any:
    zone = zone_of(state, tz)
    query = ExportQuery(
        _epoch_ms("from", start, zone),
        _epoch_ms("to", end, zone),
        channel.value if channel else None,
        queue,
    )
    if query.end_ms <= query.start_ms:
        raise HTTPException(422, detail="to: must be after from")
    if state.history is None:
        raise HTTPException(503, detail="history database is not configured")
    return StreamingResponse(
        export_lines(state.history.engine, query, format),
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="contacts.{format}"'},
    )
