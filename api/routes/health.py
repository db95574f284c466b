"""Liveness and readiness: ready means Redis answers (and the broker, where configured)."""

from __future__ import annotations

import asyncio
import socket

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from ..deps import State

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> JSONResponse:
    redis_ok = await _redis_ok(state)
    broker_ok = await asyncio.to_thread(_broker_ok, state.settings.kafka_bootstrap)
    ok = redis_ok and broker_ok
    return JSONResponse({"redis": redis_ok, "broker": broker_ok}, status_code=200 if ok else 503)


async def _redis_ok(state: State) -> bool:
    try:
        return bool(await asyncio.wait_for(state.redis.ping(), 2))
    except (RedisError, OSError, TimeoutError):
        return False


def _broker_ok(bootstrap: str | None) -> bool:
    """A TCP connect to any bootstrap server: the api itself never talks Kafka."""
    if not bootstrap:
        return False
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
                return True
        except (OSError, ValueError):
            continue
    return False
