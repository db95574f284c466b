"""Access control on the real processes: roles, sessions, tickets, Origin, tokens, limits."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest
import redis
import websockets
from websockets.exceptions import InvalidStatus

from simulator.scenario import iso
from tests.clock import clock
from tests.conftest import PipelineFactory
from tests.harness import ROOT, Pipeline

pytestmark = pytest.mark.e2e

ADMIN = "ccp_test_admin_key_0123456789"
VIEWER = "ccp_test_viewer_key_0123456789"
TOKEN = "ingest-token-0123456789"


@pytest.fixture
def secured(pipeline_factory: PipelineFactory) -> Pipeline:
    return pipeline_factory(
        {
            "CCPULSE_AUTH": "on",
            "CCPULSE_ADMIN_KEY": ADMIN,
            "CCPULSE_VIEWER_KEY": VIEWER,
            "CCPULSE_INGEST_TOKENS": json.dumps([TOKEN]),
            "CCPULSE_INGEST_RATE_PER_SECOND": "0.05",  # no refill within the test, however slow
            "CCPULSE_INGEST_BURST": "5",
        }
    )


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_every_endpoint_needs_the_right_role(secured: Pipeline) -> None:
    api = httpx.Client(base_url=secured.api_url, timeout=10)
    assert api.get("/api/v1/live").status_code == 401
    assert api.get("/metrics").status_code == 401
    assert api.get("/api/v1/live", headers=bearer("ccp_wrong_key_123456")).status_code == 401
    assert api.get("/api/v1/live", headers=bearer(VIEWER)).status_code == 200
    assert api.get("/metrics", headers=bearer(VIEWER)).status_code == 200
    assert api.get("/api/v1/keys", headers=bearer(VIEWER)).status_code == 403
    created = api.post(
        "/api/v1/keys", headers=bearer(ADMIN), json={"name": "plan", "role": "planner"}
    )
    assert created.status_code == 201, created.text
    planner = created.json()["key"]
    assert api.get("/api/v1/live", headers=bearer(planner)).status_code == 200
    assert api.get("/api/v1/keys", headers=bearer(planner)).status_code == 403
    for path in ("/api/v1/volume", "/api/v1/volume/heatmap", "/api/v1/staffing"):  # history
        assert api.get(path, headers=bearer(VIEWER)).status_code == 403, path
        assert api.get(path, headers=bearer(planner)).status_code == 200, path
    assert api.get("/api/v1/alerts", headers=bearer(VIEWER)).status_code == 200
    schema = api.get("/openapi.json").json()
    for path, methods in schema["paths"].items():  # nothing under /api answers without a key
        if path.startswith("/api/") and "get" in methods and "{" not in path:
            assert api.get(path).status_code == 401, path
    listed = api.get("/api/v1/keys", headers=bearer(ADMIN)).json()
    stored_keys = [k["name"] for k in listed if k.get("source") != "environment"]
    assert stored_keys == ["plan"] and planner not in json.dumps(listed)
    stored = redis.Redis.from_url(secured.redis_url).hgetall("ccp:apikeys")
    assert planner.encode() not in b"".join(k + v for k, v in stored.items()), "hashed at rest"
    assert (
        api.delete(f"/api/v1/keys/{created.json()['id']}", headers=bearer(ADMIN)).status_code == 204
    )
    assert api.get("/api/v1/live", headers=bearer(planner)).status_code == 401
    assert api.get("/healthz").status_code == 200  # probes stay open


def test_ingest_needs_a_token_and_limits_each_source(secured: Pipeline) -> None:
    event = {
        "id": "a1",
        "type": "contact.offered",
        "time": iso(clock.now() - 5),
        "contact": "a1",
        "channel": "voice",
    }
    url = f"{secured.ingest_url}/v1/events"
    assert httpx.post(url, json=event).status_code == 401
    assert httpx.post(url, json=event, headers=bearer("wrong")).status_code == 401
    statuses = [httpx.post(url, json=event, headers=bearer(TOKEN)).status_code for _ in range(12)]
    assert statuses[0] == 202 and 429 in statuses
    limited = httpx.post(url, json=event, headers=bearer(TOKEN))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    unconfigured = httpx.post(f"{secured.ingest_url}/webhooks/chatwoot", json={"event": "x"})
    assert (
        unconfigured.status_code == 401 and "CCPULSE_SOURCES__CHATWOOT_SECRET" in unconfigured.text
    )


async def _ws_first(url: str, **kwargs: object) -> dict[str, object]:
    async with websockets.connect(url, **kwargs) as ws:  # type: ignore[arg-type]
        return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))


def test_websocket_by_cookie_or_single_use_ticket_from_this_origin(secured: Pipeline) -> None:
    ws_url = secured.api_url.replace("http", "ws") + "/ws/wallboard"
    with pytest.raises(InvalidStatus):
        asyncio.run(_ws_first(ws_url))
    ticket = httpx.post(f"{secured.api_url}/api/v1/ws-ticket", headers=bearer(VIEWER)).json()
    assert asyncio.run(_ws_first(f"{ws_url}?ticket={ticket['ticket']}"))["type"] == "snapshot"
    with pytest.raises(InvalidStatus):  # single use
        asyncio.run(_ws_first(f"{ws_url}?ticket={ticket['ticket']}"))
    client = httpx.Client(base_url=secured.api_url)
    login = client.get(f"/login?key={VIEWER}", follow_redirects=False)
    assert login.status_code == 303 and "httponly" in login.headers["set-cookie"].lower()
    cookie = f"ccpulse_session={client.cookies['ccpulse_session']}"
    first = asyncio.run(_ws_first(ws_url, additional_headers={"cookie": cookie}))
    assert first["type"] == "snapshot"
    assert client.get("/api/v1/live").status_code == 200  # the cookie works for REST too
    evil = {"cookie": cookie, "origin": "http://evil.example"}
    with pytest.raises(InvalidStatus):
        asyncio.run(_ws_first(ws_url, additional_headers=evil))


def test_auth_off_is_refused_off_loopback() -> None:
    env = {"CCPULSE_AUTH": "off", "CCPULSE_API_HOST": "0.0.0.0", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "api"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "CCPULSE_AUTH=off is refused" in done.stderr


def test_config_tells_the_wallboard_the_thresholds(secured: Pipeline) -> None:
    response = httpx.get(f"{secured.api_url}/api/v1/config", headers=bearer(VIEWER))
    assert response.status_code == 200
    body = response.json()
    assert body["thresholds"]["service_level"] == {"warning": 0.8, "critical": 0.7}
    assert body["service_level"]["thresholds_seconds"]["voice"] == 20
    assert httpx.get(f"{secured.api_url}/api/v1/config").status_code == 401
