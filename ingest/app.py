"""The ingest HTTP app: webhooks in, contract events out to Kafka."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from services import problems, tracing
from services.logs import AccessLog
from services.settings import Settings

from . import history_upload, openapi, routes, webhooks
from .exposure import Exposure
from .publisher import Publisher
from .state import IngestState

EVENTS_PATH = routes.EVENTS_PATH


class EventsRoute:
    """`POST /v1/events` served straight from ASGI, ahead of FastAPI's routing.

    The same handler as the documented FastAPI route (which stays for OpenAPI and any other
    method or path): only FastAPI's per-request dependency and exception plumbing is skipped,
    which cost more CPU than the handler itself for a single-event webhook.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == EVENTS_PATH:
            response = await routes.post_events(Request(scope, receive))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    webhooks.check_public_url(settings)
    state = IngestState(settings, Publisher(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything loaded at start lives as long as the process: out of the collector's
        # sight, a full collection no longer walks it (they ran often under batches of events).
        gc.freeze()
        yield
        await state.close()

    app = FastAPI(title="ccpulse ingest", version="0.1.0", lifespan=lifespan)
    app.state.ingest = state
    problems.install(app)
    openapi.install(app)
    app.add_middleware(EventsRoute)

    app.include_router(routes.router)
    app.include_router(webhooks.router)
    app.include_router(history_upload.router)
    app.add_middleware(
        Exposure,
        docs=settings.docs_mode(),
        metrics=settings.ingest_metrics_mode(),
        authorised=state.authorised,
    )
    app.add_middleware(AccessLog, enabled=settings.access_log)  # outermost: sees every request
    tracing.instrument(app)  # server spans continuing the caller's traceparent, when tracing is on

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        ok = await state.publisher.check()
        return JSONResponse({"broker": ok}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
