"""Browser hardening headers on every response, and /docs + /openapi.json as a setting.

The pages load only their own scripts (`script-src 'self'`, plus the hashes of the inline scripts
of the plain first page), may not be framed (clickjacking on a wallboard that can open sessions),
and send no referrer (a `/login?key=` address must never leak to another site).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.apikeys import Role
from services.settings import Settings

from .auth import require

DOCS_PATHS = ("/docs", "/redoc")  # Swagger UI loads its script from a CDN: no page policy there
BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def inline_script_hashes(html: Path) -> list[str]:
    """CSP hashes of a page's inline <script> blocks, so they run without 'unsafe-inline'."""
    if not html.exists():
        return []
    scripts = re.findall(r"<script>(.*?)</script>", html.read_text(), flags=re.S)
    digests = (hashlib.sha256(body.encode()).digest() for body in scripts)
    return [f"'sha256-{base64.b64encode(d).decode()}'" for d in digests]


def content_security_policy(script_hashes: list[str]) -> str:
    scripts = " ".join(["'self'", *script_hashes])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """Pure ASGI (websockets pass untouched): base headers always, the CSP on HTML pages."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.csp = csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = str(scope.get("path", "")).startswith(DOCS_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                extra = [(k.encode(), v.encode()) for k, v in BASE_HEADERS.items()]
                if b"content-security-policy" not in names and not docs:
                    extra.append((b"content-security-policy", self.csp))
                message["headers"] = headers + [(k, v) for k, v in extra if k not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def docs_urls(settings: Settings) -> dict[str, Any]:
    """FastAPI's own docs routes only when they are open to all; else none (see add_docs)."""
    if settings.docs_mode() == "open":
        return {}
    return {"docs_url": None, "redoc_url": None, "openapi_url": None}


def add_docs(app: FastAPI, settings: Settings) -> None:
    """`key`: the same pages behind a viewer key (header or session); `off`: no pages at all."""
    if settings.docs_mode() != "key":
        return
    guard = [Depends(require(Role.viewer))]

    @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")
