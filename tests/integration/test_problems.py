"""One error shape for both apps: RFC 9457 problem+json, the same status for the same fault.

In process: the api against the session's Redis, the ingest with no broker (every request
here is refused before anything would be published).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from ccpulse.stack import EmbeddedRedis
from ingest.app import create_app as create_ingest
from services.settings import Settings
from tests.apiserver import ADMIN, VIEWER, api_settings, asgi_client, bearer

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, path: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == "about:blank" and body["status"] == status
    assert body["title"] and isinstance(body["detail"], str) and body["instance"] == path
    assert all({"field", "message", "index"} <= set(row) for row in body["errors"])
    return body


async def test_api_parameter_faults_are_422_problems_naming_the_field(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    async with asgi_client(api_settings(clean_redis.url, tmp_path)) as api:
        typed = await api.get("/api/v1/live?sl_variant=sometimes", headers=bearer(VIEWER))
        checked = await api.get("/api/v1/live?window=2h", headers=bearer(VIEWER))
        anonymous = await api.get("/api/v1/live")
    body = assert_problem(typed, 422, "/api/v1/live")
    assert [row["field"] for row in body["errors"]] == ["sl_variant"]
    assert body["detail"].startswith("sl_variant: ")
    body = assert_problem(checked, 422, "/api/v1/live")
    assert body["detail"].startswith("window: ") and body["errors"][0]["field"] == "window"
    assert_problem(anonymous, 401, "/api/v1/live")
    assert anonymous.headers["www-authenticate"] == "Bearer"


async def test_volume_range_fault_is_422_like_the_other_parameter_faults(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    too_long = "/api/v1/volume?interval=15m&from=2026-01-01&to=2026-03-01"
    bad_date = "/api/v1/volume?from=yesterday"
    async with asgi_client(api_settings(clean_redis.url, tmp_path)) as api:
        long_answer = await api.get(too_long, headers=bearer(ADMIN))
        date_answer = await api.get(bad_date, headers=bearer(ADMIN))
    body = assert_problem(long_answer, 422, "/api/v1/volume")
    assert "31-day limit" in body["detail"] and body["errors"][0]["field"] == "from/to"
    assert assert_problem(date_answer, 422, "/api/v1/volume")["detail"].startswith("from: ")


@asynccontextmanager
async def ingest_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(auth="off", data_dir=tmp_path)
    transport = httpx.ASGITransport(app=create_ingest(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


async def test_ingest_field_faults_are_422_problems_naming_each_field(tmp_path: Path) -> None:
    event = {"id": "e1", "type": "contact.offered", "contact_id": "c1", "channel": "voice"}
    async with ingest_client(tmp_path) as ingest:
        invalid = await ingest.post("/v1/events", json=[event, {**event, "channel": "fax"}])
        not_json = await ingest.post("/v1/events", content=b"{not json")
        nowhere = await ingest.get("/v1/nowhere")
    body = assert_problem(invalid, 422, "/v1/events")
    fields = {(row["index"], row["field"]) for row in body["errors"]}
    assert (0, "time") in fields and (1, "channel") in fields, body
    assert all(row["message"] for row in body["errors"])
    assert "problem(s)" in body["detail"]
    assert_problem(not_json, 400, "/v1/events")
    assert_problem(nowhere, 404, "/v1/nowhere")
