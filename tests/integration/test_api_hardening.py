"""The api's browser headers, docs exposure, websocket origins and CSV export, in process.

Issue 13: no CSP or nosniff on the pages, /docs and /openapi.json always open,
CCPULSE_ALLOWED_ORIGINS never read, and a queue named `=HYPERLINK(...)` exported as a live formula.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import websockets
from sqlalchemy import insert
from websockets.exceptions import InvalidStatus

from api.routes.planning import csv_cell
from ccpulse.stack import EmbeddedRedis
from services import database, intervals, keys, kpis
from tests.apiserver import ADMIN, VIEWER, api_settings, asgi_client, bearer, served


@pytest.mark.parametrize("path", ["/", "/planning/", "/?tv=1"])
async def test_pages_send_a_content_security_policy_and_no_sniffing(
    clean_redis: EmbeddedRedis, tmp_path: Path, path: str
) -> None:
    async with asgi_client(api_settings(clean_redis.url, tmp_path)) as api:
        page = await api.get(path)
        health = await api.get("/healthz")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = {d.split()[0]: d.split()[1:] for d in page.headers["content-security-policy"].split("; ")}
    assert csp["frame-ancestors"] == ["'none'"] and csp["script-src"][0] == "'self'"
    assert "'unsafe-inline'" not in csp["script-src"] and csp["object-src"] == ["'none'"]
    for response in (page, health):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("access", "anonymous", "viewer"),
    [(None, 200, 200), ("key", 401, 200), ("off", 404, 404)],
)
async def test_docs_and_schema_follow_the_setting(
    clean_redis: EmbeddedRedis,
    tmp_path: Path,
    access: str | None,
    anonymous: int,
    viewer: int,
) -> None:
    settings = api_settings(clean_redis.url, tmp_path, docs_access=access)
    async with asgi_client(settings) as api:
        for path in ("/openapi.json", "/docs"):
            assert (await api.get(path)).status_code == anonymous, path
            assert (await api.get(path, headers=bearer(VIEWER))).status_code == viewer, path
        if viewer == 200:
            schema = (await api.get("/openapi.json", headers=bearer(VIEWER))).json()
            assert "/api/v1/sessions" in schema["paths"]


async def _ws_first(url: str, origin: str) -> dict[str, object]:
    headers = {"origin": origin, "authorization": f"Bearer {VIEWER}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))


def test_websocket_origins_from_the_allowed_list_only(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    allowed = ["https://wallboard.example.com"]
    with served(api_settings(clean_redis.url, tmp_path, allowed_origins=allowed)) as base:
        ws = base.replace("http", "ws") + "/ws/wallboard"
        assert asyncio.run(_ws_first(ws, "https://wallboard.example.com"))["type"] == "snapshot"
        assert asyncio.run(_ws_first(ws, base))["type"] == "snapshot"  # this host
        for origin in ("https://evil.example", "https://wallboard.example.com.evil.example"):
            with pytest.raises(InvalidStatus):
                asyncio.run(_ws_first(ws, origin))


async def test_csv_cells_cannot_become_formulas(clean_redis: EmbeddedRedis, tmp_path: Path) -> None:
    settings = api_settings(clean_redis.url, tmp_path)
    await database.upgrade_async(settings)
    now = settings.clock().now()
    start = keys.interval_start_s(now) - 2 * keys.INTERVAL_SECONDS  # a closed interval
    queues = ['=HYPERLINK("http://evil.example","x")', "+1", "@SUM(A1)", "-2", "plain"]
    engine = database.make_engine(settings)
    async with engine.begin() as conn:
        for queue in queues:
            row = intervals.to_row(start, keys.queue_scope("voice", queue), {kpis.OFFERED: 3}, 0)
            await conn.execute(insert(intervals.interval_counters).values(**row))
    await engine.dispose()
    async with asgi_client(settings) as api:
        response = await api.get(
            "/api/v1/volume",
            params={
                "interval": "15m",
                "group_by": "queue",
                "from": _iso(start - 900),
                "to": _iso(start + 1800),
                "tz": "UTC",
            },
            headers={**bearer(ADMIN), "accept": "text/csv"},
        )
    assert response.status_code == 200, response.text
    cells = {row["queue"] for row in csv.DictReader(io.StringIO(response.text)) if row["queue"]}
    assert cells == {"'" + q for q in queues if q != "plain"} | {"plain"}
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_numbers_stay_numbers_and_tabs_are_quoted_too() -> None:
    assert csv_cell(-3) == -3 and csv_cell(None) == "" and csv_cell("\tx") == "'\tx"


async def test_without_redis_access_checks_answer_503_not_500(tmp_path: Path) -> None:
    settings = api_settings("redis://:pw@127.0.0.1:1/0", tmp_path)  # nothing listens there
    async with asgi_client(settings) as api:
        response = await api.get("/api/v1/config", headers=bearer(VIEWER))
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "unavailable" in response.json()["detail"]
