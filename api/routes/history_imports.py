"""`GET /api/v1/history/imports/{id}`: how an import posted to the ingest is going.

The ingest writes `queued` when the broker has the upload, the aggregator `importing`, then
`done` (rows written and unchanged) or `refused` (every problem, with file and line); kept 7 days.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from redis.exceptions import RedisError

from services import keys, problems
from services.imports import JOB_ID, ImportJob

from ..deps import State

router = APIRouter(prefix="/api/v1", tags=["history"])


@router.get(
    "/history/imports/{job_id}",
    summary="The state of a history import posted to the ingest",
    response_model=ImportJob,
    responses=problems.responses(404, 422, 503),
)
async def history_import(
    state: State,
    job_id: Annotated[str, Path(description="The id the ingest's 202 gave", max_length=32)],
) -> ImportJob:
    if not JOB_ID.match(job_id):
        raise HTTPException(422, "job_id: 32 hexadecimal characters, as the ingest's 202 gave")
    try:
        raw = await state.redis.get(keys.history_import_key(job_id))
    except (RedisError, OSError) as exc:
        raise HTTPException(503, "live store (Redis) unavailable; retry later") from exc
    if raw is None:
        raise HTTPException(404, "job_id: no such import (or older than 7 days)")
    return ImportJob.model_validate_json(raw)
