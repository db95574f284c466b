"""Who may read the ingest's /docs, /openapi.json and /metrics: everyone, token holders, or nobody.

Off loopback they are behind an ingest token by default (CCPULSE_DOCS_ACCESS,
CCPULSE_INGEST_METRICS_ACCESS): the schema and the counters tell an attacker what to try.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from services import problems
from services.settings import Access

DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
METRICS_PATHS = frozenset({"/metrics"})


class Exposure:
    """Pure ASGI: answers 404 (off) or 401 (key, without a valid token) before the route runs."""

    def __init__(
        self,
        app: ASGIApp,
        docs: Access,
        metrics: Access,
        authorised: Callable[[str | None], bool],
    ) -> None:
        self.app = app
        self.modes = {**dict.fromkeys(DOCS_PATHS, docs), **dict.fromkeys(METRICS_PATHS, metrics)}
        self.authorised = authorised

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mode = self.modes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if mode is None or mode == "open":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        header = headers.get(b"authorization")
        if mode == "key" and self.authorised(header.decode("latin-1") if header else None):
            await self.app(scope, receive, send)
            return
        if mode == "off":
            refused = problems.problem(404, "not found", instance=scope["path"])
        else:
            refused = problems.problem(
                401,
                "authorization: an ingest token is required",
                [{"field": "authorization"}],
                instance=scope["path"],
                headers={"WWW-Authenticate": "Bearer"},
            )
        await refused(scope, receive, send)
