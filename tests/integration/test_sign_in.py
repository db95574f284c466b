"""The sign-in page: a form, refusals in words for people and problem+json for programs, a
planner's key that lands on the planning page, and no redirect off this server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from ccpulse.stack import EmbeddedRedis
from tests.apiserver import VIEWER, api_settings, asgi_client

HTML = {"Accept": "text/html,application/xhtml+xml"}
PLANNER = "ccp_planner_" + "p3" * 20


def run(clean_redis: EmbeddedRedis, tmp_path: Path, check: object) -> None:
    settings = api_settings(clean_redis.url, tmp_path, planner_key=PLANNER)

    async def go() -> None:
        async with asgi_client(settings) as client:
            await check(client)  # type: ignore[operator]

    asyncio.run(go())


def test_a_person_gets_a_form_and_reads_what_went_wrong(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    async def check(client: httpx.AsyncClient) -> None:
        form = await client.get("/login", headers=HTML)
        assert form.status_code == 200 and '<form method="post" action="/login">' in form.text
        wrong = await client.post("/login", data={"key": "ccp_" + "x" * 40}, headers=HTML)
        assert wrong.status_code == 401 and "unknown or was revoked" in wrong.text
        assert "<form" in wrong.text and '{"detail"' not in wrong.text
        short = await client.get("/login", params={"key": "abc"}, headers=HTML)
        assert short.status_code == 422 and "not a ccpulse key" in short.text
        # A program still gets problem+json naming the field.
        program = await client.get("/login", params={"key": "ccp_" + "y" * 40})
        assert program.status_code == 401 and program.json()["detail"].startswith("key: ")
        assert "set-cookie" not in wrong.headers and "set-cookie" not in program.headers

    run(clean_redis, tmp_path, check)


def test_the_form_signs_in_and_goes_where_it_was_asked(
    clean_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    async def check(client: httpx.AsyncClient) -> None:
        signed = await client.post("/login", data={"key": VIEWER, "next": "/"}, headers=HTML)
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        assert (await client.get("/api/v1/config")).status_code == 200
        client.cookies.clear()
        planner = await client.get("/login", params={"key": PLANNER, "next": "/planning/"})
        assert planner.status_code == 303 and planner.headers["location"] == "/planning/"
        assert (await client.get("/api/v1/volume")).status_code not in (401, 403)  # planner
        assert (await client.get("/api/v1/keys")).status_code == 403  # not an admin
        client.cookies.clear()
        for elsewhere in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            away = await client.get("/login", params={"key": VIEWER, "next": elsewhere})
            assert away.headers["location"] == "/", elsewhere
        tv = await client.get("/login", params={"key": VIEWER, "tv": "1"})
        assert tv.headers["location"] == "/?tv=1"

    run(clean_redis, tmp_path, check)
