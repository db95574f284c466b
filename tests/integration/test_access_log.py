"""The access-log middleware in process: one line per request unless switched off, the request
id on every line a request writes and in the response, on the real ingest app's middleware stack.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from ingest.app import create_app
from services import logs
from services.settings import Settings

HANDLER_LOG = logging.getLogger("ccpulse.test.handler")


async def handler(request: Request) -> PlainTextResponse:
    HANDLER_LOG.warning("handling %s", request.path_params["who"])
    return PlainTextResponse("ok", status_code=201)


def app(enabled: bool) -> logs.AccessLog:
    return logs.AccessLog(Starlette(routes=[Route("/hello/{who}", handler)]), enabled=enabled)


def get(asgi: object, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(run())


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(logs.RequestIdFilter())
    return caplog


def test_each_line_of_a_request_carries_its_id(captured: pytest.LogCaptureFixture) -> None:
    response = get(app(True), "/hello/x?q=1", {"X-Request-ID": "trace-12345678"})
    assert response.status_code == 201
    assert response.headers["x-request-id"] == "trace-12345678"
    lines = {r.name: r for r in captured.records}
    assert lines["ccpulse.test.handler"].request_id == "trace-12345678"  # type: ignore[attr-defined]
    access = lines[logs.ACCESS_LOGGER]
    assert access.request_id == "trace-12345678"  # type: ignore[attr-defined]
    assert access.path == "/hello/{who}?q"  # type: ignore[attr-defined]
    assert (access.method, access.status) == ("GET", 201)  # type: ignore[attr-defined]


def test_access_log_off_by_setting(captured: pytest.LogCaptureFixture) -> None:
    response = get(app(False), "/hello/x")
    assert response.headers["x-request-id"]  # ids stay: other lines still carry them
    names = [r.name for r in captured.records if r.name.startswith("ccpulse.")]
    assert names == ["ccpulse.test.handler"]


@pytest.mark.parametrize("enabled", [True, False])
def test_ingest_app_follows_the_setting(captured: pytest.LogCaptureFixture, enabled: bool) -> None:
    settings = Settings(auth="off", access_log=enabled, kafka_bootstrap="127.0.0.1:9")
    response = get(create_app(settings), "/healthz")
    assert response.status_code == 200 and response.headers["x-request-id"]
    access = [r for r in captured.records if r.name == logs.ACCESS_LOGGER]
    assert len(access) == (1 if enabled else 0)
