"""The real api app in this process: over httpx.ASGITransport, or under a real uvicorn thread.

For access tests that need an exact clock (ManualClock) or several restarts against one Redis,
without starting the whole pipeline.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from services.clock import Clock
from services.settings import Settings

ADMIN = "ccp_admin_" + "a1" * 20
VIEWER = "ccp_viewer_" + "v2" * 20


def api_settings(redis_url: str, tmp_path: Path, **extra: Any) -> Settings:
    """Access on, bootstrap keys set, history in a throwaway SQLite file."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'history.db'}",
        "data_dir": tmp_path,
        "auth": "on",
        "admin_key": ADMIN,
        "viewer_key": VIEWER,
        "alert_rules": [],
        **extra,
    }
    return Settings(**values)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@asynccontextmanager
async def asgi_client(
    settings: Settings, clock: Clock | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app without a server: requests go straight into it (no lifespan, no websockets)."""
    app = create_app(settings, clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client
    await app.state.api.redis.aclose()
    if app.state.api.reader.redis is not app.state.api.redis:  # CCPULSE_REDIS_REPLICA_URL
        await app.state.api.reader.redis.aclose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(settings: Settings) -> Iterator[str]:
    """The app under uvicorn on a loopback port in a thread; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
