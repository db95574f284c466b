"""`POST /v1/events`: check a batch whole, pseudonymise it, and answer only once Kafka has it."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services import contract, problems
from services.contract import ContactEvent, FieldError

from . import jsonsafe
from .edge import BodyError, read_body
from .limits import source_of
from .state import IngestState, future_errors, refusal, time_errors

router = APIRouter()
EVENTS_PATH = "/v1/events"

# orjson turns integers beyond 64 bits into floats where `json` keeps them exact: a body with a
# run of 19 digits takes the standard parser, so no value is ever decoded differently. Found by
# mapping ASCII digits to "0" and the rest to " " (str.translate: far cheaper than a regex).
_DIGIT_RUNS = str.maketrans({chr(c): "0" if chr(c).isdigit() else " " for c in range(128)})
_LONG_RUN = "0" * 19


def decode_body(raw: bytes, content_type: str, max_events: int) -> list[Any]:
    """One JSON event, a JSON array, or NDJSON; raises BodyError naming what is wrong."""
    if not raw.strip():
        raise BodyError(400, "body is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"body is not UTF-8 (byte {exc.start})") from exc
    if "ndjson" in content_type or "jsonl" in content_type:
        items = _ndjson(text)
    else:
        try:
            value = _loads(text)
        except jsonsafe.NotJson:
            items = _ndjson(text)
        except jsonsafe.JsonRefused as exc:
            raise BodyError(400, f"{exc.field}: {exc.message}", exc.field) from exc
        else:
            items = value if isinstance(value, list) else [value]
    if len(items) > max_events:
        raise BodyError(413, f"batch holds {len(items)} events, the limit is {max_events}")
    if not items:
        raise BodyError(400, "batch is empty")
    return items


def _ndjson(text: str) -> list[Any]:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(_loads(line))
        except jsonsafe.NotJson as exc:
            raise BodyError(
                400, f"line {number}: invalid JSON ({exc.msg})", f"line {number}"
            ) from exc
        except jsonsafe.JsonRefused as exc:
            where = f"line {number}: {exc.field}"
            raise BodyError(400, f"{where}: {exc.message}", where) from exc
    return items


def _loads(text: str) -> Any:
    """orjson (several times faster) when it takes the text; anything it refuses goes to the
    standard parser, which accepts or refuses, and names the refusal, exactly as before."""
    if _LONG_RUN not in text.translate(_DIGIT_RUNS):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            if not _depth_within(value, jsonsafe.MAX_DEPTH):
                jsonsafe.check(value)  # refuses, naming where
            return value
    return jsonsafe.loads(text)


def _depth_within(value: Any, limit: int) -> bool:
    """What `jsonsafe.check` would find in orjson's output, level by level without paths: orjson
    refuses lone surrogates itself (and UTF-8 decoding yields none), so only depth is left."""
    level = [value]
    for _ in range(limit + 1):
        level = [
            inner
            for item in level
            if isinstance(item, dict | list)
            for inner in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return True
    return False


def validate(items: list[Any], now_s: float) -> tuple[list[ContactEvent], list[FieldError]]:
    events: list[ContactEvent] = []
    errors: list[FieldError] = []
    valid = contract.parse_valid(items)  # one call for a clean batch; per event otherwise
    if valid is not None:  # the loop below in one pass: only times can be wrong here
        errors = future_errors([e.time.timestamp() for e in valid], now_s)
        late = {e.index for e in errors}
        return [e for i, e in enumerate(valid) if i not in late] if late else valid, errors
    for index, item in enumerate(items):
        event, problems = contract.parse_event(item, index)
        if event is not None:
            problems = time_errors([event], now_s, first_index=index)
        if problems:
            errors.extend(problems)
        elif event is not None:
            events.append(event)
    return events, errors


def _unauthorised(authorization: str | None) -> str:
    if authorization is not None and not authorization.isascii():
        return (
            "authorization: holds non-ASCII characters; tokens from CCPULSE_INGEST_TOKENS are ASCII"
        )
    return "authorization: a bearer token from CCPULSE_INGEST_TOKENS is required"


@router.post("/v1/events", status_code=202, summary="Submit contact events")
async def post_events(request: Request) -> Response:
    """Accept one event, an array or NDJSON; 202 means the broker acknowledged every event."""
    return problems.at(await _post_events(request), EVENTS_PATH)


async def _post_events(request: Request) -> JSONResponse:
    state: IngestState = request.app.state.ingest
    authorization = request.headers.get("authorization")
    client = request.client.host if request.client else None
    if not state.authorised(authorization):
        wait = state.limits.failed(client)
        if wait > 0:
            return state.too_many(wait, "failed authentications from this client")
        state.metrics.refused.labels("unauthenticated").inc()
        return refusal(
            401, _unauthorised(authorization), [{"index": None, "field": "authorization"}]
        )
    # the scope's path: `request.url` builds a whole URL for the one prefix test in source_of
    wait = state.limits.admit(source_of(request.scope["path"], authorization, client))
    if wait > 0:
        return state.too_many(wait, "this token")
    try:
        raw = await read_body(request, state.settings)
        items = decode_body(
            raw, request.headers.get("content-type", ""), state.settings.max_batch_events
        )
    except TimeoutError:
        state.metrics.refused.labels("slow_body").inc()
        return refusal(
            408, "body: not received within the timeout", [{"index": None, "field": "body"}]
        )
    except BodyError as exc:
        state.metrics.rejected("body", 1)
        return refusal(
            exc.status, exc.message, [{"index": None, "field": exc.field, "message": exc.message}]
        )
    events, errors = validate(items, state.clock.now())
    if errors:
        state.metrics.rejected("invalid", len({e.index for e in errors}))
        rows = [e.model_dump() for e in errors]
        return refusal(422, f"{len(rows)} problem(s); the batch was not accepted", rows)
    return await state.accept(events, source="events")


@router.get("/v1/schema", summary="JSON Schema of the contact event")
async def schema() -> dict[str, Any]:
    return contract.json_schema()
