"""`read_body`'s timeout (ingest/edge.py): what the 408 of `/v1/events` and webhooks rest on."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from starlette.requests import Request

from ingest import edge
from services.settings import Settings


def hanging_request(first: bytes) -> Request:
    """A request whose sender sends `first` and then nothing more."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": first, "more_body": True}
        await asyncio.sleep(60)
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/v1/events", "headers": []}
    return Request(scope, receive)


def body_settings(timeout_s: float) -> Settings:
    return cast(
        Settings,
        SimpleNamespace(ingest_body_timeout_seconds=timeout_s, max_body_bytes=1_000),
    )


async def test_a_body_not_received_within_the_timeout_is_a_timeout() -> None:
    """What the 408 of `/v1/events` and the webhooks rests on (ingest/edge.py)."""
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await edge.read_body(hanging_request(b'{"id"'), body_settings(0.05))
    assert 0.045 <= time.monotonic() - started < 0.5


async def test_a_whole_body_is_read_within_the_timeout() -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/v1/events", "headers": []}
    assert await edge.read_body(Request(scope, receive), body_settings(0.05)) == b"{}"
