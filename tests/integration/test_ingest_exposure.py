"""The ingest's /docs, /openapi.json and /metrics follow their settings (issue 13: always open).

In process over httpx.ASGITransport; no broker is needed, as nothing here is published.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ingest.app import create_app
from services.settings import Settings

TOKEN = "ingest-token-" + "t" * 32


async def _statuses(**values: Any) -> dict[str, tuple[int, int]]:
    """path -> (status without a token, status with one)."""
    settings = Settings(auth="on", ingest_tokens=[TOKEN], kafka_bootstrap="127.0.0.1:1", **values)
    transport = httpx.ASGITransport(app=create_app(settings))
    out = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for path in ("/metrics", "/openapi.json", "/docs"):
            anonymous = await client.get(path)
            holder = await client.get(path, headers={"authorization": f"Bearer {TOKEN}"})
            out[path] = (anonymous.status_code, holder.status_code)
        assert (await client.get("/healthz")).status_code == 200  # probes stay open
    return out


async def test_loopback_defaults_leave_them_open() -> None:
    assert set((await _statuses()).values()) == {(200, 200)}


@pytest.mark.parametrize(
    ("values", "metrics", "docs"),
    [
        ({"ingest_metrics_access": "key", "docs_access": "off"}, (401, 200), (404, 404)),
        ({"ingest_metrics_access": "off", "docs_access": "key"}, (404, 404), (401, 200)),
    ],
)
async def test_each_is_behind_a_token_or_off_as_set(
    values: dict[str, str], metrics: tuple[int, int], docs: tuple[int, int]
) -> None:
    got = await _statuses(**values)
    assert got["/metrics"] == metrics
    assert got["/openapi.json"] == got["/docs"] == docs


async def test_off_loopback_they_need_a_token_by_default() -> None:
    strong = {"hash_key": "h" * 40, "admin_key": "a" * 40}
    got = await _statuses(ingest_host="0.0.0.0", **strong)
    assert set(got.values()) == {(401, 200)}
