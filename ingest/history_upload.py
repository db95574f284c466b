"""`POST /v1/history/imports`: an admin posts past data; it goes to history, all or nothing.

The ingest does what it does for live traffic: checks every line (a bad one refuses the upload
with 422, naming its line), maps vendor exports with the live adapters, pseudonymises. The
checked events (or the interval CSV) then go to the history-import topic as one job; the
aggregator writes the SQL rows in one transaction and records the outcome in Redis, where the
api answers `GET /api/v1/history/imports/{id}` (docs/history.md#import-over-http).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from redis.exceptions import RedisError

from services import keys, problems
from services.apikeys import Role
from services.clock import iso_utc
from services.contract import ContactEvent, parse_event
from services.imports import CHUNK_BYTES, JOB_TTL_S, ImportFormat, ImportJob, Part

from . import admin_keys, convert, jsonsafe
from .edge import BodyError, broker_unavailable, limited_chunks
from .publisher import BrokerUnavailable
from .state import IngestState

log = logging.getLogger("ccpulse.ingest.history")
router = APIRouter()
IMPORTS_PATH = "/v1/history/imports"
STATUS_PATH = "/api/v1/history/imports/{id}"
MAX_PROBLEMS = 50


class UploadRefused(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s); nothing was imported")
        self.problems = problems[:MAX_PROBLEMS]


@router.post(
    IMPORTS_PATH,
    status_code=202,
    summary="Import past data into history (admin key)",
    responses={
        401: {"description": "No key, or an unknown or revoked one"},
        403: {"description": "The key is not an admin's"},
        413: {"description": "The upload is larger than CCPULSE_HISTORY_IMPORT_MAX_BYTES"},
        422: {"description": "Bad lines, each named; nothing was imported"},
        503: {"description": "Redis or the broker is unavailable; nothing was imported"},
    },
)
async def post_import(
    request: Request,
    format: Annotated[ImportFormat, Query(description="What the body holds")],
    replace: Annotated[
        bool, Query(description="Rows holding other figures take this import's (else refused)")
    ] = False,
    name: Annotated[
        str, Query(max_length=200, description="The file's name, used in problem locations")
    ] = "upload",
) -> Response:
    """The body is the file as exported (gzip accepted). 202 names the job; its state is at
    `/api/v1/history/imports/{id}`: queued, importing, then done or refused."""
    state: IngestState = request.app.state.ingest
    refused = await _admin_refusal(request, state)
    if refused is not None:
        return problems.at(refused, IMPORTS_PATH)
    with tempfile.TemporaryDirectory(prefix="ccpulse-upload-") as scratch:
        try:
            path, size = await _spool(request, state, Path(scratch))
            kind, chunks, events = await asyncio.to_thread(_checked, state, format, path, name)
        except BodyError as exc:
            state.metrics.refused.labels("history_import_body").inc()
            return problems.problem(exc.status, exc.message, [{"field": exc.field}])
        except UploadRefused as exc:
            state.metrics.refused.labels("history_import_invalid").inc()
            rows = [{"field": p.split(": ", 1)[0], "message": p} for p in exc.problems]
            return problems.problem(422, f"{exc}", rows, instance=IMPORTS_PATH)
    job = ImportJob(
        id=uuid.uuid4().hex,
        state="queued",
        format=format,
        name=name,
        replace=replace,
        received_at=iso_utc(state.clock.now()),
        bytes=size,
        events=events,
    )
    return await _publish(state, job, kind, chunks)


async def _admin_refusal(request: Request, state: IngestState) -> JSONResponse | None:
    if state.settings.auth == "off":
        return None
    key = admin_keys.bearer(request.headers.get("authorization"))
    if key is None:
        return _auth_problem(401, "authorization: an admin API key is required (Bearer)")
    try:
        role = await admin_keys.role_of(state.redis, state.settings, key)
    except (RedisError, OSError):
        return problems.problem(503, "key store (Redis) unavailable; retry later")
    if role is None:
        return _auth_problem(401, "authorization: unknown or revoked key")
    if role < Role.admin:
        return problems.problem(
            403, f"authorization: a {role.name} key cannot import history; an admin key can"
        )
    return None


def _auth_problem(status: int, detail: str) -> JSONResponse:
    return problems.problem(
        status, detail, [{"field": "authorization"}], headers={"WWW-Authenticate": "Bearer"}
    )


async def _spool(request: Request, state: IngestState, scratch: Path) -> tuple[Path, int]:
    """The body to a file within the size limit, never all in memory; gzip keeps `.gz`."""
    raw = scratch / "body"
    size = 0
    with raw.open("wb") as sink:
        async for chunk in limited_chunks(request, state.settings.history_import_max_bytes):
            size += len(chunk)
            sink.write(chunk)
    if size == 0:
        raise BodyError(400, "body is empty")
    with raw.open("rb") as head:
        zipped = head.read(2) == b"\x1f\x8b"
    path = raw.rename(scratch / ("upload.gz" if zipped else "upload"))
    return path, size


def _checked(
    state: IngestState, fmt: ImportFormat, path: Path, name: str
) -> tuple[Part, list[bytes], int]:
    """(what the chunks hold, the chunks, events); raises UploadRefused naming every bad line."""
    if fmt is ImportFormat.intervals:
        return Part.intervals, list(_chunks(_lines(path, name))), 0
    if fmt is ImportFormat.events:
        events = _native(state, path, name)
    else:
        found, bad = convert.convert(fmt.value, [path], state.settings)
        if bad:
            raise UploadRefused([p.replace(str(path), name, 1) for p in bad])
        events = found
    return Part.events, list(_chunks(e.to_wire() + b"\n" for e in events)), len(events)


def _lines(path: Path, name: str) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            for line in handle:
                line.decode("utf-8")
                yield line if line.endswith(b"\n") else line + b"\n"
    except UnicodeDecodeError as exc:
        raise UploadRefused([f"{name}: not UTF-8 text"]) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise UploadRefused([f"{name}: unreadable ({type(exc).__name__})"]) from exc


def _native(state: IngestState, path: Path, name: str) -> list[ContactEvent]:
    """Contract events, one JSON object a line, checked as `/v1/events` checks them (but any
    age within the retention: the aggregator's importer refuses older) and pseudonymised."""
    events: list[ContactEvent] = []
    bad: list[str] = []
    for number, line in enumerate(_lines(path, name), start=1):
        if not line.strip():
            continue
        try:
            value: Any = jsonsafe.loads(line.decode())
        except jsonsafe.NotJson as exc:
            bad.append(f"{name}:{number}: invalid JSON ({exc.msg})")
            continue
        except jsonsafe.JsonRefused as exc:
            bad.append(f"{name}:{number}: {exc.field}: {exc.message}")
            continue
        event, errors = parse_event(value)
        if event is None:
            bad.extend(f"{name}:{number}: {e.field}: {e.message}" for e in errors)
        else:
            events.append(state.protect(event))
        if len(bad) >= MAX_PROBLEMS:
            break
    if bad:
        raise UploadRefused(bad)
    return events


def _chunks(lines: Iterator[bytes]) -> Iterator[bytes]:
    """Whole lines, up to CHUNK_BYTES a chunk (a longer line goes alone)."""
    buffer: list[bytes] = []
    size = 0
    for line in lines:
        if buffer and size + len(line) > CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
        buffer.append(line)
        size += len(line)
    if buffer:
        yield b"".join(buffer)


async def _publish(
    state: IngestState, job: ImportJob, kind: Part, chunks: list[bytes]
) -> JSONResponse:
    """State `queued` first (the aggregator's later states overwrite it), then every record of
    the job in one acknowledged send; 202 only once the broker has them all."""
    status_key = keys.history_import_key(job.id)
    key = job.id.encode()
    records: list[tuple[bytes | None, bytes]] = [
        (key, _record(Part.begin, job.model_dump_json().encode())),
        *((key, _record(kind, chunk)) for chunk in chunks),
        (key, _record(Part.end, str(len(chunks)).encode())),
    ]
    try:
        await state.redis.set(status_key, job.model_dump_json(), ex=JOB_TTL_S)
    except (RedisError, OSError):
        return problems.problem(503, "job store (Redis) unavailable; retry later")
    try:
        topic = state.settings.topic(keys.TOPIC_HISTORY_IMPORT)
        await state.publisher.send_all(topic, records)
    except BrokerUnavailable as exc:
        state.metrics.refused.labels("broker_unavailable").inc()
        log.warning("history import %s refused: %s", job.id, exc)
        await _forget(state, status_key)
        return broker_unavailable()
    state.metrics.events.labels("history_import", "accepted").inc(job.events)
    location = STATUS_PATH.format(id=job.id)
    body = {**json.loads(job.model_dump_json()), "status_url": location}
    return JSONResponse(body, status_code=202, headers={"Location": location})


async def _forget(state: IngestState, status_key: str) -> None:
    try:
        await state.redis.delete(status_key)
    except (RedisError, OSError):
        log.warning("could not remove the state of a refused import (%s)", status_key)


def _record(part: Part, payload: bytes) -> bytes:
    """`part` name, a newline, the payload: the topic's records are self-describing."""
    return part.value.encode() + b"\n" + payload
