"""What both ingest routers share at the HTTP edge: a body read within its limits, and the 503.

`/v1/events` and the vendor webhooks read bodies the same way (the size limit checked before the
body is all in memory, the whole body within the body timeout, so a slow sender holds no worker)
and answer the same 503 when the broker is down; each turns a refusal into its own answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import Message

from services import problems
from services.settings import Settings

RETRY_AFTER_S = 5


class BodyError(Exception):
    def __init__(self, status: int, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


async def read_body(request: Request, settings: Settings) -> bytes:
    """The body within `max_body_bytes` (BodyError) and the body timeout (TimeoutError)."""
    async with asyncio.timeout(settings.ingest_body_timeout_seconds):
        return await read_limited(request, settings.max_body_bytes)


async def read_limited(request: Request, limit: int) -> bytes:
    """Read at most `limit` bytes; a longer body is refused before it is all in memory. The
    messages are taken here, not through `limited_chunks`: an async generator per request cost
    a webhook more than reading its one chunk."""
    _check_declared(request, limit)
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        chunk, more = _chunk(await request.receive(), size, limit)
        size += len(chunk)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def limited_chunks(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks, refused (BodyError) once a declared or received size passes `limit`
    or the sender hangs up."""
    _check_declared(request, limit)
    size, more = 0, True
    while more:
        chunk, more = _chunk(await request.receive(), size, limit)
        size += len(chunk)
        yield chunk


def _check_declared(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, f"body is {declared} bytes, the limit is {limit}")


def _chunk(message: Message, size: int, limit: int) -> tuple[bytes, bool]:
    """One ASGI message's body and whether more follows, after `size` bytes: refused past
    `limit`, or when the sender hung up."""
    if message["type"] == "http.disconnect":
        raise client_gone()
    chunk: bytes = message.get("body", b"")
    if size + len(chunk) > limit:
        raise BodyError(413, f"body exceeds the limit of {limit} bytes")
    return chunk, bool(message.get("more_body", False))


def client_gone() -> BodyError:
    """A sender that hangs up mid-body is a refused request (counted, a 400 in the access log),
    not an 'Exception in ASGI application' with a 500 line."""
    return BodyError(400, "the client disconnected before sending the whole body")


def broker_unavailable() -> JSONResponse:
    """503 with Retry-After: nothing was published, the sender should retry."""
    return problems.problem(
        503,
        "the event broker is unavailable; retry later",
        headers={"Retry-After": str(RETRY_AFTER_S)},
        retry_after=RETRY_AFTER_S,
    )
